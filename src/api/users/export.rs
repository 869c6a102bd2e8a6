//! Seed 004's export of users as CSV or XLSX.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::{conditions, search_words};
use crate::admin::export::{Export, ExportFormat};
use crate::admin::users::{self as admin, Include};
use crate::api::error::ApiError;
use crate::domain::{SortField, SortKey, now};
use crate::startup::AppState;
use crate::store::user_search::{self, SortValue, UserQuery, Window};

/// The parameters of `/users/export`: the filters of the lists, and the format.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    /// `csv` (the default) or `xlsx`.
    format: Option<String>,
    search: Option<String>,
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    filters: Option<String>,
    include_deleted: Option<bool>,
}

/// The columns of a users export.
const EXPORT_COLUMNS: &[&str] = &[
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "roles",
    "status",
    "email_verified",
    "mfa_enabled",
    "kind",
    "last_login",
    "created_at",
    "updated_at",
];

/// `GET /users/export?format=csv|xlsx` (seed 004): the matching users, oldest first, read in
/// keyset batches; CSV is streamed as it is read. `roles` are joined with `;`.
#[utoipa::path(
    get,
    path = crate::paths::USERS_EXPORT,
    tag = "users",
    params(ExportQuery),
    responses(
        (status = 200, description = "The matching users, oldest first, as CSV (streamed) or XLSX; `roles` joined with `;`",
            content(
                (String = "text/csv"),
                (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        (status = 422, description = "A bad `format`, `filters`, `role` or `status`, or too many rows for XLSX (`export_too_large`)", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:read"])),
)]
pub(super) async fn export(
    state: web::Data<AppState>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let format = ExportFormat::parse(
        query.format.as_deref(),
        &[ExportFormat::Csv, ExportFormat::Xlsx],
    )?;
    let user_query = UserQuery {
        search: search_words(query.search, query.q)?,
        conditions: conditions(query.filters.as_deref(), query.role, query.status)?,
        include_deleted: query.include_deleted.unwrap_or(false),
        sort: vec![SortKey {
            field: SortField::CreatedAt,
            descending: false,
        }],
    };
    Export::new("users", EXPORT_COLUMNS)
        .respond(
            &state.store,
            format,
            move |conn, after: Option<(i64, String)>, limit| {
                let window = Window::After {
                    key: after.as_ref().map(|(time, _)| SortValue::Int(*time)),
                    id: after.map(|(_, id)| id),
                    limit,
                };
                let users = user_search::page(conn, &user_query, &window, now())?;
                let keys: Vec<(i64, String)> = users
                    .iter()
                    .map(|u| (u.row.created_at, u.row.id.clone()))
                    .collect();
                let views = admin::views(conn, &users, Include::default())?;
                Ok(keys
                    .into_iter()
                    .zip(views)
                    .map(|(key, view)| {
                        let cells = EXPORT_COLUMNS
                            .iter()
                            .map(|column| match (*column, &view[*column]) {
                                ("roles", Value::Array(roles)) => Value::String(
                                    roles
                                        .iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(";"),
                                ),
                                (_, value) => value.clone(),
                            })
                            .collect();
                        (key, cells)
                    })
                    .collect())
            },
        )
        .await
}
