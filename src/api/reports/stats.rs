//! Statistics (seed 001): `GET /stats/overview` and `GET /stats/users`.

use super::*;
use crate::api::error::{ApiError, FieldError};
use crate::domain::now;
use crate::startup::AppState;
use crate::store::reports::{self, UserEvent, actions};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `GET /api/v1/stats/overview` (seed 001). "Today" and "this month" are UTC. `admins` counts
/// the holders of administrative roles (any role granting a permission outside `profile:*`):
/// `total`, `active`, then each such role by name as in the seed (a role named `total`,
/// `active` or `by_role` appears only in `by_role`), and `by_role` with all of them.
#[utoipa::path(
    get,
    path = crate::paths::STATS_OVERVIEW,
    tag = "stats",
    responses(
        (status = 200, description = "Counts of users, administrators, sessions and security events", body = super::schema::StatsOverview),
    ),
    security(("bearer" = ["stats:read"])),
)]
pub(super) async fn stats_overview(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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

/// The query of `GET /stats/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StatsUsersQuery {
    /// `day`, `week`, `month` (the default) or `year`: a window ending today.
    period: Option<String>,
    /// `YYYY-MM-DD` (instead of `period`).
    start_date: Option<String>,
    /// `YYYY-MM-DD` (instead of `period`).
    end_date: Option<String>,
}

/// `GET /api/v1/stats/users` (seed 001): registrations and successful logins per UTC day
/// (every day of the range, zeros included) and current users per role. `period` is a window
/// ending today: `day` (today), `week` (7 days), `month` (30 days, the default) or `year`
/// (365 days); or give `start_date` and/or `end_date` instead (`period` is then `custom`; a
/// lone `end_date` starts 29 days earlier, a lone `start_date` ends today).
#[utoipa::path(
    get,
    path = crate::paths::STATS_USERS,
    tag = "stats",
    params(StatsUsersQuery),
    responses(
        (status = 200, description = "Registrations and logins per UTC day, and users per role", body = super::schema::StatsUsers),
        (status = 422, description = "A bad `period` or date, `period` with dates, or a range longer than 366 days", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["stats:read"])),
)]
pub(super) async fn stats_users(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
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
