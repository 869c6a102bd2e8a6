//! The audit log: `GET /audit/logs` and `GET /audit/logs/export` (seed 001).

use super::*;
use crate::admin::export::{Cell, Export, ExportFormat};
use crate::api::error::{ApiError, FieldError};
use crate::api::pagination::{self, Cursor, PageQuery, Paging};
use crate::domain::Timestamp;
use crate::startup::AppState;
use crate::store::audit::{self, AuditFilter, AuditRow};
use crate::store::{StoreError, from_json};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value, json};

// --- The audit log -------------------------------------------------------------------------

/// The columns of an audit entry, in the order of exports.
const AUDIT_COLUMNS: &[&str] = &[
    "id",
    "user_id",
    "user_email",
    "action",
    "resource",
    "resource_id",
    "old_values",
    "new_values",
    "ip_address",
    "user_agent",
    "request_id",
    "additional_info",
    "created_at",
];

/// The query of `GET /audit/logs`: filters and paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditListQuery {
    /// Entries by this user (a UUID).
    user_id: Option<String>,
    /// Entries of this action (`login_succeeded`, `user_created`, ...).
    action: Option<String>,
    /// Entries about this kind of resource (`users`, `clients`, ...).
    resource: Option<String>,
    /// Entries about this resource.
    resource_id: Option<String>,
    /// From this time (RFC 3339 or `YYYY-MM-DD`).
    start_date: Option<String>,
    /// Up to this time (RFC 3339, or `YYYY-MM-DD` for the whole day).
    end_date: Option<String>,
    /// The page, from 1 (not with `offset` or `cursor`).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// The page size, 1 to 100 (20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// A synonym of `limit`.
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
    /// Entries to skip (not with `page` or `cursor`).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Pages by key: empty for the first page, then the previous page's `next_cursor`.
    cursor: Option<String>,
}

/// The query of `GET /audit/logs/export`: filters and the format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditExportQuery {
    /// Entries by this user (a UUID).
    user_id: Option<String>,
    /// Entries of this action.
    action: Option<String>,
    /// Entries about this kind of resource.
    resource: Option<String>,
    /// Entries about this resource.
    resource_id: Option<String>,
    /// From this time (RFC 3339 or `YYYY-MM-DD`).
    start_date: Option<String>,
    /// Up to this time (RFC 3339, or `YYYY-MM-DD` for the whole day).
    end_date: Option<String>,
    /// `csv` (the default), `json` or `xlsx`.
    format: Option<String>,
}

/// Builds the filter: `user_id` must be a UUID, the dates RFC 3339 or `YYYY-MM-DD` (a plain
/// `end_date` includes that whole day), and the range must not run backwards.
fn audit_filter(
    user_id: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    resource_id: Option<String>,
    start_date: Option<&str>,
    end_date: Option<&str>,
) -> Result<AuditFilter, ApiError> {
    let mut errors = Vec::new();
    if let Some(id) = &user_id
        && uuid::Uuid::parse_str(id).is_err()
    {
        errors.push(FieldError::new("user_id", "must be a UUID"));
    }
    let mut bound = |field: &str, text: Option<&str>, end: bool| {
        let text = text?;
        match Timestamp::parse(text) {
            // A plain date as the end means up to the end of that day.
            Some(t) if end && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() => {
                Some(t.0 + DAY - 1)
            }
            Some(t) => Some(t.0),
            None => {
                errors.push(FieldError::new(
                    field,
                    "must be an RFC 3339 timestamp or a YYYY-MM-DD date",
                ));
                None
            }
        }
    };
    let from = bound("start_date", start_date, false);
    let to = bound("end_date", end_date, true);
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        errors.push(FieldError::new("end_date", "must not be before start_date"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(AuditFilter {
        actor_id: user_id,
        action,
        resource,
        resource_id,
        from,
        to,
    })
}

/// An entry's cells in [`AUDIT_COLUMNS`] order: the value columns as JSON (`additional_info`
/// an object, `{}` when there is none), times in RFC 3339.
fn audit_cells(row: AuditRow) -> Result<Vec<Cell>, StoreError> {
    let decode = |column: &str, text: Option<String>| -> Result<Value, StoreError> {
        text.map_or(Ok(Value::Null), |t| from_json(column, &t))
    };
    let additional_info = match decode("additional_info", row.additional_info)? {
        Value::Null => json!({}),
        other => other,
    };
    Ok(vec![
        json!(row.id),
        json!(row.actor_id),
        json!(row.actor_email),
        json!(row.action),
        json!(row.resource),
        json!(row.resource_id),
        decode("old_values", row.old_values)?,
        decode("new_values", row.new_values)?,
        json!(row.ip_address),
        json!(row.user_agent),
        json!(row.request_id),
        additional_info,
        json!(Timestamp(row.created_at)),
    ])
}

/// An entry as a JSON object (seed 001's model, plus `request_id`).
fn audit_entry(row: AuditRow) -> Result<Value, StoreError> {
    let cells = audit_cells(row)?;
    Ok(Value::Object(
        AUDIT_COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .zip(cells)
            .collect::<Map<_, _>>(),
    ))
}

/// The keyset position of a cursor of this list: `(created_at, id)` of the last entry seen.
fn audit_position(cursor: Cursor) -> Result<(i64, String), ApiError> {
    match cursor.key.as_i64() {
        Some(created_at) => Ok((created_at, cursor.id)),
        None => Err(
            ApiError::bad_request("cursor is not a cursor of this list").with_details(json!([
                FieldError::new("cursor", "is not a cursor of this list")
            ])),
        ),
    }
}

/// `GET /api/v1/audit/logs`: `{"logs": [...], "pagination": {...}}`, newest first.
#[utoipa::path(
    get,
    path = crate::paths::AUDIT_LOGS,
    tag = "audit",
    params(AuditListQuery),
    responses(
        (status = 200, description = "A page of audit entries, newest first", body = super::schema::AuditLogList),
        (status = 422, description = "A bad `user_id` or date, or a range that runs backwards", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["audit:read"])),
)]
pub(super) async fn audit_logs(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: AuditListQuery = query(&http)?;
    let filter = audit_filter(
        q.user_id,
        q.action,
        q.resource,
        q.resource_id,
        q.start_date.as_deref(),
        q.end_date.as_deref(),
    )?;
    let paging = PageQuery {
        page: q.page,
        limit: q.limit,
        size: q.size,
        offset: q.offset,
        cursor: q.cursor,
    }
    .paging(DEFAULT_AUDIT_LIMIT)?;
    let body = match paging {
        Paging::Offset {
            offset,
            limit,
            page,
        } => {
            let (total, rows) = state
                .store
                .run(move |conn| {
                    Ok((
                        audit::count(conn, &filter)?,
                        audit::page(conn, &filter, offset, limit)?,
                    ))
                })
                .await?;
            json!({
                "logs": rows.into_iter().map(audit_entry).collect::<Result<Vec<_>, _>>()?,
                "pagination": pagination::offset_json(offset, limit, page, total),
            })
        }
        Paging::Cursor { after, limit } => {
            let after = after.map(audit_position).transpose()?;
            let (total, mut rows) = state
                .store
                .run(move |conn| {
                    let after = after.as_ref().map(|(t, id)| (*t, id.as_str()));
                    Ok((
                        audit::count(conn, &filter)?,
                        audit::after(conn, &filter, after, limit + 1)?,
                    ))
                })
                .await?;
            let next = (rows.len() as i64 > limit).then(|| {
                rows.truncate(limit as usize);
                let last = &rows[rows.len() - 1];
                Cursor {
                    key: json!(last.created_at),
                    id: last.id.clone(),
                }
            });
            json!({
                "logs": rows.into_iter().map(audit_entry).collect::<Result<Vec<_>, _>>()?,
                "pagination": pagination::cursor_json(limit, next.as_ref(), total),
            })
        }
    };
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/audit/logs/export?format=csv|json|xlsx`: the filtered log, newest first.
#[utoipa::path(
    get,
    path = crate::paths::AUDIT_LOGS_EXPORT,
    tag = "audit",
    params(AuditExportQuery),
    responses(
        (status = 200, description = "The filtered log, newest first: CSV or JSON (streamed) or XLSX",
            content(
                (String = "text/csv"),
                (Vec<super::schema::AuditEntry> = "application/json"),
                (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        (status = 422, description = "A bad filter or `format`, or too many rows for XLSX (`export_too_large`)", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["audit:read"])),
)]
pub(super) async fn export_audit_logs(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: AuditExportQuery = query(&http)?;
    let format = ExportFormat::parse(q.format.as_deref(), ExportFormat::ALL)?;
    let filter = audit_filter(
        q.user_id,
        q.action,
        q.resource,
        q.resource_id,
        q.start_date.as_deref(),
        q.end_date.as_deref(),
    )?;
    Export::new("audit-logs", AUDIT_COLUMNS)
        .respond(
            &state.store,
            format,
            move |conn, after: Option<(i64, String)>, limit| {
                let after = after.as_ref().map(|(t, id)| (*t, id.as_str()));
                audit::after(conn, &filter, after, limit)?
                    .into_iter()
                    .map(|row| Ok(((row.created_at, row.id.clone()), audit_cells(row)?)))
                    .collect()
            },
        )
        .await
}
