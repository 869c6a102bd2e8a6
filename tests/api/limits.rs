//! Rate limits: the contract's rules reached and reset with the right headers, refusals that
//! never count as failed logins, keys per client, trusted proxies, and the quota endpoint.

use std::time::Duration;

use latchkey::config::{CounterStore, LimitRule};
use serde_json::{Value, json};

use crate::admin_support::{Api, USER_PASSWORD, admin_token, user_with_roles};
use crate::flows::{Browser, authorize_url};
use crate::helpers::{TestApp, spawn_app_with};

fn rule(limit: u32, window_secs: u64) -> LimitRule {
    LimitRule { limit, window_secs }
}

async fn post_json(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn failed_logins(app: &TestApp, user_id: &str) -> i32 {
    let id = user_id.to_owned();
    app.state
        .store
        .run(move |conn| latchkey::store::security::find(conn, &id))
        .await
        .unwrap()
        .failed_login_count
}

async fn login_limit_is_enforced(store: CounterStore) {
    let app = spawn_app_with(Box::new(move |s| {
        s.rate_limits.login = rule(3, 300);
        s.rate_limits.store = store;
    }))
    .await;
    let (id, _) = user_with_roles(&app, "erin", &["user"]).await;
    let before = failed_logins(&app, &id).await;
    let wrong = json!({"username": "erin", "password": "not the password"});
    // user_with_roles logged erin in once: two attempts are left.
    for remaining in [1, 0] {
        let response = post_json(&app, "/api/v1/auth/login", wrong.clone()).await;
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(header(&response, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            Some(remaining.to_string())
        );
        assert_eq!(
            header(&response, "x-ratelimit-window").as_deref(),
            Some("300")
        );
        let reset: i64 = header(&response, "x-ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > latchkey::domain::now() && reset <= latchkey::domain::now() + 300);
    }
    let refused = post_json(
        &app,
        "/api/v1/auth/login",
        json!({"username": "erin", "password": USER_PASSWORD}),
    )
    .await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: i64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after));
    assert_eq!(
        header(&refused, "x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert!(header(&refused, "x-request-id").is_some());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_login_attempts");
    assert_eq!(body["code"], 429);
    assert_eq!(body["retry_after"], retry_after);
    assert_eq!(
        failed_logins(&app, &id).await,
        before + 2,
        "the refused attempt never reached the password check"
    );
    // The key is the address and the username: another account from here is not limited.
    user_with_roles(&app, "frank", &["user"]).await;
}

#[tokio::test]
async fn the_login_limit_refuses_with_429_headers_and_does_not_count_a_failed_login() {
    login_limit_is_enforced(CounterStore::Auto).await;
}

#[tokio::test]
async fn database_counters_enforce_the_same_limit() {
    login_limit_is_enforced(CounterStore::Database).await;
}

#[tokio::test]
async fn the_login_page_is_limited_too_and_answers_with_a_page() {
    let app = spawn_app_with(Box::new(|s| s.rate_limits.login = rule(2, 300))).await;
    let client = app.web_client("Limited", |_| {}).await;
    let browser = Browser::new(&app);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
        ],
    );
    let (_, status, html) = browser.visit(&url).await.page();
    assert_eq!(status, 200);
    for _ in 0..2 {
        let (_, status, _) = browser
            .submit_login(&html, "admin", "wrong password")
            .await
            .page();
        assert_eq!(status, 401);
    }
    let (_, status, page) = browser
        .submit_login(&html, "admin", "wrong password")
        .await
        .page();
    assert_eq!(status, 429);
    assert!(page.contains("Too many attempts"), "{page}");
    assert!(page.contains("<html"), "a page, not JSON");
}

#[tokio::test]
async fn a_window_ends_and_the_limit_starts_again() {
    let app = spawn_app_with(Box::new(|s| s.rate_limits.forgot_password = rule(1, 2))).await;
    let ask = || {
        post_json(
            &app,
            "/api/v1/auth/forgot-password",
            json!({"email": "x@example.com"}),
        )
    };
    // Wait for the start of a window so both requests fall in it.
    let now = latchkey::domain::now();
    if now % 2 == 1 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(ask().await.status().as_u16(), 200);
    let refused = ask().await;
    assert_eq!(refused.status().as_u16(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_reset_requests");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let again = ask().await;
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(
        header(&again, "x-ratelimit-remaining").as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn the_api_is_limited_per_token_subject_and_the_quota_shows_the_standing() {
    let app = spawn_app_with(Box::new(|s| s.rate_limits.api = rule(4, 3600))).await;
    let (_, gina) = user_with_roles(&app, "gina", &["user"]).await;
    let (_, hank) = user_with_roles(&app, "hank", &["user"]).await;
    let gina = Api::new(&app, &gina);
    let (status, quota) = gina.get("/users/quota").await;
    assert_eq!(status, 200, "{quota}");
    assert_eq!(quota["limits"]["api_requests"]["limit"], 4);
    assert_eq!(
        quota["limits"]["api_requests"]["used"], 1,
        "this request counts"
    );
    assert_eq!(quota["limits"]["api_requests"]["remaining"], 3);
    assert_eq!(quota["limits"]["login_attempts"]["limit"], 15);
    assert_eq!(
        quota["limits"]["login_attempts"]["used"], 1,
        "gina's own login"
    );
    for _ in 0..3 {
        assert_eq!(gina.get("/auth/me").await.0, 200);
    }
    let (status, body) = gina.get("/auth/me").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(
        Api::new(&app, &hank).get("/auth/me").await.0,
        200,
        "another subject"
    );
    // Requests without a valid token are counted by address, apart from both.
    for _ in 0..4 {
        assert_eq!(Api::new(&app, "forged").get("/auth/me").await.0, 401);
    }
    assert_eq!(Api::new(&app, "forged").get("/auth/me").await.0, 429);
}

#[tokio::test]
async fn forwarded_addresses_count_apart_only_behind_a_trusted_proxy() {
    async fn registrations(app: &TestApp, forwarded: &[&str]) -> Vec<u16> {
        let mut statuses = Vec::new();
        for (i, address) in forwarded.iter().enumerate() {
            let response = app
                .client
                .post(app.url("/api/v1/auth/register"))
                .header("X-Forwarded-For", *address)
                .json(
                    &json!({"username": format!("u{i}x{}", address.replace('.', "")),
                              "email": format!("u{i}{}@example.com", address.replace('.', "")),
                              "password": "a long and unusual passphrase"}),
                )
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        statuses
    }
    let trusting = spawn_app_with(Box::new(|s| {
        s.rate_limits.register = rule(1, 300);
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }))
    .await;
    assert_eq!(
        registrations(&trusting, &["198.51.100.1", "198.51.100.2", "198.51.100.1"]).await,
        vec![201, 201, 429]
    );
    let untrusting = spawn_app_with(Box::new(|s| s.rate_limits.register = rule(1, 300))).await;
    assert_eq!(
        registrations(&untrusting, &["198.51.100.1", "198.51.100.2"]).await,
        vec![201, 429],
        "a client cannot pick its own bucket"
    );
}

#[tokio::test]
async fn one_address_naming_a_new_login_each_time_meets_the_address_ceiling() {
    let app = spawn_app_with(Box::new(|s| {
        s.rate_limits.login_address = rule(5, 300);
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }))
    .await;
    let attempt = |login: String, from: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/api/v1/auth/login"))
                .header("X-Forwarded-For", from)
                .json(&json!({"username": login, "password": "a guess at it"}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let mut statuses = Vec::new();
    for n in 0..6 {
        statuses.push(attempt(format!("someone{n}"), "203.0.113.9").await);
    }
    let wrong = (401, "invalid_credentials".to_owned());
    let limited = (429, "too_many_login_attempts".to_owned());
    assert_eq!(statuses[..5], vec![wrong.clone(); 5][..], "{statuses:?}");
    assert_eq!(statuses[5], limited, "{statuses:?}");
    // Another address is not held back; nothing of the refused attempt was stored.
    assert_eq!(attempt("someone6".into(), "198.51.100.9").await, wrong);
    assert_eq!(
        app.count("login_throttles").await,
        2 * 6,
        "two counters per login that reached the handler"
    );
}

#[tokio::test]
async fn limits_can_be_turned_off_and_protocol_endpoints_are_not_limited() {
    let app = spawn_app_with(Box::new(|s| {
        s.rate_limits.enabled = false;
        s.rate_limits.api = rule(1, 3600);
    }))
    .await;
    let admin = Api::new(&app, &admin_token(&app).await);
    for _ in 0..3 {
        let response = admin.get_raw("/users").await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(header(&response, "x-ratelimit-limit").is_none());
    }
    let discovery = app.get("/.well-known/openid-configuration").await;
    assert!(header(&discovery, "x-ratelimit-limit").is_none());
}
