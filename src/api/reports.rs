//! The audit log (`GET /audit/logs`, `GET /audit/logs/export`), statistics (`GET
//! /stats/overview`, `GET /stats/users`, seed 001) and user analytics (`GET /analytics/users`,
//! seed 003). Reading the audit log needs `audit:read`, the rest `stats:read`; the permission
//! is checked before the query string is looked at, so a caller without it learns nothing from
//! validation errors.
//!
//! Days are UTC days. A range is at most [`MAX_RANGE_DAYS`] days long.

// `ApiError` is large (about 200 bytes) throughout the API; shrinking it is a crate-wide change.
#![allow(clippy::result_large_err)]

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Datelike, Months, NaiveDate, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::admin::export::{Cell, Export, ExportFormat};
use crate::api::error::{ApiError, FieldError, query_error};
use crate::api::extract::Authenticated;
use crate::api::pagination::{self, Cursor, PageQuery, Paging};
use crate::domain::{Timestamp, now};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;
use crate::store::audit::{self, AuditFilter, AuditRow};
use crate::store::reports::{self, Buckets, Logins, RoleFigure, UserEvent, actions};
use crate::store::{StoreError, from_json};

/// The longest range of a statistics or analytics query, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// The default page size of the audit log (seed 001).
const DEFAULT_AUDIT_LIMIT: i64 = 20;

const DAY: i64 = 86_400;

/// The routes of the reporting API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint(paths::AUDIT_LOGS).get(audit_logs).finish())
        .service(
            endpoint(paths::AUDIT_LOGS_EXPORT)
                .get(export_audit_logs)
                .finish(),
        )
        .service(endpoint(paths::STATS_OVERVIEW).get(stats_overview).finish())
        .service(endpoint(paths::STATS_USERS).get(stats_users).finish())
        .service(
            endpoint(paths::ANALYTICS_USERS)
                .get(analytics_users)
                .finish(),
        );
}

/// Parses the query string into `T`, answering a misfit with the contract's 400.
fn query<T: DeserializeOwned>(http: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(http.query_string())
        .map(web::Query::into_inner)
        .map_err(query_error)
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditListQuery {
    user_id: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    resource_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
    size: Option<i64>,
    offset: Option<i64>,
    cursor: Option<String>,
}

/// The query of `GET /audit/logs/export`: filters and the format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditExportQuery {
    user_id: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    resource_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
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
async fn audit_logs(
    state: web::Data<AppState>,
    auth: Authenticated,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require("audit:read")?;
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
async fn export_audit_logs(
    state: web::Data<AppState>,
    auth: Authenticated,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require("audit:read")?;
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

// --- Statistics ----------------------------------------------------------------------------

/// Midnight (UTC) of the day of `t`.
fn day_start(t: i64) -> i64 {
    t - t.rem_euclid(DAY)
}

/// Midnight (UTC) of a date.
fn midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_default()
}

/// Today's date (UTC).
fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `GET /api/v1/stats/overview` (seed 001). "Today" and "this month" are UTC. `admins` counts
/// the holders of administrative roles (any role granting a permission outside `profile:*`):
/// `total`, `active`, then each such role by name as in the seed (a role named `total`,
/// `active` or `by_role` appears only in `by_role`), and `by_role` with all of them.
async fn stats_overview(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    auth.require("stats:read")?;
    let at = now();
    let today = day_start(at);
    let month = midnight(date_of(at).with_day(1).expect("every month has a day 1"));
    let (users, admins, sessions, security) = state
        .store
        .run(move |conn| {
            Ok((
                reports::user_counts(conn, at, month)?,
                reports::admin_counts(conn)?,
                reports::session_counts(conn, at, today)?,
                reports::action_counts(
                    conn,
                    &[
                        actions::LOGIN_FAILED,
                        actions::ACCOUNT_LOCKED,
                        actions::PASSWORD_RESET,
                    ],
                    today,
                )?,
            ))
        })
        .await?;
    let mut admin_json = Map::new();
    admin_json.insert("total".into(), json!(admins.total));
    admin_json.insert("active".into(), json!(admins.active));
    for (role, n) in &admins.by_role {
        if !matches!(role.as_str(), "total" | "active" | "by_role") {
            admin_json.insert(role.clone(), json!(n));
        }
    }
    admin_json.insert("by_role".into(), role_map(&admins.by_role));
    Ok(HttpResponse::Ok().json(json!({
        "users": {
            "total": users.total,
            "active": users.active,
            "inactive": users.total - users.active - users.locked,
            "locked": users.locked,
            "new_this_month": users.new_since,
        },
        "admins": admin_json,
        "sessions": {
            "active": sessions.active,
            "total_today": sessions.started,
            "unique_users_today": sessions.unique_users,
        },
        "security": {
            "failed_logins_today": security[0],
            "locked_accounts_today": security[1],
            "password_resets_today": security[2],
        },
    })))
}

/// The UTC date of unix time `t`.
fn date_of(t: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

fn role_map(roles: &[(String, i64)]) -> Value {
    Value::Object(roles.iter().map(|(r, n)| (r.clone(), json!(n))).collect())
}

/// A date of a statistics query: `YYYY-MM-DD`, or an RFC 3339 timestamp (its UTC date).
fn parse_date(field: &str, text: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| Timestamp::parse(text).map(|t| date_of(t.0)))
        .ok_or_else(|| FieldError::new(field, "must be a YYYY-MM-DD date"))
}

/// The dates of a query, checked: `start <= end`, at most [`MAX_RANGE_DAYS`] days.
fn date_range(
    start: Option<&str>,
    end: Option<&str>,
    default: impl FnOnce(NaiveDate) -> NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let start = start.map(|s| parse_date("start_date", s)).transpose();
    let end = end.map(|e| parse_date("end_date", e)).transpose();
    let (start, end) = match (start, end) {
        (Ok(start), Ok(end)) => (start, end),
        (start, end) => {
            let errors = [start.err(), end.err()].into_iter().flatten().collect();
            return Err(ApiError::validation(errors));
        }
    };
    let end = end.unwrap_or_else(today);
    let start = start.unwrap_or_else(|| default(end));
    let days = (end - start).num_days() + 1;
    if days < 1 {
        return Err(ApiError::validation(vec![FieldError::new(
            "end_date",
            "must not be before start_date",
        )]));
    }
    if days > MAX_RANGE_DAYS {
        return Err(ApiError::validation(vec![FieldError::new(
            "end_date",
            format!("the range may span at most {MAX_RANGE_DAYS} days"),
        )]));
    }
    Ok((start, end))
}

fn one_of(
    field: &str,
    value: Option<&str>,
    allowed: &[&'static str],
) -> Result<Option<&'static str>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => allowed
            .iter()
            .find(|a| **a == v)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                ApiError::validation(vec![FieldError::new(
                    field,
                    format!("must be one of {}", allowed.join(", ")),
                )])
            }),
    }
}

/// The query of `GET /stats/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsUsersQuery {
    period: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

/// `GET /api/v1/stats/users` (seed 001): registrations and successful logins per UTC day
/// (every day of the range, zeros included) and current users per role. `period` is a window
/// ending today: `day` (today), `week` (7 days), `month` (30 days, the default) or `year`
/// (365 days); or give `start_date` and/or `end_date` instead (`period` is then `custom`; a
/// lone `end_date` starts 29 days earlier, a lone `start_date` ends today).
async fn stats_users(
    state: web::Data<AppState>,
    auth: Authenticated,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require("stats:read")?;
    let q: StatsUsersQuery = query(&http)?;
    let period = one_of(
        "period",
        q.period.as_deref(),
        &["day", "week", "month", "year"],
    )?;
    let custom = q.start_date.is_some() || q.end_date.is_some();
    if custom && period.is_some() {
        return Err(ApiError::validation(vec![FieldError::new(
            "period",
            "cannot be combined with start_date or end_date",
        )]));
    }
    let period = if custom {
        "custom"
    } else {
        period.unwrap_or("month")
    };
    let days_back = match period {
        "day" => 0,
        "week" => 6,
        "year" => 364,
        _ => 29,
    };
    let (start, end) = date_range(q.start_date.as_deref(), q.end_date.as_deref(), |end| {
        end - chrono::Days::new(days_back)
    })?;
    let dates: Vec<NaiveDate> = start.iter_days().take_while(|d| *d <= end).collect();
    let buckets = buckets_of(&dates, end);
    let (registrations, logins, by_role) = state
        .store
        .run(move |conn| {
            Ok((
                reports::users_per_bucket(conn, UserEvent::Created, &buckets)?,
                reports::logins_per_bucket(conn, &buckets)?,
                reports::users_by_role(conn)?,
            ))
        })
        .await?;
    let series = |counts: &mut dyn Iterator<Item = i64>| -> Vec<Value> {
        dates
            .iter()
            .zip(counts)
            .map(|(d, n)| json!({"date": d.to_string(), "count": n}))
            .collect()
    };
    Ok(HttpResponse::Ok().json(json!({
        "period": period,
        "start_date": start.to_string(),
        "end_date": end.to_string(),
        "registrations": series(&mut registrations.into_iter()),
        "logins": series(&mut logins.iter().map(|l| l.logins)),
        "by_role": role_map(&by_role),
    })))
}

/// Buckets starting at each of `starts`, the last ending with the day `end`.
fn buckets_of(starts: &[NaiveDate], end: NaiveDate) -> Buckets {
    let end = midnight(end) + DAY;
    Buckets::new(starts.iter().map(|d| midnight(*d)).collect(), end)
        .expect("ascending dates within the range")
}

// --- Analytics -----------------------------------------------------------------------------

/// The query of `GET /analytics/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyticsQuery {
    metric: Option<String>,
    period: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    group_by: Option<String>,
}

/// The first day of the bucket after the one starting on `bucket_start`, for `period`.
fn next_bucket(period: &str, bucket_start: NaiveDate) -> Option<NaiveDate> {
    let first_of_month = bucket_start.with_day(1)?;
    match period {
        "day" => bucket_start.succ_opt(),
        "week" => bucket_start.checked_add_days(chrono::Days::new(7)),
        "month" => first_of_month.checked_add_months(Months::new(1)),
        _ => {
            let quarter_month = (bucket_start.month0() / 3) * 3 + 1;
            first_of_month
                .with_month(quarter_month)?
                .checked_add_months(Months::new(3))
        }
    }
}

/// `GET /api/v1/analytics/users` (seed 003). `metric`: `active_users` (the default),
/// `new_registrations` or `login_frequency`; `period`: the bucket, `day` (the default), `week`
/// (7 days from `start_date`), `month` or `quarter` (calendar ones, the first cut at
/// `start_date`); the range defaults to the last 30 days, 12 weeks, 12 months or 4 quarters up
/// to today. `group_by=role` adds `by_role` to each data point: the metric's count per role
/// the users hold now. Active users are the distinct users with a successful login in the
/// bucket; returning ones registered before the bucket began.
async fn analytics_users(
    state: web::Data<AppState>,
    auth: Authenticated,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require("stats:read")?;
    let q: AnalyticsQuery = query(&http)?;
    let metric = one_of(
        "metric",
        q.metric.as_deref(),
        &["active_users", "new_registrations", "login_frequency"],
    )?
    .unwrap_or("active_users");
    let period = one_of(
        "period",
        q.period.as_deref(),
        &["day", "week", "month", "quarter"],
    )?
    .unwrap_or("day");
    let by_role = one_of("group_by", q.group_by.as_deref(), &["role"])?.is_some();
    let (start, end) = date_range(q.start_date.as_deref(), q.end_date.as_deref(), |end| {
        let back = |months| {
            end.with_day(1)
                .and_then(|d| d.checked_sub_months(Months::new(months)))
        };
        match period {
            "week" => end.checked_sub_days(chrono::Days::new(83)),
            "month" => back(11),
            "quarter" => back((end.month0() % 3) + 9),
            _ => None,
        }
        .unwrap_or(end - chrono::Days::new(29))
    })?;
    let mut starts = vec![start];
    while let Some(next) = next_bucket(period, starts[starts.len() - 1]).filter(|n| *n <= end) {
        starts.push(next);
    }
    let buckets = buckets_of(&starts, end);
    let whole = buckets_of(&[start], end);
    let figures = state
        .store
        .run(move |conn| {
            let registered = reports::users_per_bucket(conn, UserEvent::Created, &buckets)?;
            let deleted = reports::users_per_bucket(conn, UserEvent::Deleted, &buckets)?;
            let roles = if by_role {
                let names = reports::users_by_role(conn)?
                    .into_iter()
                    .map(|(r, _)| r)
                    .collect();
                let figures = if metric == "new_registrations" {
                    reports::registrations_by_role(conn, &buckets)?
                } else {
                    reports::logins_by_role(conn, &buckets)?
                };
                Some((names, figures))
            } else {
                None
            };
            Ok(Figures {
                base: reports::users_at(conn, buckets.start())?,
                registered,
                deleted,
                logins: reports::logins_per_bucket(conn, &buckets)?,
                overall: reports::logins_per_bucket(conn, &whole)?[0],
                roles,
            })
        })
        .await?;
    let (data, summary) = figures.report(metric, period, &starts);
    Ok(HttpResponse::Ok().json(json!({
        "metric": metric,
        "period": period,
        "start_date": start.to_string(),
        "end_date": end.to_string(),
        "group_by": by_role.then_some("role"),
        "data": data,
        "summary": summary,
    })))
}

/// What the analytics endpoint reads, per bucket unless said otherwise.
struct Figures {
    /// People existing when the range starts.
    base: i64,
    registered: Vec<i64>,
    deleted: Vec<i64>,
    logins: Vec<Logins>,
    /// Logins over the whole range.
    overall: Logins,
    /// All role names, and the per-role figures, when grouped by role.
    roles: Option<(Vec<String>, Vec<RoleFigure>)>,
}

/// `part / whole` in percent, one decimal; `null` when `whole` is zero.
fn percent(part: i64, whole: i64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(round(part as f64 * 100.0 / whole as f64, 1))
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn mean(values: impl Iterator<Item = i64>, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        round(values.sum::<i64>() as f64 / n as f64, 1)
    }
}

impl Figures {
    /// The data points and the summary of `metric`.
    fn report(&self, metric: &str, period: &str, starts: &[NaiveDate]) -> (Vec<Value>, Value) {
        let n = starts.len();
        let mut total = self.base;
        let totals: Vec<i64> = (0..n)
            .map(|i| {
                total += self.registered[i] - self.deleted[i];
                total
            })
            .collect();
        let mut data: Vec<Map<String, Value>> = (0..n)
            .map(|i| {
                let l = self.logins[i];
                let point = match metric {
                    "new_registrations" => json!({
                        "count": self.registered[i],
                        "total_users": totals[i],
                    }),
                    "login_frequency" => json!({
                        "logins": l.logins,
                        "unique_users": l.users,
                        "average_per_user": if l.users == 0 { 0.0 } else {
                            round(l.logins as f64 / l.users as f64, 2)
                        },
                    }),
                    _ => json!({
                        "total_users": totals[i],
                        "active_users": l.users,
                        "new_users": self.registered[i],
                        "returning_users": l.users - l.new_users,
                    }),
                };
                let mut point = match point {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                point.insert("date".into(), json!(starts[i].to_string()));
                point
            })
            .collect();
        if let Some((names, figures)) = &self.roles {
            for (i, point) in data.iter_mut().enumerate() {
                let groups: Map<String, Value> = names
                    .iter()
                    .map(|name| {
                        let figure = figures.iter().find(|f| f.bucket == i && f.role == *name);
                        let value = figure.map_or(0, |f| match metric {
                            "active_users" => f.users,
                            _ => f.count,
                        });
                        (name.clone(), json!(value))
                    })
                    .collect();
                point.insert("by_role".into(), Value::Object(groups));
            }
        }
        let last_total = totals.last().copied().unwrap_or(self.base);
        let growth_rate = percent(last_total - self.base, self.base);
        let summary = match metric {
            "new_registrations" => json!({
                "total": self.registered.iter().sum::<i64>(),
                "average": mean(self.registered.iter().copied(), n),
                "growth_rate": growth_rate,
            }),
            "login_frequency" => json!({
                "total_logins": self.overall.logins,
                "unique_users": self.overall.users,
                "average_logins_per_user": if self.overall.users == 0 { 0.0 } else {
                    round(self.overall.logins as f64 / self.overall.users as f64, 2)
                },
                "average_logins": mean(self.logins.iter().map(|l| l.logins), n),
            }),
            _ => {
                let adjective = match period {
                    "week" => "weekly",
                    "month" => "monthly",
                    "quarter" => "quarterly",
                    _ => "daily",
                };
                json!({
                    format!("average_{adjective}_active"): mean(self.logins.iter().map(|l| l.users), n),
                    "peak_active": self.logins.iter().map(|l| l.users).max().unwrap_or(0),
                    "unique_active_users": self.overall.users,
                    "growth_rate": growth_rate,
                    "retention_rate": percent(self.overall.users - self.overall.new_users, self.base),
                })
            }
        };
        (data.into_iter().map(Value::Object).collect(), summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn calendar_buckets_start_on_month_and_quarter_boundaries() {
        assert_eq!(
            next_bucket("day", date("2025-02-28")),
            Some(date("2025-03-01"))
        );
        assert_eq!(
            next_bucket("week", date("2025-02-26")),
            Some(date("2025-03-05"))
        );
        assert_eq!(
            next_bucket("month", date("2025-01-17")),
            Some(date("2025-02-01"))
        );
        assert_eq!(
            next_bucket("quarter", date("2025-02-17")),
            Some(date("2025-04-01"))
        );
        assert_eq!(
            next_bucket("quarter", date("2025-12-01")),
            Some(date("2026-01-01"))
        );
    }

    #[test]
    fn ranges_are_bounded_and_ordered() {
        let pick = |s, e| date_range(Some(s), Some(e), |d| d);
        assert!(pick("2025-01-01", "2025-12-31").is_ok());
        assert!(pick("2024-01-01", "2024-12-31").is_ok(), "366 days");
        assert!(pick("2024-01-01", "2025-01-01").is_err(), "367 days");
        assert!(pick("2025-01-02", "2025-01-01").is_err());
        assert!(pick("2025-13-01", "2025-01-01").is_err());
        assert_eq!(
            pick("2025-01-01T23:00:00-02:00", "2025-01-03").unwrap().0,
            date("2025-01-02")
        );
    }
}
