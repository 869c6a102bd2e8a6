//! Webhooks: the API under both bases (create, list, get, update, delete, test ping,
//! deliveries), and delivery to a real receiver that verifies every signature: one that is
//! down at first, one that never answers well (and gets its webhook disabled after 20
//! failures in a row), and one that comes up only after the server has restarted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use latchkey::events::audit::Actor;
use latchkey::events::webhooks::{self, EventList, NewWebhook, WebhookUrl};
use latchkey::startup::{AppState, Application};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::admin_support::{Api, admin_token, user_with_roles};
use crate::helpers::{
    TestApp, Tweak, eventually, fresh_database_url, outbox_passes, spawn_app_with, test_settings,
    two_more_outbox_passes,
};

/// A fast outbox: polled every 100 ms, retried after about a second.
fn quick(settings: &mut latchkey::config::Settings) {
    settings.outbox.poll_interval = Duration::from_millis(100);
    settings.outbox.backoff_base_secs = 1;
    settings.outbox.backoff_max_secs = 1;
}

fn quick_tweak() -> Tweak {
    Box::new(quick)
}

/// One request the receiver accepted.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    user_agent: String,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    up: bool,
    secret: String,
    received: Vec<Received>,
    refused: usize,
    bad_signatures: usize,
}

/// A subscriber's endpoint: answers 503 while down; when up, verifies the signature with the
/// secret it was given (401 when it does not verify) and records the delivery.
#[derive(Clone)]
struct Receiver {
    port: u16,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    /// A receiver listening on `port` (0: any), down until [`Receiver::up`].
    fn start(port: u16) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state: Arc<Mutex<ReceiverState>> = Arc::default();
        let shared = state.clone();
        let server = actix_web::HttpServer::new(move || {
            let shared = shared.clone();
            actix_web::App::new().route(
                "/hook",
                actix_web::web::post().to(
                    move |request: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                        let shared = shared.clone();
                        async move { receive(&shared, &request, &body) }
                    },
                ),
            )
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .run();
        tokio::spawn(server);
        Self { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn set_secret(&self, secret: &str) {
        self.state.lock().unwrap().secret = secret.to_owned();
    }

    fn up(&self) {
        self.state.lock().unwrap().up = true;
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    fn bad_signatures(&self) -> usize {
        self.state.lock().unwrap().bad_signatures
    }
}

fn header(request: &actix_web::HttpRequest, name: &str) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn receive(
    shared: &Mutex<ReceiverState>,
    request: &actix_web::HttpRequest,
    body: &[u8],
) -> actix_web::HttpResponse {
    let mut state = shared.lock().unwrap();
    if !state.up {
        state.refused += 1;
        return actix_web::HttpResponse::ServiceUnavailable().finish();
    }
    let signature = header(request, "X-Latchkey-Signature");
    if !verify(&state.secret, &signature, body) {
        state.bad_signatures += 1;
        return actix_web::HttpResponse::Unauthorized().finish();
    }
    assert_eq!(header(request, "Content-Type"), "application/json");
    state.received.push(Received {
        event: header(request, "X-Latchkey-Event"),
        delivery: header(request, "X-Latchkey-Delivery"),
        user_agent: header(request, "User-Agent"),
        body: serde_json::from_slice(body).expect("a JSON body"),
    });
    actix_web::HttpResponse::NoContent().finish()
}

/// What a subscriber does: recompute HMAC-SHA256(secret, t + "." + body), compare it in
/// constant time, and refuse timestamps more than five minutes away.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = latchkey::domain::now();
    if (now - t).abs() > 300 {
        return false;
    }
    let Ok(expected) = decode_hex(&v1) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Result<Vec<u8>, ()> {
    if !text.len().is_multiple_of(2) {
        return Err(());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| ()))
        .collect()
}

/// Emits `event` with `data` as the server's own code does (inside a store call).
async fn emit(state: &AppState, event: &'static str, data: Value) -> usize {
    let crypto = state.crypto.clone();
    state
        .store
        .run(move |conn| webhooks::emit(conn, &crypto, event, data))
        .await
        .unwrap()
}

async fn create_webhook(api: &Api<'_>, url: &str, events: &[&str]) -> Value {
    let (status, body) = api
        .post("/webhooks", json!({"url": url, "events": events}))
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Audit entries of one webhook, newest first, as `(action, actor_id)`.
async fn audit_actions(app: &TestApp, id: &str) -> Vec<(String, Option<String>)> {
    let filter = latchkey::store::audit::AuditFilter {
        resource: Some("webhooks".into()),
        resource_id: Some(id.to_owned()),
        ..Default::default()
    };
    app.state
        .store
        .run(move |conn| latchkey::store::audit::page(conn, &filter, 0, 100))
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.action, row.actor_id))
        .collect()
}

#[tokio::test]
async fn a_receiver_down_at_first_gets_every_event_once_it_is_back_with_valid_signatures() {
    // Arrange
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let receiver = Receiver::start(0);
    let created = create_webhook(&api, &receiver.url(), &["user.created", "user.updated"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    receiver.set_secret(created["secret"].as_str().unwrap());

    // Act: three events while the receiver answers 503; one is not subscribed.
    assert_eq!(
        emit(&app.state, "user.created", json!({"user": {"id": "u1"}})).await,
        1
    );
    assert_eq!(
        emit(&app.state, "user.updated", json!({"user": {"id": "u1"}})).await,
        1
    );
    assert_eq!(
        emit(&app.state, "user.login", json!({"user": {"id": "u1"}})).await,
        0
    );
    eventually(10, "deliveries refused and retried", || async {
        let (_, body) = api.get(&format!("/webhooks/{id}/deliveries")).await;
        let all_retrying = body["deliveries"].as_array().unwrap().iter().all(|d| {
            d["status"] == "pending"
                && d["attempts"].as_i64().unwrap() >= 1
                && d["last_error"] == "the receiver answered 503"
        });
        (receiver.refused() >= 3 && all_retrying).then_some(())
    })
    .await;
    let (_, hook) = api.get(&format!("/webhooks/{id}")).await;
    assert!(
        hook["consecutive_failures"].as_i64().unwrap() >= 2,
        "{hook}"
    );
    assert!(receiver.received().is_empty());
    receiver.up();

    // Assert: both subscribed events arrive, once each, correctly signed.
    let received = eventually(15, "both events delivered", || async {
        let received = receiver.received();
        (received.len() >= 2).then_some(received)
    })
    .await;
    two_more_outbox_passes(|| outbox_passes(&app.state)).await;
    let received_later = receiver.received();
    assert_eq!(received_later.len(), 2, "{received_later:?}");
    assert_eq!(receiver.bad_signatures(), 0);
    let events: HashSet<&str> = received.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, HashSet::from(["user.created", "user.updated"]));
    for r in &received {
        assert_eq!(r.body["event"], r.event.as_str());
        assert_eq!(r.body["webhook_id"], id.as_str());
        assert_eq!(r.body["data"]["user"]["id"], "u1");
        assert!(r.body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(
            r.user_agent.starts_with("Latchkey-Webhooks/"),
            "{}",
            r.user_agent
        );
    }
    let (_, body) = api.get(&format!("/webhooks/{id}/deliveries")).await;
    let deliveries = body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    let delivery_ids: HashSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let received_ids: HashSet<&str> = received.iter().map(|r| r.delivery.as_str()).collect();
    assert_eq!(
        delivery_ids, received_ids,
        "X-Latchkey-Delivery is the delivery's id"
    );
    for d in deliveries {
        assert_eq!(d["status"], "delivered", "{d}");
        assert!(d["attempts"].as_i64().unwrap() >= 2);
        assert!(d["last_error"].is_null());
        assert!(d["delivered_at"].is_string());
        assert!(d["next_attempt_at"].is_null());
    }
    let (_, hook) = api.get(&format!("/webhooks/{id}")).await;
    assert_eq!(hook["consecutive_failures"], 0);
    assert_eq!(hook["active"], true);
    assert!(hook["last_success"].is_string());
    assert!(hook["last_delivery"].is_string());
}

#[tokio::test]
async fn registering_through_the_api_delivers_user_created_once_the_receiver_is_back() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let receiver = Receiver::start(0);
    let created = create_webhook(&api, &receiver.url(), &["user.created"]).await;
    receiver.set_secret(created["secret"].as_str().unwrap());

    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({
            "username": "hooked",
            "email": "hooked@example.com",
            "password": "a long and unusual passphrase 4711",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    eventually(10, "a refused attempt", || async {
        (receiver.refused() >= 1).then_some(())
    })
    .await;
    receiver.up();

    let received = eventually(10, "user.created", || async {
        receiver.received().into_iter().next()
    })
    .await;
    assert_eq!(received.event, "user.created");
    assert_eq!(received.body["data"]["user"]["username"], "hooked");
    assert_eq!(received.body["data"]["user"]["email"], "hooked@example.com");
    assert!(received.body["data"]["user"].get("password_hash").is_none());
    assert_eq!(receiver.bad_signatures(), 0);
}

#[tokio::test]
async fn created_webhook_shows_its_secret_once_and_stores_it_sealed() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);

    let (status, created) = api
        .post(
            "/admin/webhooks",
            json!({
                "url": "https://hooks.example/in",
                "events": ["user.created", "user.login", "user.created"],
                "description": "CRM sync",
            }),
        )
        .await;

    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(created["url"], "https://hooks.example/in");
    assert_eq!(created["events"], json!(["user.created", "user.login"]));
    assert_eq!(created["active"], true);
    assert_eq!(created["description"], "CRM sync");
    assert_eq!(created["consecutive_failures"], 0);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(created["last_delivery"].is_null());
    // Shown once: neither the item nor the list carries it again.
    let (status, got) = api.get(&format!("/webhooks/{id}")).await;
    assert_eq!(status, 200);
    assert!(got.get("secret").is_none(), "{got}");
    assert_eq!(got["id"], id.as_str());
    let (status, list) = api.get("/admin/webhooks").await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(list["pagination"]["total"], 1);
    // Stored sealed under the webhook's id.
    let row = {
        let id = id.clone();
        app.state
            .store
            .run(move |conn| latchkey::store::webhooks::find(conn, &id))
            .await
            .unwrap()
    };
    assert_ne!(row.secret, secret);
    assert!(!row.secret.contains(&secret));
    assert_eq!(
        app.state.crypto.open(&row.secret, &id).unwrap(),
        secret.as_bytes()
    );
    assert!(app.state.crypto.open(&row.secret, "another-id").is_err());
    let audit = audit_actions(&app, &id).await;
    assert_eq!(audit[0].0, "webhook_created");
    assert!(audit[0].1.is_some(), "the admin is the actor");
}

#[tokio::test]
async fn a_chosen_secret_is_used_and_rotation_shows_the_new_one_once() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let (status, created) = api
        .post(
            "/webhooks",
            json!({"url": "https://hooks.example/a", "events": ["*"], "secret": "my-own-secret-0123456789", "active": false}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["secret"], "my-own-secret-0123456789");
    assert_eq!(created["events"], json!(["*"]));
    assert_eq!(created["active"], false);
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, rotated) = api
        .patch(&format!("/webhooks/{id}"), json!({"rotate_secret": true}))
        .await;

    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_"));
    let stored = {
        let id = id.clone();
        app.state
            .store
            .run(move |conn| latchkey::store::webhooks::find(conn, &id))
            .await
            .unwrap()
    };
    assert_eq!(
        app.state.crypto.open(&stored.secret, &id).unwrap(),
        new_secret.as_bytes()
    );
    let (_, plain_update) = api
        .patch(&format!("/webhooks/{id}"), json!({"description": "x"}))
        .await;
    assert!(plain_update.get("secret").is_none(), "{plain_update}");
    // The audit log records the rotation without the secret.
    let audit_rows = {
        let filter = latchkey::store::audit::AuditFilter {
            resource_id: Some(id.clone()),
            action: Some("webhook_updated".into()),
            ..Default::default()
        };
        app.state
            .store
            .run(move |conn| latchkey::store::audit::page(conn, &filter, 0, 10))
            .await
            .unwrap()
    };
    assert_eq!(audit_rows.len(), 2);
    for row in &audit_rows {
        let text = format!("{row:?}");
        assert!(!text.contains(&new_secret) && !text.contains("my-own-secret"));
    }
}

#[tokio::test]
async fn update_changes_the_stored_webhook_under_put_and_patch_and_delete_removes_it() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let created = create_webhook(&api, "https://hooks.example/a", &["user.created"]).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, patched) = api
        .patch(
            &format!("/admin/webhooks/{id}"),
            json!({"url": "https://hooks.example/b", "events": ["client.created", "client.deleted"], "active": false, "description": "ops"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["url"], "https://hooks.example/b");
    assert_eq!(
        patched["events"],
        json!(["client.created", "client.deleted"])
    );
    assert_eq!(patched["active"], false);
    assert_eq!(patched["description"], "ops");
    let (status, put) = api
        .put(
            &format!("/webhooks/{id}"),
            json!({"active": true, "description": ""}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["active"], true);
    assert!(
        put["description"].is_null(),
        "an empty description clears it"
    );
    assert_eq!(
        put["url"], "https://hooks.example/b",
        "PUT leaves other members"
    );
    let row = {
        let id = id.clone();
        app.state
            .store
            .run(move |conn| latchkey::store::webhooks::find(conn, &id))
            .await
            .unwrap()
    };
    assert_eq!(row.url, "https://hooks.example/b");
    assert_eq!(
        row.event_names().unwrap(),
        vec!["client.created", "client.deleted"]
    );
    assert!(row.active);
    // An inactive webhook gets no events; subscription follows the update.
    assert_eq!(emit(&app.state, "user.created", json!({})).await, 0);
    assert_eq!(emit(&app.state, "client.created", json!({})).await, 1);

    let (status, body) = api.delete(&format!("/admin/webhooks/{id}")).await;

    assert_eq!(status, 204);
    assert!(body.is_null());
    let (status, body) = api.get(&format!("/webhooks/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    let (status, _) = api.delete(&format!("/webhooks/{id}")).await;
    assert_eq!(status, 404);
    let actions: Vec<String> = audit_actions(&app, &id)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        actions,
        [
            "webhook_deleted",
            "webhook_updated",
            "webhook_updated",
            "webhook_created"
        ]
    );
}

#[tokio::test]
async fn invalid_bodies_are_refused_naming_the_field_and_store_nothing() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);

    for (body, field) in [
        (
            json!({"url": "ftp://hooks.example/a", "events": ["user.created"]}),
            "url",
        ),
        (
            json!({"url": "hooks.example/a", "events": ["user.created"]}),
            "url",
        ),
        (
            json!({"url": "https://u:p@hooks.example/a", "events": ["user.created"]}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example/a#x", "events": ["user.created"]}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example/a", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://hooks.example/a", "events": ["user.exploded"]}),
            "events",
        ),
        (
            json!({"url": "https://hooks.example/a", "events": ["webhook.test"]}),
            "events",
        ),
        (
            json!({"url": "https://hooks.example/a", "events": ["user.created"], "secret": "short"}),
            "secret",
        ),
        (
            json!({"url": "https://hooks.example/a", "events": ["user.created"], "colour": "red"}),
            "colour",
        ),
        (
            json!({"url": "https://hooks.example/a", "events": "user.created"}),
            "events",
        ),
        (json!({"events": ["user.created"]}), "body"),
    ] {
        let (status, error) = api.post("/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {error}");
        assert_eq!(error["error"], "validation_error");
        assert_eq!(error["code"], 422);
        let fields: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|f| f.contains(field)),
            "{body} -> {error}"
        );
        assert!(error["request_id"].as_str().unwrap().starts_with("req_"));
    }
    // Every field at fault at once.
    let (status, error) = api
        .post("/webhooks", json!({"url": "nope", "events": []}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(error["details"].as_array().unwrap().len(), 2, "{error}");
    // Malformed JSON is a 400.
    let response = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&api.token)
        .header("Content-Type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_json");
    let (_, list) = api.get("/webhooks").await;
    assert_eq!(list["pagination"]["total"], 0, "nothing stored");

    let created = create_webhook(&api, "https://hooks.example/a", &["user.created"]).await;
    let id = created["id"].as_str().unwrap();
    for (body, field) in [
        (
            json!({"rotate_secret": true, "secret": "0123456789abcdef0123"}),
            "rotate_secret",
        ),
        (json!({"events": []}), "events"),
        (json!({"url": "mailto:a@b.c"}), "url"),
        (json!({"enabled": true}), "enabled"),
    ] {
        let (status, error) = api.patch(&format!("/webhooks/{id}"), body.clone()).await;
        assert_eq!(status, 422, "{body} -> {error}");
        assert!(error["details"].to_string().contains(field), "{error}");
    }
    let (_, unchanged) = api.get(&format!("/webhooks/{id}")).await;
    assert_eq!(unchanged["url"], "https://hooks.example/a");
    assert_eq!(unchanged["events"], json!(["user.created"]));
}

#[tokio::test]
async fn permissions_guard_every_endpoint_and_unknown_ids_are_404() {
    let app = spawn_app_with(quick_tweak()).await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let created = create_webhook(&admin, "https://hooks.example/a", &["user.created"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, user_token) = user_with_roles(&app, "plainuser", &["user"]).await;
    let user = Api::new(&app, &user_token);
    let body = json!({"url": "https://hooks.example/x", "events": ["user.created"]});
    let calls: Vec<(reqwest::Method, String, Option<Value>)> = ["/webhooks", "/admin/webhooks"]
        .into_iter()
        .flat_map(|base| {
            vec![
                (reqwest::Method::GET, base.to_owned(), None),
                (reqwest::Method::POST, base.to_owned(), Some(body.clone())),
                (reqwest::Method::GET, format!("{base}/{id}"), None),
                (
                    reqwest::Method::PATCH,
                    format!("{base}/{id}"),
                    Some(json!({"active": false})),
                ),
                (
                    reqwest::Method::PUT,
                    format!("{base}/{id}"),
                    Some(json!({"active": false})),
                ),
                (reqwest::Method::DELETE, format!("{base}/{id}"), None),
                (reqwest::Method::POST, format!("{base}/{id}/test"), None),
                (
                    reqwest::Method::GET,
                    format!("{base}/{id}/deliveries"),
                    None,
                ),
            ]
        })
        .collect();

    for (method, path, body) in &calls {
        // A `user` token: 403 in the contract's form.
        let (status, error) = user.call(method.clone(), path, body.clone()).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
        assert_eq!(error["error"], "forbidden");
        assert!(error["message"].as_str().unwrap().contains("webhooks:"));
        // No token: 401 with a challenge.
        let mut request = app
            .client
            .request(method.clone(), app.url(&format!("/api/v1{path}")));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "unauthorized");
    }
    // Nothing changed.
    let (_, still) = admin.get(&format!("/webhooks/{id}")).await;
    assert_eq!(still["active"], true);
    assert_eq!(admin.get("/webhooks").await.1["pagination"]["total"], 1);

    // A role with `webhooks:read` only reads.
    app.state
        .store
        .run(|conn| {
            let at = latchkey::domain::now();
            latchkey::store::roles::insert(
                conn,
                &latchkey::store::roles::RoleRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    name: "hook-reader".into(),
                    description: "reads webhooks".into(),
                    created_at: at,
                    updated_at: at,
                },
                &["webhooks:read".to_owned()],
            )
        })
        .await
        .unwrap();
    let (_, reader_token) = user_with_roles(&app, "hookreader", &["hook-reader"]).await;
    let reader = Api::new(&app, &reader_token);
    assert_eq!(reader.get("/webhooks").await.0, 200);
    assert_eq!(reader.get(&format!("/admin/webhooks/{id}")).await.0, 200);
    assert_eq!(
        reader.get(&format!("/webhooks/{id}/deliveries")).await.0,
        200
    );
    assert_eq!(reader.post("/webhooks", body.clone()).await.0, 403);
    assert_eq!(reader.delete(&format!("/webhooks/{id}")).await.0, 403);

    // Unknown ids: 404 `not_found` for every item endpoint.
    let unknown = uuid::Uuid::now_v7();
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/webhooks/{unknown}"), None),
        (
            reqwest::Method::PATCH,
            format!("/webhooks/{unknown}"),
            Some(json!({"active": true})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/webhooks/{unknown}"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/webhooks/{unknown}/test"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/admin/webhooks/{unknown}/deliveries"),
            None,
        ),
    ] {
        let (status, error) = admin.call(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {error}");
        assert_eq!(error["error"], "not_found");
    }
    // A method the resource does not serve: 405 with Allow.
    let response = app
        .client
        .delete(app.url("/api/v1/webhooks"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
}

#[tokio::test]
async fn a_test_ping_is_queued_signed_delivered_and_listed() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let receiver = Receiver::start(0);
    receiver.up();
    let created = create_webhook(&api, &receiver.url(), &["user.deleted"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    receiver.set_secret(created["secret"].as_str().unwrap());

    let (status, ping) = api
        .post(&format!("/admin/webhooks/{id}/test"), json!({}))
        .await;

    assert_eq!(status, 202, "{ping}");
    assert_eq!(ping["event"], "webhook.test");
    let delivery = ping["delivery_id"].as_str().unwrap().to_owned();
    let received = eventually(10, "the test ping", || async {
        receiver.received().into_iter().next()
    })
    .await;
    assert_eq!(received.event, "webhook.test");
    assert_eq!(received.delivery, delivery);
    assert_eq!(received.body["event"], "webhook.test");
    assert_eq!(received.body["webhook_id"], id.as_str());
    assert_eq!(received.body["data"]["webhook"]["id"], id.as_str());
    assert!(received.body["timestamp"].is_string());
    assert_eq!(receiver.bad_signatures(), 0);
    let listed = eventually(5, "the delivery recorded", || async {
        let (_, body) = api.get(&format!("/webhooks/{id}/deliveries")).await;
        let first = body["deliveries"][0].clone();
        (first["status"] == "delivered").then_some(first)
    })
    .await;
    assert_eq!(listed["id"], delivery.as_str());
    assert_eq!(listed["event"], "webhook.test");
    assert_eq!(listed["attempts"], 1);
    let actions: Vec<String> = audit_actions(&app, &id)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions[0], "webhook_tested");
}

#[tokio::test]
async fn a_webhook_failing_twenty_times_in_a_row_is_disabled_and_reported() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let receiver = Receiver::start(0); // never comes up: every attempt gets a 503
    let created = create_webhook(&api, &receiver.url(), &["user.created"]).await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Twenty events, each failing once: twenty failures in a row without waiting for backoff.
    let crypto = app.state.crypto.clone();
    let queued = app
        .state
        .store
        .run(move |conn| {
            let mut queued = 0;
            for n in 0..20 {
                queued += webhooks::emit(conn, &crypto, "user.created", json!({"n": n}))?;
            }
            Ok(queued)
        })
        .await
        .unwrap();
    assert_eq!(queued, 20);

    let hook = eventually(15, "the webhook disabled", || async {
        let (_, hook) = api.get(&format!("/webhooks/{id}")).await;
        (hook["active"] == false).then_some(hook)
    })
    .await;
    assert_eq!(hook["consecutive_failures"], 20);
    let reason = hook["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("20 failed deliveries in a row"), "{reason}");
    assert!(reason.contains("503"), "{reason}");
    // Reported: an audit entry by the system itself.
    let audit = audit_actions(&app, &id).await;
    assert_eq!(audit[0], ("webhook_disabled".to_owned(), None));
    // Its deliveries are failed, not retried forever; no new event is queued for it.
    let deliveries = eventually(10, "every delivery failed", || async {
        let (_, body) = api
            .get(&format!("/webhooks/{id}/deliveries?limit=100"))
            .await;
        let all = body["deliveries"].as_array().unwrap().clone();
        all.iter().all(|d| d["status"] == "failed").then_some(all)
    })
    .await;
    assert_eq!(deliveries.len(), 20);
    assert!(deliveries.iter().all(|d| d["next_attempt_at"].is_null()));
    assert!(
        deliveries
            .iter()
            .any(|d| d["last_error"].as_str().unwrap().contains("now disabled"))
    );
    assert_eq!(emit(&app.state, "user.created", json!({})).await, 0);
    assert!(receiver.refused() >= 20);

    // Activated again, it starts afresh.
    let (status, reactivated) = api
        .patch(&format!("/webhooks/{id}"), json!({"active": true}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(reactivated["active"], true);
    assert_eq!(reactivated["consecutive_failures"], 0);
    assert!(reactivated["disabled_reason"].is_null());
    assert_eq!(emit(&app.state, "user.created", json!({})).await, 1);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_offset_and_cursor_paging() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let receiver = Receiver::start(0);
    receiver.up();
    let created = create_webhook(&api, &receiver.url(), &["session.revoked"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    receiver.set_secret(created["secret"].as_str().unwrap());
    for n in 0..3 {
        emit(&app.state, "session.revoked", json!({"n": n})).await;
    }
    eventually(10, "three deliveries", || async {
        (receiver.received().len() == 3).then_some(())
    })
    .await;

    let (status, first) = api.get(&format!("/webhooks/{id}/deliveries?limit=2")).await;

    assert_eq!(status, 200, "{first}");
    assert_eq!(first["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(first["pagination"]["total"], 3);
    assert_eq!(first["pagination"]["pages"], 2);
    let (_, second) = api
        .get(&format!("/webhooks/{id}/deliveries?limit=2&page=2"))
        .await;
    assert_eq!(second["deliveries"].as_array().unwrap().len(), 1);
    let offset_ids: Vec<String> = first["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["deliveries"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    let mut newest_first = offset_ids.clone();
    newest_first.sort_by(|a, b| b.cmp(a)); // UUIDv7 ids sort by creation
    assert_eq!(offset_ids, newest_first);
    // Cursor paging gives the same order.
    let (_, page1) = api
        .get(&format!("/webhooks/{id}/deliveries?limit=2&cursor="))
        .await;
    assert_eq!(page1["pagination"]["has_more"], true);
    let cursor = page1["pagination"]["next_cursor"].as_str().unwrap();
    let (_, page2) = api
        .get(&format!(
            "/webhooks/{id}/deliveries?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(page2["pagination"]["has_more"], false);
    let cursor_ids: Vec<String> = page1["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["deliveries"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cursor_ids, offset_ids);
    for d in page1["deliveries"].as_array().unwrap() {
        assert_eq!(d["event"], "session.revoked");
        assert_eq!(d["status"], "delivered");
    }
    // The webhook list pages too, and refuses oversized pages.
    assert_eq!(api.get("/webhooks?limit=101").await.0, 400);
    assert_eq!(
        api.get(&format!("/webhooks/{id}/deliveries?limit=0"))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn deleting_a_webhook_fails_its_pending_deliveries() {
    let app = spawn_app_with(quick_tweak()).await;
    let api = Api::new(&app, &admin_token(&app).await);
    let receiver = Receiver::start(0); // down
    let created = create_webhook(&api, &receiver.url(), &["user.locked"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    emit(&app.state, "user.locked", json!({})).await;
    eventually(10, "a first failed attempt", || async {
        (receiver.refused() >= 1).then_some(())
    })
    .await;

    assert_eq!(api.delete(&format!("/webhooks/{id}")).await.0, 204);
    receiver.up();

    let entries = eventually(10, "the delivery failed", || async {
        let id = id.clone();
        let entries = app
            .state
            .store
            .run(move |conn| latchkey::events::outbox::list(conn, webhooks::WEBHOOK, Some(&id), 10))
            .await
            .unwrap();
        (entries[0].status == latchkey::events::outbox::OutboxStatus::Failed).then_some(entries)
    })
    .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].last_error.as_deref(),
        Some("the webhook no longer exists")
    );
    assert!(receiver.received().is_empty());
}

/// Builds a server over an existing database without starting its workers: an instance that
/// queues and tries deliveries only when told to, then goes away.
async fn build_instance(database_url: &str, kek: &str, dir: &std::path::Path) -> Application {
    let mut settings = test_settings(database_url, kek);
    settings.mail.directory = dir.join("mail");
    quick(&mut settings);
    Application::build(settings)
        .await
        .expect("the server builds")
}

#[tokio::test]
async fn deliveries_queued_before_a_restart_reach_a_receiver_that_comes_up_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path());
    let kek = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    };
    // A port with nothing listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");

    // The first instance: a webhook, three events, one failed attempt each; then it stops.
    let (id, secret) = {
        let first = build_instance(&database_url, &kek, dir.path()).await;
        let state = first.state();
        let crypto = state.crypto.clone();
        let (webhook, secret) = state
            .store
            .run(move |conn| {
                webhooks::create(
                    conn,
                    &crypto,
                    &Actor::system(),
                    NewWebhook {
                        url: WebhookUrl::parse(&url).unwrap(),
                        events: EventList::parse(vec!["*".into()]).unwrap(),
                        secret: None,
                        active: true,
                        description: None,
                    },
                )
            })
            .await
            .unwrap();
        for event in ["user.created", "user.role_changed", "client.deleted"] {
            assert_eq!(emit(&state, event, json!({"before": "restart"})).await, 1);
        }
        assert_eq!(
            latchkey::events::outbox::deliver_due(&state).await.unwrap(),
            0
        );
        let id = webhook.id.clone();
        let entries = state
            .store
            .run(move |conn| latchkey::events::outbox::list(conn, webhooks::WEBHOOK, Some(&id), 10))
            .await
            .unwrap();
        assert_eq!(entries.len(), 3);
        for entry in &entries {
            assert_eq!(
                entry.status,
                latchkey::events::outbox::OutboxStatus::Pending
            );
            assert_eq!(entry.attempts, 1);
            assert_eq!(
                entry.last_error.as_deref(),
                Some("the receiver could not be reached")
            );
        }
        (webhook.id, secret.expose().to_owned())
    };

    // The second instance over the same database; the receiver comes up; the workers start.
    let second = build_instance(&database_url, &kek, dir.path()).await;
    let state = second.state();
    let receiver = Receiver::start(port);
    receiver.set_secret(&secret);
    receiver.up();
    tokio::spawn(second.run_until_stopped());

    let received = eventually(15, "every event queued before the restart", || async {
        let received = receiver.received();
        (received.len() >= 3).then_some(received)
    })
    .await;
    let events: HashSet<String> = received.iter().map(|r| r.event.clone()).collect();
    assert_eq!(
        events,
        HashSet::from(["user.created", "user.role_changed", "client.deleted"].map(String::from))
    );
    assert!(
        received
            .iter()
            .all(|r| r.body["data"]["before"] == "restart")
    );
    assert_eq!(receiver.bad_signatures(), 0);
    let entries = eventually(5, "the deliveries recorded", || async {
        let id = id.clone();
        let entries = state
            .store
            .run(move |conn| latchkey::events::outbox::list(conn, webhooks::WEBHOOK, Some(&id), 10))
            .await
            .unwrap();
        entries
            .iter()
            .all(|e| e.status == latchkey::events::outbox::OutboxStatus::Delivered)
            .then_some(entries)
    })
    .await;
    assert!(entries.iter().all(|e| e.attempts == 2), "{entries:?}");
}
