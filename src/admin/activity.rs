//! Seed 003's `GET /users/{id}/activity`: a summary of when and how a user signs in, and
//! what was done by or to them lately, from the audit log.

use serde_json::{Value, json};

use super::AdminError;
use crate::domain::Timestamp;
use crate::store::activity as rows;
use crate::store::{AnyConnection, from_json};

/// Names of the days of the week, Monday first.
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The key with the highest count (the earliest on a tie).
fn busiest(counts: &[(i64, i64)]) -> Option<i64> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(key, _)| *key)
}

/// The activity of a user: a summary and the latest `limit` entries.
pub fn activity(conn: &mut AnyConnection, user_id: &str, limit: i64) -> Result<Value, AdminError> {
    super::users::find(conn, user_id)?;
    let (total_logins, last_login) = rows::logins(conn, user_id)?;
    let weekday = busiest(&rows::logins_by_weekday(conn, user_id)?)
        .and_then(|d| WEEKDAYS.get(d as usize).copied());
    let hour = busiest(&rows::logins_by_hour(conn, user_id)?)
        .map(|h| format!("{:02}:00-{:02}:00", h, (h + 1) % 24));
    let recent: Vec<Value> = rows::recent(conn, user_id, limit)?
        .into_iter()
        .map(|row| {
            let changes: Vec<String> = row
                .new_values
                .as_deref()
                .and_then(|v| from_json::<Value>("audit_logs.new_values", v).ok())
                .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
                .unwrap_or_default();
            let mut entry = json!({
                "id": row.id,
                "event": row.action,
                "resource": row.resource,
                "resource_id": row.resource_id,
                "by_user": row.actor_id.as_deref() == Some(user_id),
                "timestamp": Timestamp(row.created_at),
                "ip_address": row.ip_address,
                "user_agent": row.user_agent,
            });
            if !changes.is_empty() {
                entry["changes"] = json!(changes);
            }
            entry
        })
        .collect();
    Ok(json!({
        "user_id": user_id,
        "activity_summary": {
            "total_logins": total_logins,
            "last_login": last_login.map(Timestamp),
            "average_session_duration": rows::average_session_secs(conn, user_id)?,
            "most_active_day": weekday,
            "preferred_login_time": hour,
        },
        "recent_activities": recent,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_key_wins_and_ties_go_to_the_earliest() {
        assert_eq!(busiest(&[(1, 3), (4, 5), (2, 5)]), Some(2));
        assert_eq!(busiest(&[]), None);
    }
}
