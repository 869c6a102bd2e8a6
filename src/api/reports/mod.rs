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
