//! Health endpoints, including a database outage and the recovery after it.

use serde_json::Value;

use crate::helpers::{eventually, spawn_app, spawn_app_with};
use crate::processes::Relay;

#[tokio::test]
async fn health_reports_status_version_and_time() {
    let app = spawn_app().await;
    let body = app.get_json("/health", 200).await;
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn detailed_health_checks_the_database_and_the_pool() {
    let app = spawn_app().await;
    let token = crate::admin_support::admin_token(&app).await;
    let body = app.get_json_as("/health/detailed", &token).await;
    let db = &body["checks"]["database"];
    assert_eq!(db["status"], "healthy");
    assert!(db["response_time_ms"].as_f64().unwrap() >= 0.0);
    let pool = &db["connection_pool"];
    assert_eq!(pool["max"], 5);
    assert!(pool["total"].as_u64().unwrap() >= 1);
    assert_eq!(
        pool["total"].as_u64().unwrap(),
        pool["active"].as_u64().unwrap() + pool["idle"].as_u64().unwrap()
    );
    assert_eq!(body["checks"]["signing_keys"]["published"], 8);
    let workers = body["checks"]["workers"]["workers"].as_array().unwrap();
    let names: Vec<&str> = workers
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["outbox", "housekeeping", "keys"]);
    assert!(
        workers
            .iter()
            .all(|w| w["status"] == "healthy" && w["panics"] == 0),
        "{body}"
    );
}

#[tokio::test]
async fn system_health_and_info_have_seed_000_shapes() {
    let app = spawn_app().await;
    let health = app.get_json("/api/v1/system/health", 200).await;
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["services"]["database"], "healthy");
    // The uptime is an internal, as on /health/detailed: for `system:read` only.
    assert!(health.get("uptime").is_none(), "{health}");
    let admin = crate::admin_support::admin_token(&app).await;
    let full = app.get_json_as("/api/v1/system/health", &admin).await;
    assert!(full["uptime"].is_u64(), "{full}");
    let info = app.get_json("/api/v1/system/info", 200).await;
    assert_eq!(info["name"], "Latchkey");
    assert_eq!(info["api_version"], "v1");
    assert!(
        info["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "jwks")
    );
}

#[tokio::test]
async fn detailed_health_is_503_while_the_database_is_unreachable_and_recovers_without_restart() {
    if !crate::helpers::on_postgres() {
        // An SQLite file cannot go away under open connections; the PostgreSQL run covers
        // the outage, and the closed-port test below covers the 503 form on every backend.
        return;
    }
    // A database of its own, reached through the relay.
    let dir = tempfile::tempdir().unwrap();
    let real = url::Url::parse(&crate::helpers::fresh_database_url(dir.path())).unwrap();
    let target = format!("{}:{}", real.host_str().unwrap(), real.port().unwrap())
        .parse()
        .unwrap();
    let mut relay = Relay::start(target, 0).await;
    let mut relayed = real.clone();
    relayed.set_port(Some(relay.port)).unwrap();
    let relayed = relayed.to_string();
    let app = spawn_app_with(Box::new(move |s| {
        s.database_url = latchkey::config::DatabaseUrl::parse(&relayed).unwrap();
    }))
    .await;
    app.get_json("/health/detailed", 200).await;

    relay.stop().await;
    let body: Value = eventually(10, "the outage to be reported", || async {
        let response = app.get("/health/detailed").await;
        (response.status() == 503).then_some(())?;
        Some(response.json::<Value>().await.unwrap())
    })
    .await;
    assert_eq!(body["error"], "service_unavailable");
    assert_eq!(body["code"], 503);
    assert_eq!(body["details"]["checks"]["database"]["status"], "unhealthy");
    // Liveness does not depend on the database.
    app.get_json("/health", 200).await;

    relay.restart().await;
    eventually(10, "recovery", || async {
        (app.get("/health/detailed").await.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_database_on_a_closed_port_is_unavailable_not_an_internal_error() {
    // Point a store at a port where nothing listens: callers answer 503, never 500.
    let app = spawn_app().await;
    let mut settings = (*app.state.settings).clone();
    settings.database_url =
        latchkey::config::DatabaseUrl::parse("postgres://latchkey:pw@127.0.0.1:1/none").unwrap();
    settings.database_timeout = std::time::Duration::from_millis(500);
    let broken = latchkey::store::Store::open(&settings).unwrap();
    let error = broken.ping().await.unwrap_err();
    assert!(
        matches!(error, latchkey::store::StoreError::Unavailable(_)),
        "{error:?}"
    );
    let api_error = latchkey::api::error::ApiError::from(error);
    assert_eq!(api_error.code(), "service_unavailable");
}
