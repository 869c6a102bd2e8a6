//! Administration: users, roles and permissions, OAuth clients, API keys — an API protected by
//! Latchkey's own access tokens, with the permission catalogue it checks against.
//!
//! Two rules hold everywhere here: nobody grants a permission they do not hold (nor acts on
//! someone who holds more than they do), and the last active holder of `*` cannot be
//! deleted, locked, deactivated or demoted.

pub mod activity;
pub mod bulk;
pub mod clients;
pub mod export;
pub mod permissions;
pub mod roles;
pub mod users;

use crate::domain::{PermissionSet, now};
use crate::events::audit::Actor;
use crate::store::{AnyConnection, StoreError, users as user_rows};

/// Who is calling the admin API: their user id, the permissions their token carries (already
/// cut to the token's scope) and where the request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The calling user (service accounts are users too).
    pub user_id: Option<String>,
    /// What the caller may do and grant.
    pub permissions: PermissionSet,
    /// The audit actor of the request.
    pub actor: Actor,
}

impl Caller {
    /// Requires that the caller holds every one of `permissions` (`*` holds all): nobody
    /// grants what they do not hold.
    pub fn ensure_holds<'a>(
        &self,
        permissions: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), AdminError> {
        for permission in permissions {
            if !self.holds_exactly(permission) {
                return Err(AdminError::Forbidden(format!(
                    "You cannot grant `{permission}`: you do not hold it"
                )));
            }
        }
        Ok(())
    }

    /// Requires that the caller holds everything `user_id` holds, so that an administrator
    /// cannot lock, delete or reshape someone with more power than they have.
    pub fn ensure_outranks(
        &self,
        conn: &mut AnyConnection,
        user_id: &str,
    ) -> Result<(), AdminError> {
        let held = user_rows::permissions(conn, user_id)?;
        if held.iter().all(|p| self.holds_exactly(p)) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(
                "This user holds permissions you do not hold".into(),
            ))
        }
    }

    /// Whether the caller holds `permission`; `*` itself only through `*`.
    fn holds_exactly(&self, permission: &str) -> bool {
        if permission == "*" {
            self.permissions.names().any(|p| p == "*")
        } else {
            self.permissions.grants(permission)
        }
    }
}

/// Refuses a change that would leave nobody able to act with `*`. Call it after the change,
/// inside its transaction, having taken [`crate::store::lock_privileges`] first.
pub fn ensure_superuser_remains(conn: &mut AnyConnection) -> Result<(), AdminError> {
    if user_rows::count_active_holders(conn, "*", now())? == 0 {
        return Err(AdminError::Conflict(
            "This would leave no active user holding `*`: the last holder cannot be deleted, \
             locked, deactivated or demoted"
                .into(),
        ));
    }
    Ok(())
}

/// Why an administrative action failed, in the terms the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The resource named does not exist (`user`, `role`, ...).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The change conflicts with the current state (a taken email, the last `*` holder, ...).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Fields that failed validation: `(field, message)`.
    #[error("validation failed")]
    Invalid(Vec<(String, String)>),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
}

impl AdminError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![(field.into(), message.into())])
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<diesel::result::Error> for AdminError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(error.into())
    }
}
