//! The reporting API: the audit log and its exports, statistics and user analytics.

use chrono::{Days, NaiveDate, Utc};
use diesel::prelude::*;
use latchkey::accounts::users::{NewUser, create_user};
use latchkey::admin::export::{Export, ExportFormat};
use latchkey::domain::{Email, Username, now};
use latchkey::events::audit::{Actor, AuditEvent, record};
use latchkey::store::audit::{AuditRow, insert};
use latchkey::store::roles::{self, RoleRow};
use latchkey::store::schema::{user_security, users};
use serde_json::{Value, json};

use crate::admin_support::{Api, admin_token, user_with_roles};
use crate::helpers::{TestApp, spawn_app};

const DAY: i64 = 86_400;

/// Creates a person with `roles` (no password), optionally registered at `created_at`.
async fn person(app: &TestApp, username: &str, roles: &[&str], created_at: Option<i64>) -> String {
    let (name, email) = (
        Username::parse(username).unwrap(),
        Email::parse(&format!("{username}@example.com")).unwrap(),
    );
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    app.state
        .store
        .run(move |conn| {
            let id = create_user(
                conn,
                NewUser {
                    username: name,
                    email,
                    password_hash: None,
                    roles,
                    email_verified: true,
                },
            )
            .unwrap()
            .id;
            if let Some(at) = created_at {
                diesel::update(users::table.find(&id))
                    .set(users::created_at.eq(at))
                    .execute(conn)?;
            }
            Ok(id)
        })
        .await
        .unwrap()
}

/// Writes an audit entry at `created_at` (unix seconds) with the given actor.
async fn entry_at(app: &TestApp, action: &str, actor: Option<&str>, created_at: i64) {
    let row = AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        actor_id: actor.map(str::to_owned),
        actor_email: None,
        action: action.to_owned(),
        resource: "users".into(),
        resource_id: actor.map(str::to_owned),
        old_values: None,
        new_values: None,
        ip_address: None,
        user_agent: None,
        request_id: None,
        additional_info: None,
        created_at,
    };
    app.state
        .store
        .run(move |conn| insert(conn, &row))
        .await
        .unwrap();
}

/// Records an entry through the audit writer, now.
async fn recorded(
    app: &TestApp,
    actor: Option<&str>,
    action: &'static str,
    resource: &'static str,
    resource_id: &str,
    new_values: Value,
) {
    let actor = Actor {
        user_id: actor.map(str::to_owned),
        email: None,
        ip_address: Some("192.0.2.7".into()),
        user_agent: Some("reports-test/1.0".into()),
        request_id: Some("req_reports".into()),
    };
    let resource_id = resource_id.to_owned();
    app.state
        .store
        .run(move |conn| {
            record(
                conn,
                &actor,
                AuditEvent::new(action, resource, Some(&resource_id))
                    .values(Some(json!({"status": "active"})), Some(new_values))
                    .info(json!({"reason": "test"})),
            )
        })
        .await
        .unwrap();
}

/// The UTC date `days` before today.
fn days_ago(days: u64) -> NaiveDate {
    Utc::now().date_naive() - Days::new(days)
}

/// Noon (UTC) of a date, in unix seconds.
fn noon(date: NaiveDate) -> i64 {
    date.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp()
}

fn ids(body: &Value) -> Vec<String> {
    body["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

const ENDPOINTS: &[&str] = &[
    "/audit/logs",
    "/audit/logs/export?format=csv",
    "/stats/overview",
    "/stats/users",
    "/analytics/users",
];

#[tokio::test]
async fn reporting_endpoints_need_a_token_and_their_permission() {
    let app = spawn_app().await;
    let (_, user) = user_with_roles(&app, "bob", &["user"]).await;
    app.state
        .store
        .run(|conn| {
            roles::insert(
                conn,
                &RoleRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    name: "auditor".into(),
                    description: "reads the audit log".into(),
                    created_at: now(),
                    updated_at: now(),
                },
                &["audit:read".to_owned()],
            )
        })
        .await
        .unwrap();
    let (_, auditor) = user_with_roles(&app, "alice", &["auditor"]).await;
    let admin = admin_token(&app).await;
    for path in ENDPOINTS {
        let anonymous = app.get(&format!("/api/v1{path}")).await;
        assert_eq!(anonymous.status().as_u16(), 401, "{path}");
        assert!(
            anonymous
                .headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{path}"
        );
        // The permission is checked before the query: a bad one still gets a 403.
        let separator = if path.contains('?') { '&' } else { '?' };
        let (status, body) = Api::new(&app, &user)
            .get(&format!("{path}{separator}limit=x"))
            .await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"], "forbidden");
        let (status, _) = Api::new(&app, &user).get(path).await;
        assert_eq!(status, 403, "{path}");
        let response = Api::new(&app, &admin).get_raw(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let audit = path.starts_with("/audit");
        let response = Api::new(&app, &auditor).get_raw(path).await;
        assert_eq!(
            response.status().as_u16(),
            if audit { 200 } else { 403 },
            "{path} with audit:read only"
        );
    }
}

#[tokio::test]
async fn audit_log_lists_entries_newest_first_with_filters_and_paging() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let bob = person(&app, "bob", &["user"], None).await;
    let (_, me) = api.get("/auth/me").await;
    let admin_id = me["id"].as_str().unwrap().to_owned();
    recorded(
        &app,
        Some(&admin_id),
        "user_created",
        "users",
        &bob,
        json!({"email": "bob@example.com", "password": "hunter2"}),
    )
    .await;
    recorded(
        &app,
        Some(&bob),
        "profile_updated",
        "users",
        &bob,
        json!({"first_name": "Bob"}),
    )
    .await;
    let old = noon(days_ago(40));
    entry_at(&app, "role_changed", Some(&admin_id), old).await;
    let mark = Utc::now().date_naive().to_string();

    let (status, body) = api.get(&format!("/audit/logs?resource_id={bob}")).await;
    assert_eq!(status, 200, "{body}");
    let logs = body["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    let created = &logs[1];
    assert_eq!(created["action"], "user_created");
    assert_eq!(created["user_id"], admin_id.as_str());
    assert_eq!(
        created["user_email"], me["email"],
        "looked up by the writer"
    );
    assert_eq!(created["resource"], "users");
    assert_eq!(created["old_values"], json!({"status": "active"}));
    assert_eq!(
        created["new_values"],
        json!({"email": "bob@example.com", "password": "[REDACTED]"}),
        "values are objects, secrets redacted"
    );
    assert_eq!(created["ip_address"], "192.0.2.7");
    assert_eq!(created["user_agent"], "reports-test/1.0");
    assert_eq!(created["request_id"], "req_reports");
    assert_eq!(created["additional_info"], json!({"reason": "test"}));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(logs[0]["action"], "profile_updated", "newest first");
    assert_eq!(body["pagination"]["total"], 2);

    let count = |body: &Value| body["logs"].as_array().unwrap().len();
    let (_, body) = api.get(&format!("/audit/logs?user_id={bob}")).await;
    assert_eq!(count(&body), 1);
    assert_eq!(body["logs"][0]["action"], "profile_updated");
    let (_, body) = api.get("/audit/logs?action=role_changed").await;
    assert_eq!(count(&body), 1);
    let (_, body) = api.get("/audit/logs?resource=clients").await;
    assert_eq!(count(&body), 0);
    let (_, body) = api
        .get(&format!("/audit/logs?start_date={mark}&resource_id={bob}"))
        .await;
    assert_eq!(count(&body), 2, "since midnight: the two recorded today");
    let end = days_ago(40).to_string();
    let (_, body) = api.get(&format!("/audit/logs?end_date={end}")).await;
    assert_eq!(count(&body), 1, "a plain end date includes that whole day");
    let (_, body) = api
        .get(&format!(
            "/audit/logs?start_date={end}T00:00:00Z&end_date={end}T11:59:59Z"
        ))
        .await;
    assert_eq!(count(&body), 0, "RFC 3339 bounds are exact");

    let (status, body) = api
        .get("/audit/logs?action=role_changed&page=1&size=1")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["pagination"]["limit"], 1);
    // The admin's entries: user_created, role_changed, and whatever its login wrote.
    let mine = format!("/audit/logs?user_id={admin_id}");
    let (_, all) = api.get(&format!("{mine}&limit=100")).await;
    let total = all["pagination"]["total"].as_i64().unwrap();
    assert!(total >= 2);
    assert_eq!(ids(&all).len() as i64, total);
    let (_, page2) = api.get(&format!("{mine}&page=2&limit=1")).await;
    assert_eq!(page2["pagination"]["page"], 2);
    assert_eq!(page2["pagination"]["pages"], total);
    assert_eq!(page2["pagination"]["has_more"], total > 2);
    assert_eq!(ids(&page2), ids(&all)[1..2].to_vec());
    let (_, by_offset) = api.get(&format!("{mine}&offset=1&limit=1")).await;
    assert_eq!(ids(&by_offset), ids(&all)[1..2].to_vec());

    for (query, status) in [
        ("limit=101", 400),
        ("limit=0", 400),
        ("cursor=garbage", 400),
        ("colour=blue", 400),
        ("user_id=not-a-uuid", 422),
        ("start_date=yesterday", 422),
        ("end_date=2025-02-30", 422),
        ("start_date=2025-02-02&end_date=2025-02-01", 422),
    ] {
        let (got, body) = api.get(&format!("/audit/logs?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(body["request_id"].is_string() && body["message"].is_string());
        if status == 422 {
            assert_eq!(body["error"], "validation_error");
            assert!(body["details"][0]["field"].is_string());
        }
    }
}

#[tokio::test]
async fn audit_log_cursor_pages_stay_consistent_while_entries_are_written() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let base = now() - 1000;
    for i in 0..5 {
        entry_at(&app, "seeded", None, base + i).await;
    }
    let (status, first) = api.get("/audit/logs?action=seeded&cursor=&limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["pagination"]["has_more"], true);
    let mut seen = ids(&first);
    // Newer entries written between the requests do not shift the following pages.
    for i in 0..3 {
        entry_at(&app, "seeded", None, base + 100 + i).await;
    }
    let mut cursor = first["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let (status, page) = api
            .get(&format!(
                "/audit/logs?action=seeded&cursor={cursor}&limit=2"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => {
                assert_eq!(page["pagination"]["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 5, "the five entries, once each: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
    let (_, all) = api.get("/audit/logs?action=seeded&limit=100").await;
    assert_eq!(
        ids(&all)[3..].to_vec(),
        seen,
        "the same order as offset paging"
    );
    let (status, _) = api
        .get(&format!("/audit/logs?cursor={cursor}&page=2"))
        .await;
    assert_eq!(status, 400, "a cursor does not combine with a page");
}

/// A CSV/XLSX cell as the JSON list value reads when written as text.
fn as_text(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

const COLUMNS: [&str; 13] = [
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

#[tokio::test]
async fn audit_log_exports_parse_back_to_the_listed_rows() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let tricky = "=HYPERLINK(\"x\"), with a comma\nand a \"quote\"";
    recorded(
        &app,
        None,
        "client_created",
        "clients",
        tricky,
        json!({"name": tricky}),
    )
    .await;
    recorded(
        &app,
        None,
        "client_created",
        "clients",
        "-2+3",
        json!({"n": 1}),
    )
    .await;
    entry_at(&app, "client_deleted", None, now() - 50).await;

    let (_, listed) = api.get("/audit/logs?resource=clients&limit=100").await;
    let listed = listed["logs"].as_array().unwrap().clone();
    let (_, deleted) = api.get("/audit/logs?action=client_deleted").await;
    assert_eq!(listed.len(), 2);
    assert_eq!(deleted["logs"].as_array().unwrap().len(), 1);

    // CSV: RFC 4180 quoting, formula-looking text neutralised with a leading quote.
    let response = api.get_raw("/audit/logs/export?resource=clients").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.headers()["cache-control"], "no-store");
    let today = Utc::now().date_naive();
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"audit-logs-{today}.csv\"").as_str()
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        COLUMNS
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let expected: Vec<Vec<String>> = listed
        .iter()
        .map(|e| COLUMNS.iter().map(|c| as_text(&e[*c])).collect())
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(rows[1][5], format!("'{tricky}"));
    assert_eq!(rows[0][5], "'-2+3");

    // JSON: exactly the listed objects.
    let response = api
        .get_raw("/audit/logs/export?resource=clients&format=json")
        .await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let exported: Value = response.json().await.unwrap();
    assert_eq!(exported, Value::Array(listed.clone()));

    // XLSX: the same cells as text.
    let response = api
        .get_raw("/audit/logs/export?resource=clients&format=xlsx")
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".xlsx\"")
    );
    let bytes = response.bytes().await.unwrap();
    let sheet = read_xlsx(&bytes);
    assert_eq!(sheet[0], COLUMNS.map(str::to_owned).to_vec());
    assert_eq!(sheet[1..].to_vec(), expected);

    // Filters apply; no rows is still a valid file.
    let response = api
        .get_raw("/audit/logs/export?format=json&action=nothing")
        .await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!([]));
    let text = api
        .get_raw("/audit/logs/export?action=nothing")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text.lines().count(), 1, "the header only");

    for (query, status) in [
        ("format=pdf", 422),
        ("format=csv&start_date=soon", 422),
        ("format=csv&page=2", 400),
    ] {
        let (got, body) = api.get(&format!("/audit/logs/export?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
    }
    let (_, body) = api.get("/audit/logs/export?format=pdf").await;
    assert_eq!(body["details"][0]["field"], "format");
}

/// The cells of the first worksheet, as text.
fn read_xlsx(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let mut workbook: Xlsx<_> =
        open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    Data::Float(f) => f.to_string(),
                    Data::Int(i) => i.to_string(),
                    Data::Bool(b) => b.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn exports_stream_many_rows_in_batches_and_cap_xlsx() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let base = now() - 5000;
    app.state
        .store
        .run(move |conn| {
            for i in 0..1234 {
                insert(
                    conn,
                    &AuditRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        actor_id: None,
                        actor_email: None,
                        action: "bulk".into(),
                        resource: "users".into(),
                        resource_id: Some(format!("r{i:04}")),
                        old_values: None,
                        new_values: None,
                        ip_address: None,
                        user_agent: None,
                        request_id: None,
                        additional_info: None,
                        created_at: base + i / 3,
                    },
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let response = api.get_raw("/audit/logs/export?action=bulk").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let resources: Vec<String> = reader.records().map(|r| r.unwrap()[5].to_owned()).collect();
    let expected: Vec<String> = (0..1234).rev().map(|i| format!("r{i:04}")).collect();
    assert_eq!(
        resources, expected,
        "every row once, newest first, across batches"
    );
    let exported: Vec<Value> = api
        .get_raw("/audit/logs/export?action=bulk&format=json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(exported.len(), 1234);

    // The XLSX cap is enforced before anything is sent.
    let store = app.state.store.clone();
    let fetch = |_: &mut latchkey::store::AnyConnection, after: Option<i64>, limit: i64| {
        let start = after.map_or(0, |a| a + 1);
        Ok((start..(start + limit).min(25))
            .map(|i| (i, vec![json!(i)]))
            .collect())
    };
    let refused = Export::new("numbers", &["n"])
        .batch_size(10)
        .xlsx_row_limit(20)
        .respond(&store, ExportFormat::Xlsx, fetch)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "export_too_large");
    let fits = Export::new("numbers", &["n"])
        .batch_size(10)
        .xlsx_row_limit(25)
        .respond(&store, ExportFormat::Xlsx, fetch)
        .await
        .unwrap();
    assert_eq!(fits.status().as_u16(), 200);
    let bytes = actix_web::body::to_bytes(fits.into_body()).await.unwrap();
    let sheet = read_xlsx(&bytes);
    assert_eq!(sheet.len(), 26);
    assert_eq!(sheet[25], vec!["24".to_owned()]);
}

#[tokio::test]
async fn stats_overview_counts_users_admins_sessions_and_security_events() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (bob, _) = user_with_roles(&app, "bob", &["user"]).await;
    user_with_roles(&app, "dave", &["admin", "user"]).await;
    let carol = person(&app, "carol", &["user"], None).await;
    let erin = person(&app, "erin", &["user"], Some(now() - 400 * DAY)).await;
    let locked_until = now() + 3600;
    let carol_id = carol.clone();
    app.state
        .store
        .run(move |conn| {
            diesel::update(users::table.find(&erin))
                .set(users::status.eq("disabled"))
                .execute(conn)?;
            diesel::update(user_security::table.find(&carol_id))
                .set(user_security::locked_until.eq(locked_until))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    for _ in 0..3 {
        entry_at(&app, "login_failed", Some(&bob), now()).await;
    }
    entry_at(&app, "login_failed", Some(&bob), now() - 2 * DAY).await;
    entry_at(&app, "account_locked", Some(&carol), now()).await;
    entry_at(&app, "password_reset", Some(&bob), now()).await;
    entry_at(&app, "password_reset", Some(&bob), now()).await;

    let (status, body) = Api::new(&app, &admin).get("/stats/overview").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["users"],
        json!({"total": 5, "active": 3, "inactive": 1, "locked": 1, "new_this_month": 4}),
        "admin, bob, dave active; carol locked out; erin disabled and old"
    );
    assert_eq!(
        body["admins"],
        json!({"total": 2, "active": 2, "admin": 2, "by_role": {"admin": 2}}),
        "the role `user` grants only profile:*"
    );
    // Three logins (admin, bob, dave), each an API session.
    assert_eq!(
        body["sessions"],
        json!({"active": 3, "total_today": 3, "unique_users_today": 3})
    );
    assert_eq!(
        body["security"],
        json!({"failed_logins_today": 3, "locked_accounts_today": 1, "password_resets_today": 2})
    );
}

#[tokio::test]
async fn stats_users_zero_fills_days_and_counts_roles() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let a = person(&app, "amy", &["user"], Some(noon(days_ago(3)))).await;
    person(&app, "ben", &["user"], Some(noon(days_ago(3)) + 60)).await;
    person(&app, "cid", &["admin"], Some(noon(days_ago(1)))).await;
    for _ in 0..3 {
        entry_at(&app, "login_succeeded", Some(&a), noon(days_ago(3))).await;
    }
    entry_at(&app, "login_succeeded", Some(&a), noon(days_ago(2))).await;
    entry_at(&app, "login_failed", Some(&a), noon(days_ago(2))).await;

    let (start, end) = (days_ago(4), days_ago(1));
    let (status, body) = api
        .get(&format!("/stats/users?start_date={start}&end_date={end}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let series = |counts: [i64; 4]| -> Value {
        (0..4)
            .map(|i| json!({"date": days_ago(4 - i as u64).to_string(), "count": counts[i]}))
            .collect()
    };
    assert_eq!(body["period"], "custom");
    assert_eq!(body["start_date"], start.to_string());
    assert_eq!(body["end_date"], end.to_string());
    assert_eq!(body["registrations"], series([0, 2, 0, 1]));
    assert_eq!(body["logins"], series([0, 3, 1, 0]));
    assert_eq!(body["by_role"], json!({"admin": 2, "user": 2}));

    let (_, week) = api.get("/stats/users?period=week").await;
    let days = week["registrations"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[6]["date"], Utc::now().date_naive().to_string());
    assert_eq!(days[6]["count"], 1, "the admin, created today");
    let (_, default) = api.get("/stats/users").await;
    assert_eq!(default["period"], "month");
    assert_eq!(default["logins"].as_array().unwrap().len(), 30);
    let (_, today) = api.get("/stats/users?period=day").await;
    assert_eq!(today["registrations"].as_array().unwrap().len(), 1);
    let (_, year) = api.get("/stats/users?period=year").await;
    assert_eq!(year["registrations"].as_array().unwrap().len(), 365);

    for (query, status) in [
        ("period=fortnight", 422),
        ("period=week&start_date=2025-01-01", 422),
        ("start_date=2025-01-02&end_date=2025-01-01", 422),
        ("start_date=2024-01-01&end_date=2025-01-01", 422),
        ("start_date=2025-01-01&end_date=2025-01-01", 200),
        ("start_date=01/02/2025", 422),
        ("colour=blue", 400),
    ] {
        let (got, body) = api.get(&format!("/stats/users?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
    }
}

#[tokio::test]
async fn analytics_report_active_new_and_returning_users() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let (s0, s1, s2) = (days_ago(10), days_ago(9), days_ago(8));
    let old = person(&app, "olga", &["user"], Some(noon(days_ago(15)))).await;
    let new = person(&app, "nina", &["admin"], Some(noon(s1) - 3600)).await;
    entry_at(&app, "login_succeeded", Some(&old), noon(s0)).await;
    entry_at(&app, "login_succeeded", Some(&old), noon(s0) + 60).await;
    entry_at(&app, "login_succeeded", Some(&old), noon(s1)).await;
    entry_at(&app, "login_succeeded", Some(&new), noon(s1)).await;
    let range = format!("start_date={s0}&end_date={s2}");

    let (status, body) = api.get(&format!("/analytics/users?{range}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metric"], "active_users");
    assert_eq!(body["period"], "day");
    assert_eq!(
        body["data"],
        json!([
            {"date": s0.to_string(), "total_users": 1, "active_users": 1, "new_users": 0, "returning_users": 1},
            {"date": s1.to_string(), "total_users": 2, "active_users": 2, "new_users": 1, "returning_users": 1},
            {"date": s2.to_string(), "total_users": 2, "active_users": 0, "new_users": 0, "returning_users": 0},
        ])
    );
    assert_eq!(
        body["summary"],
        json!({
            "average_daily_active": 1.0,
            "peak_active": 2,
            "unique_active_users": 2,
            "growth_rate": 100.0,
            "retention_rate": 100.0,
        })
    );

    let (_, body) = api
        .get(&format!(
            "/analytics/users?{range}&metric=login_frequency&group_by=role"
        ))
        .await;
    assert_eq!(body["group_by"], "role");
    assert_eq!(
        body["data"][0],
        json!({"date": s0.to_string(), "logins": 2, "unique_users": 1, "average_per_user": 2.0,
               "by_role": {"admin": 0, "user": 2}})
    );
    assert_eq!(body["data"][1]["by_role"], json!({"admin": 1, "user": 1}));
    assert_eq!(
        body["summary"],
        json!({"total_logins": 4, "unique_users": 2, "average_logins_per_user": 2.0, "average_logins": 1.3})
    );

    let (_, body) = api
        .get(&format!(
            "/analytics/users?{range}&metric=new_registrations"
        ))
        .await;
    let counts: Vec<i64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![0, 1, 0]);
    assert_eq!(body["summary"]["total"], 1);

    let (_, body) = api
        .get(&format!(
            "/analytics/users?{range}&metric=active_users&group_by=role"
        ))
        .await;
    assert_eq!(body["data"][1]["by_role"], json!({"admin": 1, "user": 1}));
}

#[tokio::test]
async fn analytics_buckets_follow_weeks_months_and_quarters() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let api = Api::new(&app, &admin);
    let at = |text: &str| noon(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap());
    person(&app, "jan", &["user"], Some(at("2025-01-25"))).await;
    person(&app, "feb", &["user"], Some(at("2025-02-10"))).await;
    person(&app, "feb2", &["user"], Some(at("2025-02-28"))).await;
    person(&app, "may", &["user"], Some(at("2025-05-05"))).await;
    let buckets = |body: &Value| -> Vec<(String, i64)> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["date"].as_str().unwrap().to_owned(),
                    p["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let get = |query: String| {
        let api = &api;
        async move {
            let (status, body) = api
                .get(&format!(
                    "/analytics/users?metric=new_registrations&{query}"
                ))
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    let owned = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(d, n)| ((*d).to_owned(), *n))
            .collect::<Vec<_>>()
    };
    let body = get("period=month&start_date=2025-01-20&end_date=2025-03-05".into()).await;
    assert_eq!(
        buckets(&body),
        owned(&[("2025-01-20", 1), ("2025-02-01", 2), ("2025-03-01", 0)])
    );
    assert_eq!(body["data"][2]["total_users"], 3);
    let body = get("period=quarter&start_date=2025-01-20&end_date=2025-07-05".into()).await;
    assert_eq!(
        buckets(&body),
        owned(&[("2025-01-20", 3), ("2025-04-01", 1), ("2025-07-01", 0)])
    );
    let body = get("period=week&start_date=2025-01-20&end_date=2025-02-10".into()).await;
    assert_eq!(
        buckets(&body),
        owned(&[
            ("2025-01-20", 1),
            ("2025-01-27", 0),
            ("2025-02-03", 0),
            ("2025-02-10", 1)
        ]),
        "the last week is cut at end_date, the range ending with its day"
    );
    let body = get("period=month".into()).await;
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        12,
        "a year of months by default"
    );

    for query in [
        "metric=revenue",
        "period=year",
        "group_by=department",
        "start_date=2024-01-01&end_date=2025-06-01",
        "start_date=2025-01-01&end_date=nope",
    ] {
        let (status, body) = api.get(&format!("/analytics/users?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"], "validation_error");
    }
}
