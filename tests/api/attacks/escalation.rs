//! Escalation: a client registered with permissions its registrant lacks (F3), introspection
//! by a public client (F11), client-credentials tokens that outlive the client's narrowing
//! (F14), and the internals of `/health/detailed` (I5).

use serde_json::{Value, json};

use crate::admin_support::{Api, admin_token, client_credentials, create_role, user_with_roles};
use crate::flows::{Browser, jwt_payload};
use crate::helpers::{spawn_app, spawn_app_with};

fn machine_client(scope: &str) -> Value {
    json!({
        "client_name": "machine",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": scope,
    })
}

#[tokio::test]
async fn f3_nobody_registers_a_client_with_permissions_they_do_not_hold() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(
        &admin,
        "client-manager",
        &["clients:write", "profile:read", "profile:write"],
    )
    .await;
    let (_, token) = user_with_roles(&app, "carl", &["client-manager"]).await;
    let carl = Api::new(&app, &token);
    let clients_before = app.count("clients").await;

    let (status, body) = carl
        .post("/admin/clients", machine_client("roles:write users:write"))
        .await;
    assert_eq!(status, 403, "{body}");
    // The quiet variant: a skip_consent client that an administrator's single click would
    // hand `users:write`.
    let (status, body) = carl
        .post(
            "/admin/clients",
            json!({
                "client_name": "harvester",
                "redirect_uris": ["https://rp.example/callback"],
                "skip_consent": true,
                "scope": "openid users:write",
            }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.count("clients").await, clients_before, "nothing stored");

    // Nor may an existing client be widened, or its secret taken, by someone who lacks what it
    // can mint.
    let (status, existing) = admin
        .post("/admin/clients", machine_client("users:read"))
        .await;
    assert_eq!(status, 201, "{existing}");
    let id = existing["client_id"].as_str().unwrap();
    let (status, body) = carl
        .patch(
            &format!("/admin/clients/{id}"),
            json!({"scope": "users:read roles:write"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = carl
        .post(&format!("/admin/clients/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (_, view) = admin.get(&format!("/admin/clients/{id}")).await;
    assert_eq!(view["scope"], "users:read");
    let (status, _) =
        client_credentials(&app, id, existing["client_secret"].as_str().unwrap()).await;
    assert_eq!(
        status, 200,
        "the old secret still works: nothing was rotated"
    );

    // What the caller holds, it may hand on.
    let (status, body) = carl
        .post("/admin/clients", machine_client("profile:read"))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_demotion_reaches_webhooks_audit_and_stats_at_once() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(
        &admin,
        "operator",
        &[
            "webhooks:read",
            "webhooks:write",
            "audit:read",
            "stats:read",
        ],
    )
    .await;
    let (id, token) = user_with_roles(&app, "otto", &["operator", "user"]).await;
    let otto = Api::new(&app, &token);
    let (status, body) = otto.get("/audit/logs").await;
    assert_eq!(status, 200, "{body}");
    let webhooks_before = app.count("webhooks").await;

    // The role is taken away; the token issued before it still names its permissions.
    let (status, body) = admin
        .patch(&format!("/users/{id}"), json!({"roles": ["user"]}))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = otto
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        app.count("webhooks").await,
        webhooks_before,
        "nothing stored"
    );
    for path in [
        "/webhooks",
        "/audit/logs",
        "/audit/logs/export",
        "/stats/overview",
        "/stats/users",
        "/analytics/users",
    ] {
        let (status, body) = otto.get(path).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
}

#[tokio::test]
async fn f11_a_public_client_cannot_introspect() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let response = app
        .client
        .post(app.url("/oauth/introspect"))
        .form(&[("token", token.as_str()), ("client_id", "latchkey")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none());
}

#[tokio::test]
async fn f14_a_narrowed_client_renews_its_users_grants_narrowed() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let client = app
        .web_client("Reader", |c| {
            c.scope = Some("openid offline_access users:read stats:read".into())
        })
        .await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(
            &browser,
            &client,
            "admin",
            crate::helpers::ADMIN_PASSWORD,
            &[("scope", "openid offline_access users:read stats:read")],
        )
        .await;
    let tokens = app.exchange(&client, &code).await;
    assert_eq!(
        Api::new(&app, &tokens.access_token).get("/users").await.0,
        200
    );
    // A code issued before the narrowing, and exchanged after it.
    let early_code = app
        .code_for(
            &browser,
            &client,
            "admin",
            crate::helpers::ADMIN_PASSWORD,
            &[("scope", "openid offline_access users:read stats:read")],
        )
        .await;

    let (status, body) = admin
        .patch(
            &format!("/admin/clients/{}", client.client_id),
            json!({"scope": "openid offline_access stats:read"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let late = app.exchange(&client, &early_code).await;
    assert_eq!(
        jwt_payload(&late.access_token)["permissions"],
        json!(["stats:read"]),
        "a code from before the narrowing mints narrowed"
    );
    let response = app
        .refresh(&client, tokens.refresh_token.as_deref().unwrap())
        .await;
    assert_eq!(response.status(), 200);
    let renewed: Value = response.json().await.unwrap();
    assert_eq!(
        renewed["scope"], "openid offline_access stats:read",
        "{renewed}"
    );
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(
        jwt_payload(access)["permissions"],
        json!(["stats:read"]),
        "{renewed}"
    );
    let api = Api::new(&app, access);
    assert_eq!(api.get("/users").await.0, 403);
    assert_eq!(api.get("/stats/overview").await.0, 200);
}

#[tokio::test]
async fn f14_client_tokens_stop_when_the_client_is_narrowed_rotated_or_loses_the_grant() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (_, client) = admin
        .post("/admin/clients", machine_client("users:read stats:read"))
        .await;
    let id = client["client_id"].as_str().unwrap().to_owned();
    let mut secret = client["client_secret"].as_str().unwrap().to_owned();
    let reads_users = |token: String| {
        let app = &app;
        async move { Api::new(app, &token).get("/users").await.0 }
    };

    // Narrowed scope.
    let (_, issued) = client_credentials(&app, &id, &secret).await;
    let token = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(reads_users(token.clone()).await, 200);
    let (status, body) = admin
        .patch(
            &format!("/admin/clients/{id}"),
            json!({"scope": "stats:read"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(reads_users(token.clone()).await, 401, "narrowed at once");
    assert_eq!(Api::new(&app, &token).get("/stats/overview").await.0, 401);

    // Rotated secret.
    let (_, issued) = client_credentials(&app, &id, &secret).await;
    let token = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(Api::new(&app, &token).get("/stats/overview").await.0, 200);
    let (status, rotated) = admin
        .post(&format!("/admin/clients/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(Api::new(&app, &token).get("/stats/overview").await.0, 401);

    // Grant type removed.
    let (_, issued) = client_credentials(&app, &id, &secret).await;
    let token = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(Api::new(&app, &token).get("/stats/overview").await.0, 200);
    let (status, body) = admin
        .patch(
            &format!("/admin/clients/{id}"),
            json!({"grant_types": ["authorization_code"], "redirect_uris": ["https://rp.example/callback"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(Api::new(&app, &token).get("/stats/overview").await.0, 401);
    let introspected = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(introspected, json!({"active": false}));
}

#[tokio::test]
async fn i5_health_details_are_for_system_readers_and_the_metrics_listener() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = spawn_app_with(Box::new(move |s| {
        s.metrics.bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    }))
    .await;
    let anonymous: Value = app.get_json("/health/detailed", 200).await;
    assert_eq!(anonymous["status"], "healthy");
    let text = anonymous.to_string();
    for internal in ["connection_pool", "response_time_ms", "published", "uptime"] {
        assert!(
            !text.contains(internal),
            "{internal} shown to anyone: {text}"
        );
    }
    let admin = Api::new(&app, &admin_token(&app).await);
    let detailed = app.get_json_as("/health/detailed", &admin.token).await;
    assert!(
        detailed["checks"]["database"]["connection_pool"].is_object(),
        "{detailed}"
    );
    create_role(&admin, "operator", &["system:read"]).await;
    let (_, operator) = user_with_roles(&app, "opal", &["operator"]).await;
    let (_, plain) = user_with_roles(&app, "pete", &["user"]).await;
    for (token, shown) in [(operator, true), (plain, false)] {
        let body = app.get_json_as("/health/detailed", &token).await;
        assert_eq!(
            body.to_string().contains("connection_pool"),
            shown,
            "{body}"
        );
    }
    let internal = app
        .client
        .get(format!("http://127.0.0.1:{port}/health/detailed"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        internal["checks"]["database"]["connection_pool"].is_object(),
        "{internal}"
    );
    assert!(internal["checks"]["workers"].is_object(), "{internal}");
}
