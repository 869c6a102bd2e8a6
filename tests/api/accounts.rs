//! The accounts API: registration, login with lockout and MFA, refresh, logout, profile,
//! password change and reset, email verification and change — with the mail read from a real
//! SMTP server and its links followed.

use std::time::Duration;

use latchkey::config::{SmtpSettings, SmtpTls};
use serde_json::{Value, json};

use crate::flows::{Browser, input_value, jwt_payload};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::smtp_sink::{ReceivedMail, SmtpSink};

const PASSWORD: &str = "correct horse battery staple";
const MAIL_WAIT: Duration = Duration::from_secs(15);

/// A server whose mail goes to an SMTP sink.
async fn mail_app() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port();
    let app = spawn_app_with(Box::new(move |s| {
        s.mail.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
        });
        s.outbox.poll_interval = Duration::from_millis(100);
        s.outbox.backoff_base_secs = 1;
    }))
    .await;
    (app, sink)
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn post_bearer(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "{body}");
    body
}

async fn register(app: &TestApp, username: &str, email: &str) -> Value {
    json_of(
        post(app, "/api/v1/auth/register", json!({"username": username, "email": email, "password": PASSWORD, "first_name": "Reg"})).await,
        201,
    )
    .await
}

async fn login(app: &TestApp, login: &str, password: &str) -> reqwest::Response {
    post(
        app,
        "/api/v1/auth/login",
        json!({"username": login, "password": password}),
    )
    .await
}

/// The first link with a token in a mail's text part.
fn link_in(mail: &ReceivedMail) -> url::Url {
    let text = mail.text_part().expect("a text part");
    let start = text.find("http").expect("a link");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url::Url::parse(&link).unwrap()
}

/// Waits for the first received mail that `pick` selects.
async fn wait_mail(
    sink: &SmtpSink,
    pick: impl Fn(&[ReceivedMail]) -> Option<ReceivedMail>,
) -> ReceivedMail {
    crate::helpers::eventually(MAIL_WAIT.as_secs(), "a mail", || {
        let found = pick(&sink.received());
        async move { found }
    })
    .await
}

fn token_of(link: &url::Url) -> String {
    link.query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn registration_sends_a_verification_link_that_confirms_the_address() {
    let (app, sink) = mail_app().await;
    let created = register(&app, "reggie", "Reggie@Example.com").await;
    assert_eq!(created["username"], "reggie");
    assert_eq!(created["email"], "reggie@example.com");
    assert_eq!(created["email_verified"], false);
    assert_eq!(created["roles"], json!(["user"]));
    assert_eq!(created["first_name"], "Reg");
    let mail = sink.wait_for("reggie@example.com", MAIL_WAIT).await;
    assert!(mail.html_part().is_some(), "text and HTML parts");
    let link = link_in(&mail);
    assert!(
        link.as_str()
            .starts_with(&format!("{}/account/verify-email?token=", app.issuer))
    );
    // The link opens a page with a button; pressing it confirms the address.
    let browser = Browser::new(&app);
    let (_, status, html) = browser.visit(link.as_str()).await.page();
    assert_eq!(status, 200);
    let response = browser
        .http
        .post(app.url("/account/verify-email"))
        .form(&[
            ("csrf_token", input_value(&html, "csrf_token").unwrap()),
            ("token", token_of(&link)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Address confirmed"));
    let tokens = json_of(login(&app, "reggie", PASSWORD).await, 200).await;
    let profile = json_of(
        get_bearer(
            &app,
            "/api/v1/users/profile",
            tokens["access_token"].as_str().unwrap(),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(profile["email_verified"], true);
    // The link works once.
    let again = post(
        &app,
        "/api/v1/auth/verify-email",
        json!({"token": token_of(&link)}),
    )
    .await;
    assert_eq!(json_of(again, 400).await["error"], "invalid_token");
}

#[tokio::test]
async fn registration_refuses_bad_input_with_field_details_and_stores_nothing() {
    let app = spawn_app().await;
    let users_before = app.count("users").await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "password1234"}),
            "password",
        ),
        (json!({"email": "a@example.com"}), "password"),
        (json!({"password": PASSWORD}), "email"),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "admin": true}),
            "admin",
        ),
        (json!({"email": 42, "password": PASSWORD}), "email"),
        (
            json!({"email": "a@example.com", "username": "x y", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "first_name": "x".repeat(101)}),
            "first_name",
        ),
    ];
    for (body, field) in cases {
        let response = post(&app, "/api/v1/auth/register", body.clone()).await;
        let header_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let error = json_of(response, 422).await;
        assert_eq!(error["error"], "validation_error", "{body}");
        assert_eq!(error["request_id"], header_id.as_str());
        let fields: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    // Malformed JSON, wrong media type, oversized body.
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response, 400).await["error"], "invalid_json");
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(response, 415).await["error"],
        "unsupported_media_type"
    );
    let big = json!({"email": "a@example.com", "password": PASSWORD, "first_name": "x".repeat(300 * 1024)});
    assert_eq!(
        json_of(post(&app, "/api/v1/auth/register", big).await, 413).await["error"],
        "payload_too_large"
    );
    assert_eq!(app.count("users").await, users_before, "nothing stored");
    // Duplicates are conflicts naming the field.
    register(&app, "dup", "dup@example.com").await;
    let again = post(
        &app,
        "/api/v1/auth/register",
        json!({"username": "dup", "email": "other@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(json_of(again, 409).await["details"][0]["field"], "username");
    let again = post(
        &app,
        "/api/v1/auth/register",
        json!({"username": "other", "email": "DUP@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(json_of(again, 409).await["details"][0]["field"], "email");
}

#[tokio::test]
async fn login_returns_seed_000_tokens_usable_on_every_resource() {
    let app = spawn_app().await;
    register(&app, "lena", "lena@example.com").await;
    for who in ["lena", "LENA@example.com"] {
        let body = json_of(login(&app, who, PASSWORD).await, 200).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["refresh_expires_in"], 604_800);
        assert_eq!(body["user"]["username"], "lena");
        assert_eq!(body["user"]["roles"], json!(["user"]));
        assert_eq!(
            body["user"]["permissions"],
            json!(["profile:read", "profile:write"])
        );
        assert_eq!(body["user"]["mfa_enabled"], false);
        let claims = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], "latchkey");
        assert!(claims["sid"].is_string());
        let token = body["access_token"].as_str().unwrap();
        let me = json_of(get_bearer(&app, "/api/v1/auth/me", token).await, 200).await;
        assert_eq!(me["role"], "user");
        assert_eq!(me["is_active"], true);
        let me2 = json_of(get_bearer(&app, "/api/v1/me", token).await, 200).await;
        assert!(me2["activeSessions"].as_i64().unwrap() >= 1);
        assert!(me2["createdAt"].is_string());
        // The same token works at the OAuth endpoints: one verification path.
        assert_eq!(app.userinfo(token).await.0, 200);
    }
    // A missing field is a 422; a wrong password or an unknown account the same 401.
    let missing = post(&app, "/api/v1/auth/login", json!({"password": PASSWORD})).await;
    assert_eq!(
        json_of(missing, 422).await["details"][0]["field"],
        "username"
    );
    let wrong = json_of(login(&app, "lena", "not the password").await, 401).await;
    let unknown = json_of(login(&app, "nobody", "not the password").await, 401).await;
    assert_eq!(wrong["error"], "invalid_credentials");
    assert_eq!(wrong["message"], unknown["message"]);
}

#[tokio::test]
async fn five_failures_lock_the_login_at_that_address_and_the_right_password_waits() {
    let app = spawn_app().await;
    register(&app, "mona", "mona@example.com").await;
    for attempt in 1..=4 {
        let body = json_of(login(&app, "mona", "wrong password").await, 401).await;
        assert_eq!(body["error"], "invalid_credentials", "attempt {attempt}");
    }
    let response = login(&app, "mona", "wrong password").await;
    let retry_header: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let locked = json_of(response, 423).await;
    assert_eq!(locked["error"], "account_locked");
    assert_eq!(locked["retry_after"], 900);
    assert_eq!(retry_header, 900);
    let still = json_of(login(&app, "mona", PASSWORD).await, 423).await;
    assert!(still["retry_after"].as_i64().unwrap() > 0);
    // The counter lives in the database (every instance sees it), keyed by login and address:
    // the account itself is not locked, so its owner elsewhere is not shut out. Two rows: the
    // login at this address, and the login from everywhere (the spray tier).
    assert_eq!(app.count("login_throttles").await, 2);
    let row = app
        .state
        .store
        .run(|conn| {
            let user = latchkey::store::users::find_by_login(conn, "mona")?;
            latchkey::store::security::find(conn, &user.id)
        })
        .await
        .unwrap();
    assert_eq!(row.locked_until, None);
    // The browser login page, from the same address, honours the same lock.
    let client = app.web_client("Locked", |_| {}).await;
    let url = crate::flows::authorize_url(
        &app,
        &client.client_id,
        &[("response_type", "code"), ("scope", "openid")],
    );
    let browser = Browser::new(&app);
    let (_, _, html) = browser.visit(&url).await.page();
    let (_, status, page) = browser.submit_login(&html, "mona", PASSWORD).await.page();
    assert_eq!(status, 423);
    assert!(page.contains("Too many failed attempts"));
}

#[tokio::test]
async fn refresh_rotates_and_a_bearer_alone_gets_a_new_access_token() {
    let app = spawn_app().await;
    register(&app, "nils", "nils@example.com").await;
    let first = json_of(login(&app, "nils", PASSWORD).await, 200).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let second = json_of(
        post(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh}),
        )
        .await,
        200,
    )
    .await;
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["refresh_expires_in"], 604_800);
    // Seed 003: only a bearer token.
    let access = second["access_token"].as_str().unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let bearer_only = json_of(response, 200).await;
    assert!(bearer_only.get("refresh_token").is_none());
    assert_ne!(bearer_only["access_token"], second["access_token"]);
    // An unknown refresh token, and none at all.
    let bad = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": "nope"}),
    )
    .await;
    assert_eq!(json_of(bad, 401).await["error"], "invalid_token");
    let none = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    // remember_me lengthens the refresh lifetime.
    let long = post(
        &app,
        "/api/v1/auth/login",
        json!({"username": "nils", "password": PASSWORD, "remember_me": true}),
    )
    .await;
    let long = json_of(long, 200).await;
    assert_eq!(long["refresh_expires_in"], 2_592_000);
    let rotated = json_of(
        post(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": long["refresh_token"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        rotated["refresh_expires_in"], 2_592_000,
        "kept across rotations"
    );
}

#[tokio::test]
async fn logout_ends_the_session_at_once_and_all_devices_ends_every_one() {
    let app = spawn_app().await;
    register(&app, "otto", "otto@example.com").await;
    let a = json_of(login(&app, "otto", PASSWORD).await, 200).await;
    let b = json_of(login(&app, "otto", PASSWORD).await, 200).await;
    let (a_token, b_token) = (
        a["access_token"].as_str().unwrap(),
        b["access_token"].as_str().unwrap(),
    );
    let verified = json_of(
        post_bearer(&app, "/api/v1/auth/verify", a_token, json!({})).await,
        200,
    )
    .await;
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["user"]["username"], "otto");
    let out = json_of(
        post_bearer(
            &app,
            "/api/v1/auth/logout",
            a_token,
            json!({"all_devices": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["message"], "Successfully logged out");
    assert_eq!(
        get_bearer(&app, "/api/v1/auth/me", a_token).await.status(),
        401
    );
    assert_eq!(
        json_of(
            post(
                &app,
                "/api/v1/auth/refresh",
                json!({"refresh_token": a["refresh_token"]})
            )
            .await,
            401
        )
        .await["error"],
        "invalid_token"
    );
    assert_eq!(
        get_bearer(&app, "/api/v1/auth/me", b_token).await.status(),
        200,
        "the other device stays"
    );
    let c = json_of(login(&app, "otto", PASSWORD).await, 200).await;
    json_of(
        post_bearer(
            &app,
            "/api/v1/auth/logout",
            c["access_token"].as_str().unwrap(),
            json!({"all_devices": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        get_bearer(&app, "/api/v1/auth/me", b_token).await.status(),
        401
    );
    let response = get_bearer(&app, "/api/v1/auth/me", b_token).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let (app, sink) = mail_app().await;
    register(&app, "pia", "pia@example.com").await;
    let this = json_of(login(&app, "pia", PASSWORD).await, 200).await;
    let other = json_of(login(&app, "pia", PASSWORD).await, 200).await;
    let token = this["access_token"].as_str().unwrap();
    let new_password = "tremendous purple giraffe umbrella";
    let mismatch = post_bearer(&app, "/api/v1/users/change-password", token, json!({"current_password": PASSWORD, "new_password": new_password, "confirm_password": "other"})).await;
    assert_eq!(
        json_of(mismatch, 422).await["details"][0]["field"],
        "confirm_password"
    );
    let wrong = post_bearer(&app, "/api/v1/auth/change-password", token, json!({"current_password": "nope nope", "new_password": new_password, "confirm_password": new_password})).await;
    assert_eq!(json_of(wrong, 401).await["error"], "invalid_credentials");
    let ok = post_bearer(&app, "/api/v1/auth/change-password", token, json!({"current_password": PASSWORD, "new_password": new_password, "confirm_password": new_password})).await;
    assert_eq!(
        json_of(ok, 200).await["message"],
        "Password changed successfully"
    );
    assert_eq!(
        get_bearer(&app, "/api/v1/auth/me", token).await.status(),
        200,
        "this session stays"
    );
    assert_eq!(
        get_bearer(
            &app,
            "/api/v1/auth/me",
            other["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        json_of(
            post(
                &app,
                "/api/v1/auth/refresh",
                json!({"refresh_token": other["refresh_token"]})
            )
            .await,
            401
        )
        .await["error"],
        "invalid_token"
    );
    json_of(login(&app, "pia", new_password).await, 200).await;
    json_of(login(&app, "pia", PASSWORD).await, 401).await;
    let notice = wait_mail(&sink, |mails| {
        mails
            .iter()
            .find(|m| m.subject().to_lowercase().contains("password"))
            .cloned()
    })
    .await;
    assert!(
        notice
            .text_part()
            .unwrap()
            .to_lowercase()
            .contains("password")
    );
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link_once() {
    let (app, sink) = mail_app().await;
    register(&app, "quentin", "quentin@example.com").await;
    let session = json_of(login(&app, "quentin", PASSWORD).await, 200).await;
    sink.wait_for("quentin@example.com", MAIL_WAIT).await; // the verification mail
    let before = sink.count_to("quentin@example.com");
    // Unknown address: the same answer, no mail.
    let unknown = json_of(
        post(
            &app,
            "/api/v1/auth/forgot-password",
            json!({"email": "ghost@example.com"}),
        )
        .await,
        200,
    )
    .await;
    let known = json_of(
        post(
            &app,
            "/api/v1/auth/forgot-password",
            json!({"email": "quentin@example.com"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(unknown, known);
    let mail = wait_mail(&sink, |mails| {
        mails
            .iter()
            .filter(|m| m.to.iter().any(|t| t == "quentin@example.com"))
            .nth(before)
            .cloned()
    })
    .await;
    assert_eq!(sink.count_to("ghost@example.com"), 0);
    let link = link_in(&mail);
    assert!(link.path().ends_with("/account/reset-password"));
    let token = token_of(&link);
    let check = json_of(
        post(
            &app,
            "/api/v1/auth/verify-reset-token",
            json!({"token": token}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(check["valid"], true);
    assert!(check["expires_at"].is_string());
    let weak = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "new_password": "password1", "confirm_password": "password1"}),
    )
    .await;
    assert_eq!(
        json_of(weak, 422).await["details"][0]["field"],
        "new_password"
    );
    let new_password = "seventeen quiet lanterns";
    let done = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "new_password": new_password, "confirm_password": new_password}),
    )
    .await;
    assert_eq!(
        json_of(done, 200).await["message"],
        "Password reset successfully"
    );
    let again = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "new_password": new_password, "confirm_password": new_password}),
    )
    .await;
    assert_eq!(json_of(again, 400).await["error"], "invalid_token");
    assert_eq!(
        json_of(
            post(
                &app,
                "/api/v1/auth/verify-reset-token",
                json!({"token": token})
            )
            .await,
            200
        )
        .await["valid"],
        false
    );
    assert_eq!(
        get_bearer(
            &app,
            "/api/v1/auth/me",
            session["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401,
        "every session ended"
    );
    json_of(login(&app, "quentin", new_password).await, 200).await;
}

#[tokio::test]
async fn the_reset_page_sets_a_new_password_from_the_link() {
    let (app, sink) = mail_app().await;
    register(&app, "rosa", "rosa@example.com").await;
    sink.wait_for("rosa@example.com", MAIL_WAIT).await;
    json_of(
        post(
            &app,
            "/api/v1/auth/forgot-password",
            json!({"email": "rosa@example.com"}),
        )
        .await,
        200,
    )
    .await;
    let mail = wait_mail(&sink, |mails| {
        mails
            .iter()
            .rfind(|m| m.subject().to_lowercase().contains("reset"))
            .cloned()
    })
    .await;
    let link = link_in(&mail);
    let browser = Browser::new(&app);
    let (_, status, html) = browser.visit(link.as_str()).await.page();
    assert_eq!(status, 200);
    let new_password = "orange kayak midnight sonata";
    let form = [
        ("csrf_token", input_value(&html, "csrf_token").unwrap()),
        ("token", input_value(&html, "token").unwrap()),
        ("new_password", new_password.to_owned()),
        ("confirm_password", new_password.to_owned()),
    ];
    let response = browser
        .http
        .post(app.url("/account/reset-password"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json_of(login(&app, "rosa", new_password).await, 200).await;
    // Without the CSRF token the form is refused.
    let forged = browser
        .http
        .post(app.url("/account/reset-password"))
        .form(&[
            ("token", "x"),
            ("new_password", new_password),
            ("confirm_password", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn an_email_change_takes_effect_only_when_the_new_address_confirms_it() {
    let (app, sink) = mail_app().await;
    register(&app, "sven", "sven@example.com").await;
    let tokens = json_of(login(&app, "sven", PASSWORD).await, 200).await;
    let token = tokens["access_token"].as_str().unwrap();
    let wrong = post_bearer(
        &app,
        "/api/v1/users/change-email",
        token,
        json!({"new_email": "sven2@example.com", "password": "nope nope"}),
    )
    .await;
    assert_eq!(json_of(wrong, 401).await["error"], "invalid_credentials");
    let started = post_bearer(
        &app,
        "/api/v1/users/change-email",
        token,
        json!({"new_email": "Sven2@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(json_of(started, 200).await["verification_required"], true);
    let confirm = sink.wait_for("sven2@example.com", MAIL_WAIT).await;
    let profile = json_of(get_bearer(&app, "/api/v1/users/profile", token).await, 200).await;
    assert_eq!(
        profile["email"], "sven@example.com",
        "unchanged until confirmed"
    );
    let done = post(
        &app,
        "/api/v1/auth/verify-email",
        json!({"token": token_of(&link_in(&confirm))}),
    )
    .await;
    assert_eq!(json_of(done, 200).await["email"], "sven2@example.com");
    let profile = json_of(get_bearer(&app, "/api/v1/users/profile", token).await, 200).await;
    assert_eq!(profile["email"], "sven2@example.com");
    assert_eq!(profile["email_verified"], true);
    let told = wait_mail(&sink, |mails| {
        mails
            .iter()
            .find(|m| {
                m.to.iter().any(|t| t == "sven@example.com")
                    && m.text_part()
                        .unwrap_or_default()
                        .contains("sven2@example.com")
            })
            .cloned()
    })
    .await;
    assert!(told.text_part().is_some(), "the old address is told");
}

#[tokio::test]
async fn resend_verification_sends_a_new_link_and_stops_once_verified() {
    let (app, sink) = mail_app().await;
    register(&app, "tina", "tina@example.com").await;
    let tokens = json_of(login(&app, "tina", PASSWORD).await, 200).await;
    let token = tokens["access_token"].as_str().unwrap();
    sink.wait_for("tina@example.com", MAIL_WAIT).await;
    let resent = json_of(
        post_bearer(&app, "/api/v1/auth/resend-verification", token, json!({})).await,
        200,
    )
    .await;
    assert_eq!(resent["message"], "Verification email sent");
    let mails = sink.wait_for_count(2, MAIL_WAIT).await;
    let first = token_of(&link_in(&mails[0]));
    let second = token_of(&link_in(&mails[1]));
    assert_eq!(
        json_of(
            post(&app, "/api/v1/auth/verify-email", json!({"token": first})).await,
            400
        )
        .await["error"],
        "invalid_token",
        "the new link replaces the old"
    );
    json_of(
        post(&app, "/api/v1/auth/verify-email", json!({"token": second})).await,
        200,
    )
    .await;
    let after = json_of(
        post_bearer(&app, "/api/v1/auth/resend-verification", token, json!({})).await,
        200,
    )
    .await;
    assert_eq!(after["message"], "The email address is already verified");
}

fn totp_now(secret: &str) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now).to_string()
}

#[tokio::test]
async fn mfa_end_to_end_with_totp_and_a_single_use_recovery_code() {
    let (app, sink) = mail_app().await;
    register(&app, "uma", "uma@example.com").await;
    let tokens = json_of(login(&app, "uma", PASSWORD).await, 200).await;
    let token = tokens["access_token"].as_str().unwrap();
    let setup = json_of(
        post_bearer(
            &app,
            "/api/v1/auth/mfa/setup",
            token,
            json!({"method": "totp", "label": "Uma", "password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(
        setup["qr_code_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(
        setup["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    let codes: Vec<String> = setup["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    // A wrong code does not enable it.
    let wrong = post(
        &app,
        "/api/v1/auth/mfa/verify-setup",
        json!({"setup_token": setup["setup_token"], "code": "000000"}),
    )
    .await;
    assert_eq!(json_of(wrong, 401).await["error"], "invalid_code");
    let enabled = post(
        &app,
        "/api/v1/auth/mfa/verify-setup",
        json!({"setup_token": setup["setup_token"], "code": totp_now(&secret)}),
    )
    .await;
    assert_eq!(json_of(enabled, 200).await["enabled"], true);
    // The secret and the codes are stored sealed and hashed.
    let (sealed, hashes) = app
        .state
        .store
        .run(|conn| {
            use diesel::prelude::*;
            let user = latchkey::store::users::find_by_login(conn, "uma")?;
            let sealed = latchkey::store::security::find(conn, &user.id)?
                .totp_secret
                .unwrap();
            let hashes: Vec<String> = latchkey::store::schema::recovery_codes::table
                .select(latchkey::store::schema::recovery_codes::code_hash)
                .load(conn)?;
            Ok((sealed, hashes))
        })
        .await
        .unwrap();
    assert!(!sealed.contains(&secret));
    assert!(hashes.iter().all(|h| !codes.iter().any(|c| h.contains(c))));

    // Login now asks for the second factor.
    let response = login(&app, "uma", PASSWORD).await;
    let challenge = json_of(response, 403).await;
    assert_eq!(challenge["error"], "mfa_required");
    let mfa_token = challenge["mfa_token"].as_str().unwrap().to_owned();
    let wrong = post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": "123456"}),
    )
    .await;
    assert_eq!(json_of(wrong, 401).await["error"], "invalid_code");
    // The code that confirmed the setup cannot be used again (same time step).
    let replay = post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": totp_now(&secret)}),
    )
    .await;
    assert_eq!(json_of(replay, 401).await["error"], "invalid_code");
    // A recovery code works, once.
    let done = json_of(
        post(
            &app,
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": mfa_token, "code": codes[0].to_uppercase()}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["user"]["mfa_enabled"], true);
    let claims = jwt_payload(done["access_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    let spent = post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": codes[1]}),
    )
    .await;
    assert_eq!(
        json_of(spent, 401).await["error"],
        "invalid_token",
        "an mfa_token works once"
    );
    let second = json_of(login(&app, "uma", PASSWORD).await, 403).await;
    let reused = post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": second["mfa_token"], "code": codes[0]}),
    )
    .await;
    assert_eq!(
        json_of(reused, 401).await["error"],
        "invalid_code",
        "a recovery code works once"
    );
    // New recovery codes need the password; the old ones stop working.
    let fresh = done["access_token"].as_str().unwrap();
    let regenerated = json_of(
        post_bearer(
            &app,
            "/api/v1/auth/mfa/recovery-codes",
            fresh,
            json!({"password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    let new_codes = regenerated["backup_codes"].as_array().unwrap();
    assert_eq!(new_codes.len(), 10);
    let third = json_of(login(&app, "uma", PASSWORD).await, 403).await;
    let old = post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": third["mfa_token"], "code": codes[2]}),
    )
    .await;
    assert_eq!(json_of(old, 401).await["error"], "invalid_code");
    json_of(
        post(
            &app,
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": third["mfa_token"], "code": new_codes[0]}),
        )
        .await,
        200,
    )
    .await;
    // Turning it off needs the password.
    let refused = post_bearer(
        &app,
        "/api/v1/auth/mfa/disable",
        fresh,
        json!({"password": "nope nope"}),
    )
    .await;
    assert_eq!(json_of(refused, 401).await["error"], "invalid_credentials");
    json_of(
        post_bearer(
            &app,
            "/api/v1/auth/mfa/disable",
            fresh,
            json!({"password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    json_of(login(&app, "uma", PASSWORD).await, 200).await;
    // Each change was mailed: enabled, new codes, disabled (after the verification mail).
    let mails = sink.wait_for_count(4, MAIL_WAIT).await;
    let subjects: Vec<String> = mails.iter().map(|m| m.subject().to_lowercase()).collect();
    assert!(
        subjects
            .iter()
            .filter(|s| s.contains("two-step") || s.contains("recovery"))
            .count()
            >= 3,
        "{subjects:?}"
    );
}

#[tokio::test]
async fn wrong_second_factor_codes_count_toward_the_lockout() {
    let app = spawn_app().await;
    register(&app, "vito", "vito@example.com").await;
    let tokens = json_of(login(&app, "vito", PASSWORD).await, 200).await;
    let token = tokens["access_token"].as_str().unwrap();
    let setup = json_of(
        post_bearer(
            &app,
            "/api/v1/auth/mfa/setup",
            token,
            json!({"password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    let code = totp_now(setup["secret"].as_str().unwrap());
    json_of(
        post(
            &app,
            "/api/v1/auth/mfa/verify-setup",
            json!({"setup_token": setup["setup_token"], "code": code}),
        )
        .await,
        200,
    )
    .await;
    let challenge = json_of(login(&app, "vito", PASSWORD).await, 403).await;
    for _ in 0..4 {
        let wrong = post(
            &app,
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": challenge["mfa_token"], "code": "999999"}),
        )
        .await;
        assert_eq!(json_of(wrong, 401).await["error"], "invalid_code");
    }
    let locked = post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": challenge["mfa_token"], "code": "999999"}),
    )
    .await;
    assert_eq!(json_of(locked, 423).await["error"], "account_locked");
    assert_eq!(
        json_of(login(&app, "vito", PASSWORD).await, 423).await["error"],
        "account_locked"
    );
}

#[tokio::test]
async fn the_profile_endpoints_share_one_model() {
    let app = spawn_app().await;
    register(&app, "wanda", "wanda@example.com").await;
    let tokens = json_of(login(&app, "wanda", PASSWORD).await, 200).await;
    let token = tokens["access_token"].as_str().unwrap();
    let patched = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(token)
        .json(&json!({"name": "Wanda Maximoff", "bio": "Engineer"}))
        .send()
        .await
        .unwrap();
    let me = json_of(patched, 200).await;
    assert_eq!(me["name"], "Wanda Maximoff");
    assert_eq!(me["bio"], "Engineer");
    assert!(me["updatedAt"].is_string());
    let put = app
        .client
        .put(app.url("/api/v1/users/profile"))
        .bearer_auth(token)
        .json(&json!({"first_name": "Wanda", "last_name": "M", "preferences": {"language": "es", "notifications": {"email": true}}}))
        .send()
        .await
        .unwrap();
    let profile = json_of(put, 200).await;
    assert_eq!(profile["preferences"]["language"], "es");
    assert_eq!(profile["first_name"], "Wanda");
    let me = json_of(get_bearer(&app, "/api/v1/auth/me", token).await, 200).await;
    assert_eq!(me["last_name"], "M");
    let bad = app
        .client
        .put(app.url("/api/v1/users/profile"))
        .bearer_auth(token)
        .json(&json!({"preferences": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(bad, 422).await["details"][0]["field"],
        "preferences"
    );
    let unknown = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(unknown, 422).await["details"][0]["field"], "role");
    // A third-party token without profile permissions cannot read the profile.
    let client = app.web_client("Third party", |_| {}).await;
    let third = app
        .tokens_for(&client, "wanda", PASSWORD, "openid profile")
        .await;
    let refused = get_bearer(&app, "/api/v1/users/profile", &third.access_token).await;
    assert_eq!(json_of(refused, 403).await["error"], "forbidden");
    // No token at all.
    let none = app.get("/api/v1/me").await;
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"latchkey\""
    );
}

#[tokio::test]
async fn a_hash_with_weaker_parameters_is_upgraded_at_the_next_login() {
    use argon2::PasswordHasher;
    let app = spawn_app().await;
    let user_id = app.create_user("xavier", PASSWORD).await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes())
    .unwrap()
    .to_string();
    let id = user_id.clone();
    app.state
        .store
        .run(move |conn| latchkey::store::users::set_password_hash(conn, &id, &weak, 0))
        .await
        .unwrap();
    json_of(login(&app, "xavier", PASSWORD).await, 200).await;
    let stored = app
        .state
        .store
        .run(move |conn| latchkey::store::users::find(conn, &user_id))
        .await
        .unwrap()
        .password_hash
        .unwrap();
    assert!(
        latchkey::accounts::passwords::has_current_parameters(&stored),
        "{stored}"
    );
    json_of(login(&app, "xavier", PASSWORD).await, 200).await;
}
