//! Prometheus metrics: closed unless a token or a separate address is configured, and moving
//! when requests are made.

use diesel::RunQueryDsl;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const TOKEN: &str = "metrics-token-for-tests-0123456789";

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

/// The value of the series `line_prefix` (its full name with labels), or 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).map(str::trim))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_are_closed_without_a_token_and_refuse_a_wrong_one() {
    let closed = spawn_app().await;
    assert_eq!(closed.get("/metrics").await.status().as_u16(), 404);

    let app = spawn_app_with(Box::new(|s| {
        s.metrics.token = Some(SecretString::from(TOKEN.to_owned()));
    }))
    .await;
    assert_eq!(app.get("/metrics").await.status().as_u16(), 401);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("not-the-token-at-all-0000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn the_metrics_move_when_requests_are_made() {
    let app = spawn_app_with(Box::new(|s| {
        s.metrics.token = Some(SecretString::from(TOKEN.to_owned()));
    }))
    .await;
    let crypto = app.state.crypto.clone();
    app.state
        .store
        .run(move |conn| {
            // Queued and made due in an hour in one transaction, so that no pass of the
            // outbox worker delivers them before the backlog is read.
            latchkey::store::write_transaction(conn, |conn| {
                for _ in 0..2 {
                    let id = latchkey::events::outbox::enqueue(
                        conn,
                        &crypto,
                        "email",
                        None,
                        &json!({}),
                    )?;
                    diesel::sql_query(
                        "UPDATE outbox SET next_attempt_at = next_attempt_at + 3600 WHERE id = $1",
                    )
                    .bind::<diesel::sql_types::Text, _>(id)
                    .execute(conn)?;
                }
                Ok::<_, latchkey::store::StoreError>(())
            })
        })
        .await
        .unwrap();
    let before = scrape(&app).await;
    assert_eq!(
        value(&before, r#"latchkey_outbox_backlog{kind="email"}"#),
        2.0
    );
    let discovery = r#"latchkey_http_requests_total{method="GET",route="/.well-known/openid-configuration",status="200"}"#;
    for _ in 0..3 {
        assert_eq!(
            app.get("/.well-known/openid-configuration")
                .await
                .status()
                .as_u16(),
            200
        );
    }
    let client = app
        .web_client("Metered", |r| {
            r.grant_types = vec!["client_credentials".into()];
            r.redirect_uris.clear();
        })
        .await;
    let token = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status().as_u16(), 200);
    let refused = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let ghost = app.get("/users/123/not-a-route").await;
    assert_eq!(ghost.status().as_u16(), 404);

    let after = scrape(&app).await;
    assert_eq!(value(&after, discovery) - value(&before, discovery), 3.0);
    assert_eq!(
        value(
            &after,
            r#"latchkey_tokens_issued_total{grant="client_credentials"}"#
        ),
        1.0
    );
    assert_eq!(value(&after, "latchkey_login_failures_total"), 1.0);
    assert!(
        after.contains(r#"route="unmatched""#),
        "unknown paths are one series, not one per path"
    );
    assert!(!after.contains("not-a-route"));
    assert!(
        value(
            &after,
            r#"latchkey_http_request_duration_seconds_count{method="GET",route="/.well-known/openid-configuration"}"#
        ) >= 3.0
    );
    assert!(value(&after, "latchkey_db_pool_connections") >= 1.0);
    assert!(after.contains(r#"latchkey_signing_key_age_seconds{alg="ES256"}"#));
    assert!(value(&after, "latchkey_uptime_seconds") > 0.0);
    assert!(value(&after, "latchkey_process_resident_memory_bytes") > 0.0);
}

#[tokio::test]
async fn lockouts_and_rate_limit_refusals_are_counted() {
    let app = spawn_app_with(Box::new(|s| {
        s.metrics.token = Some(SecretString::from(TOKEN.to_owned()));
        s.accounts.lockout_threshold = 2;
        s.rate_limits.login = latchkey::config::LimitRule {
            limit: 3,
            window_secs: 300,
        };
    }))
    .await;
    for _ in 0..4 {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "wrong"}))
            .send()
            .await
            .unwrap();
    }
    let text = scrape(&app).await;
    assert_eq!(value(&text, "latchkey_lockouts_total"), 1.0);
    assert_eq!(
        value(&text, r#"latchkey_rate_limited_total{rule="login"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_separate_metrics_address_serves_only_the_metrics() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = spawn_app_with(Box::new(move |s| {
        s.metrics.bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    }))
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let metrics = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("latchkey_uptime_seconds")
    );
    let other = app
        .client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    assert_eq!(
        app.get("/metrics").await.status().as_u16(),
        404,
        "no token: not on the main listener"
    );
}
