//! Outbound requests as an SSRF tool (F10): webhook URLs, client `jwks_uri` and
//! `backchannel_logout_uri` may not name loopback, link-local or private addresses unless the
//! configuration allows it, and the check is made again on every address a name resolves to
//! when a delivery connects. Every address here is loopback: refused targets are loopback
//! receivers that must receive nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use latchkey::events::audit::Actor;
use latchkey::events::webhooks::{self, EventList, NewWebhook, WebhookUrl};
use serde_json::json;

use crate::admin_support::{Api, admin_token};
use crate::helpers::{fresh_database_url, spawn_app_with, test_settings};

/// A loopback receiver that counts what reaches it.
fn counting_receiver() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = hits.clone();
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { actix_web::HttpResponse::Unauthorized().finish() }
        }))
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    tokio::spawn(server);
    (port, hits)
}

#[tokio::test]
async fn f10_private_targets_are_refused_at_registration_by_default() {
    let (port, hits) = counting_receiver();
    let app = spawn_app_with(Box::new(|s| s.outbound.allow_private_networks = false)).await;
    let admin = Api::new(&app, &admin_token(&app).await);
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://app.localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://127.1.2.3:{port}/hook"),
    ] {
        let (status, body) = admin
            .post("/webhooks", json!({"url": url, "events": ["user.created"]}))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["details"][0]["field"], "url", "{body}");
    }
    assert_eq!(app.count("webhooks").await, 0);
    for (field, value) in [
        ("jwks_uri", format!("http://127.0.0.1:{port}/jwks")),
        (
            "backchannel_logout_uri",
            format!("http://localhost:{port}/logout"),
        ),
    ] {
        let mut body = json!({
            "client_name": "Internal",
            "redirect_uris": ["https://rp.example/cb"],
        });
        body[field] = json!(value);
        if field == "jwks_uri" {
            body["token_endpoint_auth_method"] = json!("private_key_jwt");
        }
        let (status, answer) = admin.post("/admin/clients", body).await;
        assert_eq!(status, 422, "{field}: {answer}");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent anywhere");
}

#[tokio::test]
async fn f10_a_delivery_connects_to_no_private_address_even_if_registered_before() {
    let (port, hits) = counting_receiver();
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path());
    let kek = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let build = |allow: bool| {
        let mut settings = test_settings(&database_url, &kek);
        settings.mail.directory = dir.path().join("mail");
        settings.outbound.allow_private_networks = allow;
        latchkey::startup::Application::build(settings)
    };
    // Registered while allowed (an on-premise receiver, say), by name and by address.
    {
        let allowed = build(true).await.expect("the server builds");
        let state = allowed.state();
        for url in [
            format!("http://localhost:{port}/by-name"),
            format!("http://127.0.0.1:{port}/by-address"),
        ] {
            let crypto = state.crypto.clone();
            state
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
        }
    }
    // Then the configuration forbids private targets: every delivery is refused when it
    // would connect, and says why.
    let refusing = build(false).await.expect("the server builds");
    let state = refusing.state();
    let crypto = state.crypto.clone();
    let queued = state
        .store
        .run(move |conn| webhooks::emit(conn, &crypto, "user.created", json!({"user": {}})))
        .await
        .unwrap();
    assert_eq!(queued, 2);
    latchkey::events::outbox::deliver_due(&state).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the receiver"
    );
    let errors: Vec<Option<String>> = {
        use diesel::prelude::*;
        use latchkey::store::schema::outbox;
        state
            .store
            .run(|conn| Ok(outbox::table.select(outbox::last_error).load(conn)?))
            .await
            .unwrap()
    };
    assert_eq!(errors.len(), 2);
    for error in errors {
        let error = error.unwrap_or_default();
        assert!(error.contains("private"), "{error}");
        assert!(!error.contains("401"), "no remote status leaks: {error}");
    }
}
