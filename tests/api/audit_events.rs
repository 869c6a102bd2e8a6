//! Security events in the audit log and the webhooks: logins (API and pages, with and without
//! a second factor), lockout, MFA changes, logout and session revocation, password and email
//! changes, registration and profile changes, refresh-token reuse and key rotation. Each writes
//! one entry naming who did it, from where and in which request, with no secret in it; the
//! contract's webhook events are queued only for subscribed webhooks.

use std::time::Duration;

use diesel::prelude::*;
use latchkey::store::audit::{AuditFilter, AuditRow};
use latchkey::store::schema::{outbox, webhooks};
use serde_json::{Value, json};

use crate::flows::{Browser, authorize_url, input_value, param};
use crate::helpers::{TestApp, eventually, spawn_app_with};

const PASSWORD: &str = "audit-password-Xq7-plain";
const USER_AGENT: &str = "AuditProbe/7.3 (distinctive)";

/// A server whose outbox worker stays idle, so queued webhook deliveries can be read back.
async fn app() -> TestApp {
    spawn_app_with(Box::new(|s| {
        s.outbox.poll_interval = Duration::from_secs(3600);
        s.refresh_reuse_grace_secs = 0;
    }))
    .await
}

/// An HTTP client with the distinctive user agent (cookies kept, redirects not followed).
fn ua_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A browser that sends the distinctive user agent.
fn ua_browser(app: &TestApp) -> Browser {
    let mut browser = Browser::new(app);
    browser.http = ua_client();
    browser
}

/// What a test needs of a response: status, request id and JSON body.
struct Answer {
    status: u16,
    request_id: String,
    body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        request_id,
        body,
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = ua_client().request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> Answer {
    send(app, reqwest::Method::POST, path, token, Some(body)).await
}

async fn api_login(app: &TestApp, login: &str, password: &str) -> Answer {
    post(
        app,
        "/api/v1/auth/login",
        None,
        json!({"username": login, "password": password}),
    )
    .await
}

/// The entries with `action`, newest first.
async fn entries(app: &TestApp, action: &str) -> Vec<AuditRow> {
    let filter = AuditFilter {
        action: Some(action.to_owned()),
        ..Default::default()
    };
    app.state
        .store
        .run(move |conn| latchkey::store::audit::page(conn, &filter, 0, 100))
        .await
        .unwrap()
}

/// The one entry with `action`.
async fn only(app: &TestApp, action: &str) -> AuditRow {
    let mut found = entries(app, action).await;
    assert_eq!(found.len(), 1, "entries of {action}: {found:#?}");
    found.remove(0)
}

fn json_column(text: &Option<String>) -> Value {
    text.as_deref()
        .map(|t| serde_json::from_str(t).unwrap())
        .unwrap_or(Value::Null)
}

fn info(row: &AuditRow) -> Value {
    json_column(&row.additional_info)
}

/// Asserts the entry names `user` (id and email) as its actor, from this test's client, in the
/// request `request_id`.
fn assert_actor(row: &AuditRow, user: Option<(&str, &str)>, request_id: &str) {
    assert_eq!(
        row.actor_id.as_deref(),
        user.map(|u| u.0),
        "actor of {row:#?}"
    );
    assert_eq!(
        row.actor_email.as_deref(),
        user.map(|u| u.1),
        "email of {row:#?}"
    );
    assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(row.user_agent.as_deref(), Some(USER_AGENT));
    assert_eq!(row.request_id.as_deref(), Some(request_id), "{row:#?}");
}

/// Asserts that no secret's plain text appears anywhere in the stored entries.
async fn assert_no_secrets(app: &TestApp, secrets: &[&str]) {
    let all = app
        .state
        .store
        .run(|conn| latchkey::store::audit::page(conn, &AuditFilter::default(), 0, 100))
        .await
        .unwrap();
    assert!(!all.is_empty());
    for row in &all {
        let text = format!("{row:?}");
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret:?} is in the audit log: {text}"
            );
        }
    }
}

/// Subscribes a (never reached) webhook to `events`; returns its id.
async fn subscribe(app: &TestApp, events: &[&str]) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let sealed = app.state.crypto.seal(b"whsec_for_audit_tests_only", &id);
    let events = serde_json::to_string(events).unwrap();
    let webhook_id = id.clone();
    app.state
        .store
        .run(move |conn| {
            diesel::insert_into(webhooks::table)
                .values((
                    webhooks::id.eq(&webhook_id),
                    webhooks::url.eq("http://127.0.0.1:9/hook"),
                    webhooks::events.eq(events),
                    webhooks::secret.eq(sealed),
                    webhooks::active.eq(true),
                    webhooks::consecutive_failures.eq(0),
                    webhooks::created_at.eq(0_i64),
                    webhooks::updated_at.eq(0_i64),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    id
}

/// The opened payloads of the outbox messages of `kind`, oldest first.
async fn outbox_payloads(app: &TestApp, kind: &'static str) -> Vec<Value> {
    let rows: Vec<(String, String)> = app
        .state
        .store
        .run(move |conn| {
            Ok(outbox::table
                .filter(outbox::kind.eq(kind))
                .order(outbox::id)
                .select((outbox::id, outbox::payload))
                .load(conn)?)
        })
        .await
        .unwrap();
    rows.iter()
        .map(|(id, payload)| serde_json::from_slice(&app.state.crypto.open(payload, id).unwrap()))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The webhook deliveries queued so far: `(event, body)`.
async fn deliveries(app: &TestApp) -> Vec<(String, Value)> {
    outbox_payloads(app, "webhook")
        .await
        .into_iter()
        .map(|delivery| {
            let body: Value = serde_json::from_str(delivery["body"].as_str().unwrap()).unwrap();
            (delivery["event"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

/// The token of the newest mailed link to `page`.
async fn mailed_token(app: &TestApp, page: &str) -> String {
    let marker = format!("{page}?token=");
    for mail in outbox_payloads(app, "email").await.iter().rev() {
        let text = mail.to_string();
        if let Some(start) = text.find(&marker) {
            return text[start + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
        }
    }
    panic!("no mail links to {page}");
}

#[tokio::test]
async fn api_logins_failures_and_the_lockout_are_audited_without_the_password() {
    let app = app().await;
    let ada = app.create_user("ada", PASSWORD).await;
    let ada_actor = Some((ada.as_str(), "ada@example.com"));

    // Unknown account: no resource, the submitted login, no actor.
    let unknown = api_login(&app, "nobody-here", "guess-Pw-1").await;
    assert_eq!(unknown.status, 401);
    let row = only(&app, "login_failed").await;
    assert_eq!(row.resource, "users");
    assert_eq!(row.resource_id, None);
    assert_eq!(info(&row)["login"], "nobody-here");
    assert_eq!(info(&row)["reason"], "unknown account");
    assert_eq!(info(&row)["client_id"], "latchkey");
    assert_actor(&row, None, &unknown.request_id);

    // A success, before any webhook subscribed: one entry, no delivery.
    let ok = api_login(&app, "ada", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let row = only(&app, "login_succeeded").await;
    assert_eq!(
        (row.resource.as_str(), row.resource_id.as_deref()),
        ("users", Some(ada.as_str()))
    );
    assert_eq!(info(&row)["amr"], json!(["pwd"]));
    assert_eq!(info(&row)["method"], "password");
    assert_actor(&row, ada_actor, &ok.request_id);
    assert!(deliveries(&app).await.is_empty());

    // Subscribed now: the next success is delivered, with the user and the session.
    let hook = subscribe(&app, &["user.login", "user.locked"]).await;
    let again = api_login(&app, "ada", PASSWORD).await;
    assert_eq!(again.status, 200);
    assert_eq!(entries(&app, "login_succeeded").await.len(), 2);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let (event, body) = &queued[0];
    assert_eq!(event, "user.login");
    assert_eq!(body["event"], "user.login");
    assert_eq!(body["webhook_id"], hook.as_str());
    assert_eq!(body["data"]["user"]["id"], ada.as_str());
    assert_eq!(body["data"]["user"]["email"], "ada@example.com");
    assert_eq!(body["data"]["client_id"], "latchkey");
    assert!(body["data"]["session"]["id"].is_string());

    // Five wrong passwords: five failures, the fifth locks (one entry and one delivery).
    let mut last = None;
    for _ in 0..5 {
        last = Some(api_login(&app, "ada", "wrong-Password-9").await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, 423);
    let failures = entries(&app, "login_failed").await;
    assert_eq!(failures.len(), 6);
    assert_eq!(failures[0].resource_id.as_deref(), Some(ada.as_str()));
    assert_eq!(info(&failures[0])["reason"], "wrong password");
    assert_eq!(info(&failures[0])["failed_attempts"], 5);
    assert_actor(&failures[0], ada_actor, &last.request_id);
    let locked = only(&app, "account_locked").await;
    assert_eq!(locked.resource_id.as_deref(), Some(ada.as_str()));
    assert_eq!(info(&locked)["reason"], "too many failed attempts");
    assert_actor(&locked, ada_actor, &last.request_id);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 2);
    let (event, body) = &queued[1];
    assert_eq!(event, "user.locked");
    assert_eq!(body["data"]["user"]["id"], ada.as_str());
    assert_eq!(body["data"]["reason"], "too many failed attempts");
    let until = body["data"]["locked_until"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(until).is_ok(),
        "{until}"
    );
    assert_eq!(
        json_column(&locked.new_values)["locked_until"],
        body["data"]["locked_until"]
    );

    // Locked out at this address: even the right password is refused, and that is written too.
    let refused = api_login(&app, "ada", PASSWORD).await;
    assert_eq!(refused.status, 423);
    let failures = entries(&app, "login_failed").await;
    assert_eq!(failures.len(), 7);
    assert_eq!(info(&failures[0])["reason"], "locked out from this address");
    assert_eq!(entries(&app, "account_locked").await.len(), 1);

    assert_no_secrets(&app, &[PASSWORD, "wrong-Password-9", "guess-Pw-1"]).await;
}

#[tokio::test]
async fn a_right_password_confirmation_clears_the_failure_counter() {
    let app = app().await;
    let bob = app.create_user("bob", PASSWORD).await;
    let token = api_login(&app, "bob", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |password: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            post(
                app,
                "/api/v1/users/change-email",
                Some(&token),
                json!({"new_email": "bob.new@example.com", "password": password}),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(change("not-the-Password-1").await.status, 401);
    }
    assert_eq!(failed_count(&app, &bob).await, 3);
    let failures = entries(&app, "login_failed").await;
    assert_eq!(failures.len(), 3);
    assert_eq!(
        info(&failures[0])["purpose"],
        "confirmation of a sensitive change"
    );
    let ok = change(PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(failed_count(&app, &bob).await, 0);
    // Two more failures do not lock (the three before were forgiven).
    for _ in 0..2 {
        assert_eq!(change("not-the-Password-1").await.status, 401);
    }
    assert!(entries(&app, "account_locked").await.is_empty());
    let requested = only(&app, "email_change_requested").await;
    assert_eq!(requested.resource_id.as_deref(), Some(bob.as_str()));
    assert_eq!(info(&requested)["new_email"], "bob.new@example.com");
    assert_actor(
        &requested,
        Some((bob.as_str(), "bob@example.com")),
        &ok.request_id,
    );
    assert_no_secrets(&app, &[PASSWORD, "not-the-Password-1", &token]).await;
}

/// The failures counted toward the lockout of an account now.
async fn failed_count(app: &TestApp, user_id: &str) -> i32 {
    let id = user_id.to_owned();
    app.state
        .store
        .run(move |conn| latchkey::store::security::find(conn, &id))
        .await
        .unwrap()
        .failed_login_count
}

/// The TOTP code of `offset` seconds from now.
fn totp_at(secret: &str, offset: u64) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + offset).to_string()
}

fn totp_now(secret: &str) -> String {
    totp_at(secret, 0)
}

#[tokio::test]
async fn mfa_changes_codes_and_the_second_factor_login_are_audited() {
    let app = app().await;
    let cyd = app.create_user("cyd", PASSWORD).await;
    let cyd_actor = Some((cyd.as_str(), "cyd@example.com"));
    let token = api_login(&app, "cyd", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let setup = post(
        &app,
        "/api/v1/auth/mfa/setup",
        Some(&token),
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(setup.status, 200);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let setup_token = setup.body["setup_token"].as_str().unwrap().to_owned();
    let codes: Vec<String> = setup.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let first_code = totp_now(&secret);
    let enabled = post(
        &app,
        "/api/v1/auth/mfa/verify-setup",
        None,
        json!({"setup_token": setup_token, "code": first_code}),
    )
    .await;
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    let row = only(&app, "mfa_enabled").await;
    assert_eq!(row.resource_id.as_deref(), Some(cyd.as_str()));
    assert_eq!(json_column(&row.new_values), json!({"mfa_enabled": true}));
    assert_actor(&row, cyd_actor, &enabled.request_id);

    // The login now needs the second factor: a wrong code, then a recovery code.
    let hook = subscribe(&app, &["user.login"]).await;
    let challenge = api_login(&app, "cyd", PASSWORD).await;
    assert_eq!(challenge.status, 403);
    let mfa_token = challenge.body["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(entries(&app, "login_succeeded").await.len(), 1, "not yet");
    let wrong = post(
        &app,
        "/api/v1/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": "000000"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let row = only(&app, "mfa_failed").await;
    assert_eq!(row.resource_id.as_deref(), Some(cyd.as_str()));
    assert_actor(&row, cyd_actor, &wrong.request_id);
    let done = post(
        &app,
        "/api/v1/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": codes[0]}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let row = only(&app, "mfa_recovery_code_used").await;
    assert_eq!(info(&row)["remaining"], 9);
    assert_actor(&row, cyd_actor, &done.request_id);
    let login = &entries(&app, "login_succeeded").await[0];
    assert_eq!(info(login)["amr"], json!(["pwd", "otp"]));
    assert_eq!(info(login)["method"], "mfa");
    assert_actor(login, cyd_actor, &done.request_id);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, "user.login");
    assert_eq!(queued[0].1["webhook_id"], hook.as_str());
    assert_eq!(queued[0].1["data"]["amr"], json!(["pwd", "otp"]));

    let regenerated = post(
        &app,
        "/api/v1/auth/mfa/recovery-codes",
        Some(&token),
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(regenerated.status, 200);
    let new_codes: Vec<String> = regenerated.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let row = only(&app, "mfa_recovery_codes_regenerated").await;
    assert_actor(&row, cyd_actor, &regenerated.request_id);
    let disabled = post(
        &app,
        "/api/v1/auth/mfa/disable",
        Some(&token),
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(disabled.status, 200);
    let row = only(&app, "mfa_disabled").await;
    assert_eq!(json_column(&row.new_values), json!({"mfa_enabled": false}));
    assert_actor(&row, cyd_actor, &disabled.request_id);

    let mut secrets: Vec<&str> = vec![PASSWORD, &secret, &setup_token, &mfa_token, &token];
    secrets.extend(codes.iter().map(String::as_str));
    secrets.extend(new_codes.iter().map(String::as_str));
    assert_no_secrets(&app, &secrets).await;
}

#[tokio::test]
async fn logout_and_session_revocation_are_audited_and_reported() {
    let app = app().await;
    let dee = app.create_user("dee", PASSWORD).await;
    let dee_actor = Some((dee.as_str(), "dee@example.com"));
    let first = api_login(&app, "dee", PASSWORD).await.body;
    let second = api_login(&app, "dee", PASSWORD).await.body;
    let token = first["access_token"].as_str().unwrap().to_owned();
    let other_sid = latchkey_sid(second["access_token"].as_str().unwrap());
    let hook = subscribe(&app, &["session.revoked"]).await;

    let revoked = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/sessions/{other_sid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let row = only(&app, "session_revoked").await;
    assert_eq!(
        (row.resource.as_str(), row.resource_id.as_deref()),
        ("sessions", Some(other_sid.as_str()))
    );
    assert_eq!(info(&row)["reason"], "session revoked");
    assert_eq!(info(&row)["user_id"], dee.as_str());
    assert_actor(&row, dee_actor, &revoked.request_id);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, "session.revoked");
    assert_eq!(queued[0].1["webhook_id"], hook.as_str());
    assert_eq!(
        queued[0].1["data"],
        json!({
            "session": {"id": other_sid, "user_id": dee},
            "reason": "session revoked",
        })
    );

    let own_sid = latchkey_sid(&token);
    let logout = post(&app, "/api/v1/auth/logout", Some(&token), json!({})).await;
    assert_eq!(logout.status, 200);
    let row = only(&app, "logout").await;
    assert_eq!(
        (row.resource.as_str(), row.resource_id.as_deref()),
        ("sessions", Some(own_sid.as_str()))
    );
    assert_eq!(info(&row)["sessions_ended"], 1);
    assert_actor(&row, dee_actor, &logout.request_id);
    let ended = &entries(&app, "session_revoked").await[0];
    assert_eq!(ended.resource_id.as_deref(), Some(own_sid.as_str()));
    assert_eq!(info(ended)["reason"], "logout");
    assert_actor(ended, dee_actor, &logout.request_id);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[1].1["data"]["session"]["id"], own_sid.as_str());
    assert_eq!(queued[1].1["data"]["reason"], "logout");
    assert_no_secrets(&app, &[PASSWORD, &token]).await;
}

/// The `sid` claim of one of this server's access tokens.
fn latchkey_sid(access_token: &str) -> String {
    crate::flows::jwt_payload(access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn password_changes_resets_and_email_changes_are_audited() {
    let app = app().await;
    let eve = app.create_user("eve", PASSWORD).await;
    let token = api_login(&app, "eve", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    api_login(&app, "eve", PASSWORD).await;

    let new_password = "a-brand-new-Password-42";
    let changed = post(
        &app,
        "/api/v1/users/change-password",
        Some(&token),
        json!({"current_password": PASSWORD, "new_password": new_password, "confirm_password": new_password}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let row = only(&app, "password_changed").await;
    assert_eq!(row.resource_id.as_deref(), Some(eve.as_str()));
    assert_eq!(info(&row)["sessions_ended"], 1);
    assert_actor(
        &row,
        Some((eve.as_str(), "eve@example.com")),
        &changed.request_id,
    );
    let ended = only(&app, "session_revoked").await;
    assert_eq!(info(&ended)["reason"], "password changed");

    // A reset by mail: an unknown address writes nothing; a known one is requested (after
    // the answer), then done with the link (by the account, from this client).
    post(
        &app,
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "nobody@example.com"}),
    )
    .await;
    let requested = post(
        &app,
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "eve@example.com"}),
    )
    .await;
    assert_eq!(requested.status, 200);
    eventually(10, "password_reset_requested", || {
        let app = &app;
        async move { (!entries(app, "password_reset_requested").await.is_empty()).then_some(()) }
    })
    .await;
    let row = only(&app, "password_reset_requested").await;
    assert_eq!(row.resource_id.as_deref(), Some(eve.as_str()));
    assert_actor(
        &row,
        Some((eve.as_str(), "eve@example.com")),
        &requested.request_id,
    );
    let reset_token = mailed_token(&app, "/account/reset-password").await;
    let reset_password = "reset-via-link-Password-7";
    let reset = post(
        &app,
        "/api/v1/auth/reset-password",
        None,
        json!({"token": reset_token, "new_password": reset_password, "confirm_password": reset_password}),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let row = only(&app, "password_reset").await;
    assert_eq!(row.resource_id.as_deref(), Some(eve.as_str()));
    assert_actor(
        &row,
        Some((eve.as_str(), "eve@example.com")),
        &reset.request_id,
    );

    // An email change, confirmed from the new address.
    let hook = subscribe(&app, &["user.updated"]).await;
    let token = api_login(&app, "eve", reset_password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let asked = post(
        &app,
        "/api/v1/users/change-email",
        Some(&token),
        json!({"new_email": "eve.new@example.com", "password": reset_password}),
    )
    .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    only(&app, "email_change_requested").await;
    let change_token = mailed_token(&app, "/account/verify-email").await;
    let confirmed = post(
        &app,
        "/api/v1/auth/verify-email",
        None,
        json!({"token": change_token}),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let row = only(&app, "email_changed").await;
    assert_eq!(
        json_column(&row.old_values),
        json!({"email": "eve@example.com"})
    );
    assert_eq!(
        json_column(&row.new_values),
        json!({"email": "eve.new@example.com"})
    );
    assert_actor(
        &row,
        Some((eve.as_str(), "eve@example.com")),
        &confirmed.request_id,
    );
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, "user.updated");
    assert_eq!(queued[0].1["webhook_id"], hook.as_str());
    assert_eq!(queued[0].1["data"]["changes"], json!(["email"]));
    assert_eq!(queued[0].1["data"]["user"]["email"], "eve.new@example.com");

    assert_no_secrets(
        &app,
        &[
            PASSWORD,
            new_password,
            reset_password,
            &reset_token,
            &change_token,
            &token,
        ],
    )
    .await;
}

#[tokio::test]
async fn registration_and_profile_changes_are_audited_and_reported() {
    let app = app().await;
    let hook = subscribe(&app, &["user.created", "user.updated"]).await;
    let registered = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"username": "fay", "email": "fay@example.com", "password": PASSWORD, "first_name": "Fay"}),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let fay = registered.body["id"].as_str().unwrap().to_owned();
    let fay_actor = Some((fay.as_str(), "fay@example.com"));
    let row = only(&app, "user_registered").await;
    assert_eq!(row.resource_id.as_deref(), Some(fay.as_str()));
    assert_eq!(json_column(&row.new_values)["email"], "fay@example.com");
    assert_eq!(json_column(&row.new_values)["roles"], json!(["user"]));
    assert_actor(&row, fay_actor, &registered.request_id);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, "user.created");
    assert_eq!(queued[0].1["webhook_id"], hook.as_str());
    let user = &queued[0].1["data"]["user"];
    assert_eq!(user["id"], fay.as_str());
    assert_eq!(user["username"], "fay");
    assert_eq!(user["first_name"], "Fay");
    assert!(user["created_at"].is_string());

    let token = api_login(&app, "fay", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let updated = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/users/profile",
        Some(&token),
        Some(json!({"first_name": "Faye", "last_name": "Lee"})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let row = only(&app, "profile_updated").await;
    assert_eq!(
        json_column(&row.old_values),
        json!({"first_name": "Fay", "last_name": null})
    );
    assert_eq!(
        json_column(&row.new_values),
        json!({"first_name": "Faye", "last_name": "Lee"})
    );
    assert_actor(&row, fay_actor, &updated.request_id);
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[1].0, "user.updated");
    assert_eq!(
        queued[1].1["data"]["changes"],
        json!(["first_name", "last_name"])
    );
    assert_eq!(queued[1].1["data"]["user"]["first_name"], "Faye");

    // Seed 002's `/me`; a change to nothing new writes nothing.
    let patched = send(
        &app,
        reqwest::Method::PATCH,
        "/api/v1/me",
        Some(&token),
        Some(json!({"bio": "Writes tests."})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let again = send(
        &app,
        reqwest::Method::PATCH,
        "/api/v1/me",
        Some(&token),
        Some(json!({"bio": "Writes tests."})),
    )
    .await;
    assert_eq!(again.status, 200);
    let rows = entries(&app, "profile_updated").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        json_column(&rows[0].new_values),
        json!({"bio": "Writes tests."})
    );
    assert_eq!(deliveries(&app).await.len(), 3);
    assert_no_secrets(&app, &[PASSWORD, &token]).await;
}

#[tokio::test]
async fn a_reused_refresh_token_is_audited_although_the_request_fails() {
    let app = app().await;
    let gus = app.create_user("gus", PASSWORD).await;
    let tokens = api_login(&app, "gus", PASSWORD).await.body;
    let old = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let app = &app;
        async move {
            post(
                app,
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": token}),
            )
            .await
        }
    };
    let rotated = refresh(old.clone()).await;
    assert_eq!(rotated.status, 200);
    let reused = refresh(old.clone()).await;
    assert_eq!(reused.status, 401);
    let row = only(&app, "refresh_token_reuse").await;
    assert_eq!(row.resource, "grants");
    assert!(row.resource_id.is_some());
    assert_eq!(info(&row)["client_id"], "latchkey");
    assert_actor(
        &row,
        Some((gus.as_str(), "gus@example.com")),
        &reused.request_id,
    );
    // The family is revoked: the successor fails too, without a second entry.
    let successor = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(successor.clone()).await.status, 401);
    assert_eq!(entries(&app, "refresh_token_reuse").await.len(), 1);
    assert_no_secrets(&app, &[PASSWORD, &old, &successor]).await;
}

#[tokio::test]
async fn a_reuse_at_the_token_endpoint_is_audited_with_the_client() {
    let app = app().await;
    app.create_user("hal", PASSWORD).await;
    let client = app.web_client("Audited", |_| {}).await;
    let first = app
        .tokens_for(&client, "hal", PASSWORD, "openid offline_access")
        .await;
    let old = first.refresh_token.unwrap();
    assert_eq!(app.refresh(&client, &old).await.status(), 200);
    let reused = app.refresh(&client, &old).await;
    assert_eq!(reused.status(), 400);
    let request_id = reused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let row = only(&app, "refresh_token_reuse").await;
    assert_eq!(info(&row)["client_id"], client.client_id.as_str());
    assert_eq!(row.request_id.as_deref(), Some(request_id.as_str()));
    assert!(row.actor_id.is_some());
}

#[tokio::test]
async fn key_rotation_by_the_cli_and_by_the_schedule_is_audited() {
    let app = app().await;
    let rotated = app.cli_json(&["keys", "rotate"]);
    let rotated = rotated["rotated"].as_array().unwrap();
    let rows = entries(&app, "key_rotated").await;
    assert_eq!(rows.len(), rotated.len());
    for outcome in rotated {
        let kid = outcome["activated"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r.resource_id.as_deref() == Some(kid))
            .unwrap_or_else(|| panic!("no entry for {kid}: {rows:#?}"));
        assert_eq!(row.resource, "keys");
        assert_eq!(row.actor_id, None);
        assert_eq!(info(row)["via"], "cli");
        assert_eq!(info(row)["alg"], outcome["alg"]);
        assert_eq!(info(row)["retired"], json!([outcome["retired"]]));
    }
    // The automatic rotation, forced for the test.
    let crypto = app.state.crypto.clone();
    let outcome = app
        .state
        .store
        .run(move |conn| {
            latchkey::oidc::keys::rotate(
                conn,
                &crypto,
                latchkey::domain::SigningAlg::Es256,
                true,
                86_400,
                3_600,
            )
            .map_err(latchkey::store::StoreError::Corrupt)
        })
        .await
        .unwrap();
    let latchkey::oidc::keys::RotationOutcome::Rotated { activated, .. } = outcome else {
        panic!("not rotated: {outcome:?}");
    };
    let rows = entries(&app, "key_rotated").await;
    assert_eq!(rows.len(), rotated.len() + 1);
    assert_eq!(rows[0].resource_id.as_deref(), Some(activated.as_str()));
    assert_eq!(info(&rows[0])["via"], "schedule");
    assert_eq!(info(&rows[0])["alg"], "ES256");
}

#[tokio::test]
async fn page_logins_and_rp_initiated_logout_are_audited() {
    let app = app().await;
    let ivy = app.create_user("ivy", PASSWORD).await;
    let ivy_actor = Some((ivy.as_str(), "ivy@example.com"));
    let client = app
        .web_client("Pages", |r| {
            r.skip_consent = true;
            r.post_logout_redirect_uris = vec!["https://rp.example/bye".into()];
        })
        .await;
    let browser = ua_browser(&app);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("nonce", "n"),
        ],
    );
    let (_, _, html) = browser.visit(&url).await.page();
    let submit = |password: &str| {
        let form = [
            ("csrf_token", input_value(&html, "csrf_token").unwrap()),
            ("request", input_value(&html, "request").unwrap()),
            ("username", "ivy".to_owned()),
            ("password", password.to_owned()),
        ];
        browser.http.post(app.url("/login")).form(&form).send()
    };
    let wrong = submit("wrong-Page-Password").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong_id = wrong.headers()["x-request-id"].to_str().unwrap().to_owned();
    let row = only(&app, "login_failed").await;
    assert_eq!(info(&row)["client_id"], client.client_id.as_str());
    assert_actor(&row, ivy_actor, &wrong_id);

    let right = submit(PASSWORD).await.unwrap();
    assert_eq!(right.status(), 303);
    let right_id = right.headers()["x-request-id"].to_str().unwrap().to_owned();
    let row = only(&app, "login_succeeded").await;
    assert_eq!(info(&row)["client_id"], client.client_id.as_str());
    assert_eq!(info(&row)["amr"], json!(["pwd"]));
    assert_actor(&row, ivy_actor, &right_id);
    let callback = browser.follow(right).await.left();
    let code = param(&callback, "code").unwrap();
    let id_token = app.exchange(&client, &code).await.id_token.unwrap();
    let sid = crate::flows::jwt_payload(&id_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut logout = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://rp.example/bye");
    let response = browser.http.get(logout.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let logout_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let row = only(&app, "logout").await;
    assert_eq!(row.resource_id.as_deref(), Some(sid.as_str()));
    assert_eq!(info(&row)["client_id"], client.client_id.as_str());
    assert_actor(&row, ivy_actor, &logout_id);
    let row = only(&app, "session_revoked").await;
    assert_eq!(row.resource_id.as_deref(), Some(sid.as_str()));
    assert_actor(&row, ivy_actor, &logout_id);
    assert_no_secrets(&app, &[PASSWORD, "wrong-Page-Password", &code]).await;
}

#[tokio::test]
async fn a_page_login_with_a_second_factor_is_audited_once_complete() {
    let app = app().await;
    let jan = app.create_user("jan", PASSWORD).await;
    let token = api_login(&app, "jan", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let setup = post(
        &app,
        "/api/v1/auth/mfa/setup",
        Some(&token),
        json!({"password": PASSWORD}),
    )
    .await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let enabled = post(
        &app,
        "/api/v1/auth/mfa/verify-setup",
        None,
        json!({"setup_token": setup.body["setup_token"], "code": totp_now(&secret)}),
    )
    .await;
    assert_eq!(enabled.status, 200);
    let client = app.web_client("Pages MFA", |r| r.skip_consent = true).await;
    let browser = ua_browser(&app);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[("response_type", "code"), ("scope", "openid")],
    );
    let (_, _, html) = browser.visit(&url).await.page();
    let (url, _, html) = browser.submit_login(&html, "jan", PASSWORD).await.page();
    assert_eq!(url.path(), "/login/mfa");
    assert_eq!(
        entries(&app, "login_succeeded").await.len(),
        1,
        "the API one"
    );
    let submit = |code: String| {
        let form = [
            ("csrf_token", input_value(&html, "csrf_token").unwrap()),
            ("code", code),
        ];
        browser.http.post(app.url("/login/mfa")).form(&form).send()
    };
    let wrong = submit("000000".into()).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong_id = wrong.headers()["x-request-id"].to_str().unwrap().to_owned();
    let jan_actor = Some((jan.as_str(), "jan@example.com"));
    let row = only(&app, "mfa_failed").await;
    assert_eq!(info(&row)["client_id"], client.client_id.as_str());
    assert_actor(&row, jan_actor, &wrong_id);
    // The setup spent this time step's code; the next step's is accepted (RFC 6238 §5.2).
    let code = totp_at(&secret, 30);
    let right = submit(code.clone()).await.unwrap();
    assert_eq!(right.status(), 303);
    let right_id = right.headers()["x-request-id"].to_str().unwrap().to_owned();
    let row = &entries(&app, "login_succeeded").await[0];
    assert_eq!(info(row)["amr"], json!(["pwd", "otp"]));
    assert_eq!(info(row)["client_id"], client.client_id.as_str());
    assert_actor(row, jan_actor, &right_id);
    assert_eq!(entries(&app, "login_succeeded").await.len(), 2);
    assert_no_secrets(&app, &[PASSWORD, &secret, &code, &token]).await;
}
