//! The audit log (`GET /audit/logs`, `GET /audit/logs/export`), statistics (`GET
//! /stats/overview`, `GET /stats/users`, seed 001) and user analytics (`GET /analytics/users`,
//! seed 003). Reading the audit log needs `audit:read`, the rest `stats:read`; the permission
//! is checked before the query string is looked at, so a caller without it learns nothing from
//! validation errors.
//!
//! Days are UTC days. A range is at most [`MAX_RANGE_DAYS`] days long.

use actix_web::{HttpRequest, web};
use chrono::{NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::error::{ApiError, FieldError, query_error};
use crate::domain::Timestamp;
use crate::http::endpoint;
use crate::paths;
use crate::store::reports::Buckets;

/// The longest range of a statistics or analytics query, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// The default page size of the audit log (seed 001).
const DEFAULT_AUDIT_LIMIT: i64 = 20;

const DAY: i64 = 86_400;

mod analytics;
mod audit_log;
mod stats;

use analytics::analytics_users;
use audit_log::{audit_logs, export_audit_logs};
use stats::{stats_overview, stats_users};

/// The routes of the reporting API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    const AUDIT: &[&str] = &["audit:read"];
    const STATS: &[&str] = &["stats:read"];
    cfg.service(
        endpoint(paths::AUDIT_LOGS)
            .get_as(AUDIT, audit_logs)
            .finish(),
    )
    .service(
        endpoint(paths::AUDIT_LOGS_EXPORT)
            .get_as(AUDIT, export_audit_logs)
            .finish(),
    )
    .service(
        endpoint(paths::STATS_OVERVIEW)
            .get_as(STATS, stats_overview)
            .finish(),
    )
    .service(
        endpoint(paths::STATS_USERS)
            .get_as(STATS, stats_users)
            .finish(),
    )
    .service(
        endpoint(paths::ANALYTICS_USERS)
            .get_as(STATS, analytics_users)
            .finish(),
    );
}

/// Parses the query string into `T`, answering a misfit with the contract's 400.
fn query<T: DeserializeOwned>(http: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(http.query_string())
        .map(web::Query::into_inner)
        .map_err(query_error)
}

// --- Dates shared by the statistics and the analytics ---------------------------------------

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

/// Buckets starting at each of `starts`, the last ending with the day `end`.
fn buckets_of(starts: &[NaiveDate], end: NaiveDate) -> Buckets {
    let end = midnight(end) + DAY;
    Buckets::new(starts.iter().map(|d| midnight(*d)).collect(), end)
        .expect("ascending dates within the range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
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

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    audit_log::audit_logs,
    audit_log::export_audit_logs,
    stats::stats_overview,
    stats::stats_users,
    analytics::analytics_users
))]
pub struct Doc;

/// The shapes of the reports for the OpenAPI document (the handlers build them with `json!`).
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use utoipa::ToSchema;

    /// An audit entry (seed 001's model, plus `request_id`).
    #[derive(ToSchema)]
    pub struct AuditEntry {
        pub id: String,
        /// Who acted.
        pub user_id: Option<String>,
        pub user_email: Option<String>,
        pub action: String,
        pub resource: String,
        pub resource_id: Option<String>,
        #[schema(schema_with = crate::api::openapi::any_value)]
        pub old_values: Option<Value>,
        #[schema(schema_with = crate::api::openapi::any_value)]
        pub new_values: Option<Value>,
        pub ip_address: Option<String>,
        pub user_agent: Option<String>,
        pub request_id: Option<String>,
        #[schema(schema_with = crate::api::openapi::any_value)]
        pub additional_info: Value,
        pub created_at: Timestamp,
    }

    /// A page of the audit log.
    #[derive(ToSchema)]
    pub struct AuditLogList {
        pub logs: Vec<AuditEntry>,
        pub pagination: crate::api::openapi::Pagination,
    }

    /// User counts.
    #[derive(ToSchema)]
    pub struct UserCounts {
        pub total: i64,
        pub active: i64,
        pub inactive: i64,
        pub locked: i64,
        pub new_this_month: i64,
    }

    /// Session counts.
    #[derive(ToSchema)]
    pub struct SessionCounts {
        pub active: i64,
        pub total_today: i64,
        pub unique_users_today: i64,
    }

    /// Security events today.
    #[derive(ToSchema)]
    pub struct SecurityCounts {
        pub failed_logins_today: i64,
        pub locked_accounts_today: i64,
        pub password_resets_today: i64,
    }

    /// Holders of administrative roles: `total`, `active`, each such role by name, and
    /// `by_role`.
    #[derive(ToSchema)]
    pub struct AdminCounts {
        pub total: i64,
        pub active: i64,
        pub by_role: BTreeMap<String, i64>,
    }

    /// Seed 001's overview.
    #[derive(ToSchema)]
    pub struct StatsOverview {
        pub users: UserCounts,
        pub admins: AdminCounts,
        pub sessions: SessionCounts,
        pub security: SecurityCounts,
    }

    /// A count on a day.
    #[derive(ToSchema)]
    pub struct DayCount {
        /// `YYYY-MM-DD`.
        #[schema(format = Date)]
        pub date: String,
        pub count: i64,
    }

    /// Seed 001's user statistics.
    #[derive(ToSchema)]
    pub struct StatsUsers {
        /// `day`, `week`, `month`, `year` or `custom`.
        pub period: String,
        #[schema(format = Date)]
        pub start_date: String,
        #[schema(format = Date)]
        pub end_date: String,
        pub registrations: Vec<DayCount>,
        pub logins: Vec<DayCount>,
        pub by_role: BTreeMap<String, i64>,
    }

    /// One bucket of the analytics: `date` and the metric's members (`total_users`,
    /// `active_users`, `new_users`, `returning_users`; `count`, `total_users`; or `logins`,
    /// `unique_users`, `average_per_user`), and `by_role` when grouped by role.
    #[derive(ToSchema)]
    pub struct AnalyticsPoint {
        /// The first day of the bucket, `YYYY-MM-DD`.
        #[schema(format = Date)]
        pub date: String,
        pub by_role: Option<BTreeMap<String, i64>>,
    }

    /// Seed 003's user analytics.
    #[derive(ToSchema)]
    pub struct Analytics {
        /// `active_users`, `new_registrations` or `login_frequency`.
        pub metric: String,
        /// `day`, `week`, `month` or `quarter`.
        pub period: String,
        #[schema(format = Date)]
        pub start_date: String,
        #[schema(format = Date)]
        pub end_date: String,
        /// `role`, or `null`.
        pub group_by: Option<String>,
        pub data: Vec<AnalyticsPoint>,
        /// Totals, averages, peaks and rates of the metric over the range.
        #[schema(value_type = Object)]
        pub summary: Value,
    }
}
