//! Bulk operations on users: seed 003's bulk creation with per-item results and
//! `fail_on_error`, seed 001's bulk actions, and seed 004's bulk deletion. At most 100 items;
//! each item runs in its own savepoint, so one failure undoes only that item — or, with
//! `fail_on_error`, everything.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::users::{self, Include, UserSpec};
use super::{AdminError, Caller};
use crate::startup::Handles;
use crate::store::{AnyConnection, StoreError, write_transaction};

/// The most items one bulk request may carry.
pub const MAX_ITEMS: usize = 100;

/// What became of one item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub index: usize,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// Why one item failed, in the API's terms.
#[derive(Debug, Clone, Serialize)]
pub struct ItemError {
    /// `validation_error`, `conflict`, `forbidden`, `not_found`, `rolled_back`, ...
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ItemError {
    /// The item form of an admin error; storage failures other than these stop the request.
    pub fn of(error: &AdminError) -> Option<Self> {
        Some(match error {
            AdminError::Invalid(fields) => Self {
                code: "validation_error",
                message: "Request validation failed".into(),
                details: Some(json!(
                    fields
                        .iter()
                        .map(|(f, m)| json!({"field": f, "message": m}))
                        .collect::<Vec<_>>()
                )),
            },
            AdminError::Conflict(message) => Self {
                code: "conflict",
                message: message.clone(),
                details: None,
            },
            AdminError::Forbidden(message) => Self {
                code: "forbidden",
                message: message.clone(),
                details: None,
            },
            AdminError::NotFound(what) => Self {
                code: "not_found",
                message: format!("No such {what}"),
                details: None,
            },
            AdminError::Store(_) => return None,
        })
    }
}

/// One user of a bulk creation, validated (or refused) before any write.
pub struct BulkNewUser {
    /// The validated spec and the password hash, or why the item was refused.
    pub prepared: Result<(UserSpec, Option<String>), AdminError>,
}

/// The outcome of a bulk creation.
#[derive(Debug, Clone, Serialize)]
pub struct BulkCreated {
    pub results: Vec<ItemResult>,
    pub summary: Value,
}

impl BulkCreated {
    /// How many users were created.
    pub fn successful(&self) -> usize {
        self.results.iter().filter(|r| r.success).count()
    }
}

fn short_user(view: &Value) -> Value {
    json!({
        "id": view["id"],
        "username": view["username"],
        "email": view["email"],
        "status": view["status"],
        "roles": view["roles"],
    })
}

/// Why a bulk creation's transaction ended early.
enum Abort {
    /// `fail_on_error` and an item failed: everything is undone; the results say why.
    RolledBack(Vec<ItemResult>),
    /// Storage failed.
    Store(StoreError),
}

impl From<diesel::result::Error> for Abort {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(error.into())
    }
}

/// Creates the prepared users. Without `fail_on_error` each user is created or refused on its
/// own; with it, the first refusal undoes every creation and the other items are marked
/// `rolled_back`.
pub fn create(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    items: Vec<BulkNewUser>,
    send_welcome_emails: bool,
    fail_on_error: bool,
) -> Result<BulkCreated, StoreError> {
    let total = items.len();
    let outcome = write_transaction(conn, |conn| {
        let mut results = Vec::with_capacity(total);
        for (index, item) in items.into_iter().enumerate() {
            let result = item.prepared.and_then(|(spec, hash)| {
                write_transaction(conn, |conn| {
                    users::create(conn, handles, caller, spec, hash, send_welcome_emails)
                })
            });
            results.push(match result {
                Ok(view) => ItemResult {
                    index,
                    success: true,
                    user: Some(short_user(&view)),
                    error: None,
                },
                Err(AdminError::Store(e)) => return Err(Abort::Store(e)),
                Err(error) => ItemResult {
                    index,
                    success: false,
                    user: None,
                    error: ItemError::of(&error),
                },
            });
        }
        if fail_on_error && results.iter().any(|r| !r.success) {
            for result in &mut results {
                if result.success {
                    result.success = false;
                    result.user = None;
                    result.error = Some(ItemError {
                        code: "rolled_back",
                        message: "Not created: another item failed and fail_on_error is set".into(),
                        details: None,
                    });
                }
            }
            return Err(Abort::RolledBack(results));
        }
        Ok(results)
    });
    let results = match outcome {
        Ok(results) | Err(Abort::RolledBack(results)) => results,
        Err(Abort::Store(e)) => return Err(e),
    };
    let successful = results.iter().filter(|r| r.success).count();
    Ok(BulkCreated {
        summary: json!({"total": total, "successful": successful, "failed": total - successful}),
        results,
    })
}

/// The actions of seed 001's `POST /users/bulk-actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Activate,
    Deactivate,
    Lock,
    Unlock,
    Delete,
    AssignRole,
    RemoveRole,
}

/// A bulk action with its options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkActionRequest {
    pub user_ids: Vec<String>,
    pub action: BulkAction,
    /// Recorded with locks and deactivations.
    pub reason: Option<String>,
    /// The role of `assign_role` and `remove_role`.
    pub role: Option<String>,
    /// The length of a `lock` (without an end when absent).
    pub duration_minutes: Option<i64>,
    /// `delete` keeps tombstones.
    #[serde(default)]
    pub soft_delete: bool,
}

/// The outcome of a bulk action (seed 001's shape).
#[derive(Debug, Clone, Serialize)]
pub struct BulkActionOutcome {
    pub message: &'static str,
    pub affected_users: usize,
    pub failed_users: Vec<Value>,
}

fn one_action(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    request: &BulkActionRequest,
    id: &str,
) -> Result<(), AdminError> {
    let status = |s: &str| UserSpec {
        status: Some(s.to_owned()),
        ..Default::default()
    };
    let reason = request.reason.as_deref();
    match request.action {
        BulkAction::Activate => {
            users::update(conn, handles, caller, id, status("active"), reason).map(drop)
        }
        BulkAction::Deactivate => {
            users::update(conn, handles, caller, id, status("inactive"), reason).map(drop)
        }
        BulkAction::Lock => users::lock(
            conn,
            handles,
            caller,
            id,
            request.reason.as_deref(),
            request.duration_minutes,
        )
        .map(drop),
        BulkAction::Unlock => users::unlock(conn, caller, id),
        BulkAction::Delete => {
            users::delete(conn, handles, caller, id, request.soft_delete).map(drop)
        }
        BulkAction::AssignRole | BulkAction::RemoveRole => {
            let role = request.role.clone().unwrap_or_default();
            let current = users::view(conn, id, Include::default())?;
            let mut roles: Vec<String> =
                serde_json::from_value(current["roles"].clone()).unwrap_or_default();
            if request.action == BulkAction::AssignRole {
                roles.push(role);
            } else {
                roles.retain(|r| *r != role);
            }
            roles.sort();
            roles.dedup();
            let spec = UserSpec {
                roles: Some(roles),
                ..Default::default()
            };
            users::update(conn, handles, caller, id, spec, reason).map(drop)
        }
    }
}

/// Checks a bulk action's options before any write.
pub fn validate_action(request: &BulkActionRequest) -> Result<(), AdminError> {
    let mut errors = Vec::new();
    if request.user_ids.is_empty() || request.user_ids.len() > MAX_ITEMS {
        errors.push((
            "user_ids".into(),
            format!("must list 1 to {MAX_ITEMS} users"),
        ));
    }
    let needs_role = matches!(
        request.action,
        BulkAction::AssignRole | BulkAction::RemoveRole
    );
    if needs_role && request.role.as_deref().is_none_or(str::is_empty) {
        errors.push(("role".into(), "is required for this action".into()));
    }
    if request
        .duration_minutes
        .is_some_and(|m| !(1..=525_600).contains(&m))
    {
        errors.push((
            "duration_minutes".into(),
            "must be 1 to 525600 (a year)".into(),
        ));
    }
    if let Err(AdminError::Invalid(mut invalid)) = users::checked_reason(request.reason.as_deref())
    {
        errors.append(&mut invalid);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AdminError::Invalid(errors))
    }
}

/// The ids in their first order, each once.
fn distinct(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect()
}

/// Applies one action to each listed user, each in its own savepoint.
pub fn act(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    request: &BulkActionRequest,
) -> Result<BulkActionOutcome, StoreError> {
    let mut affected = 0;
    let mut failed = Vec::new();
    for id in &distinct(&request.user_ids) {
        match write_transaction(conn, |conn| one_action(conn, handles, caller, request, id)) {
            Ok(()) => affected += 1,
            Err(error) => match ItemError::of(&error) {
                Some(e) => failed.push(json!({"id": id, "error": e.code, "message": e.message})),
                None => {
                    return Err(match error {
                        AdminError::Store(e) => e,
                        other => StoreError::Corrupt(anyhow::anyhow!("bulk action: {other}")),
                    });
                }
            },
        }
    }
    Ok(BulkActionOutcome {
        message: "Bulk action completed",
        affected_users: affected,
        failed_users: failed,
    })
}

/// The outcome of a bulk deletion (seed 004's shape, without its envelope).
#[derive(Debug, Clone, Serialize)]
pub struct BulkDeleted {
    pub deleted: Vec<String>,
    pub failed: Vec<String>,
    /// Why each failed id failed.
    pub errors: Vec<Value>,
}

/// Deletes each listed user in its own savepoint.
pub fn delete(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    ids: &[String],
    soft: bool,
) -> Result<BulkDeleted, StoreError> {
    let mut outcome = BulkDeleted {
        deleted: Vec::new(),
        failed: Vec::new(),
        errors: Vec::new(),
    };
    for id in &distinct(ids) {
        match write_transaction(conn, |conn| users::delete(conn, handles, caller, id, soft)) {
            Ok(_) => outcome.deleted.push(id.clone()),
            Err(error) => match ItemError::of(&error) {
                Some(e) => {
                    outcome.failed.push(id.clone());
                    outcome
                        .errors
                        .push(json!({"id": id, "error": e.code, "message": e.message}));
                }
                None => {
                    return Err(match error {
                        AdminError::Store(e) => e,
                        other => StoreError::Corrupt(anyhow::anyhow!("bulk delete: {other}")),
                    });
                }
            },
        }
    }
    Ok(outcome)
}
