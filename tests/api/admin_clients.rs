//! OAuth clients and API keys through the admin API: secrets shown once and stored hashed,
//! rotation and deletion taking effect at once, the built-in client protected, and API keys
//! exchanged for tokens that carry no more than the key's scopes.

use serde_json::{Value, json};

use crate::admin_support::{Api, admin_token, client_credentials, user_with_roles};
use crate::helpers::{TestApp, spawn_app};

fn service_client() -> Value {
    json!({
        "client_name": "Billing worker",
        "grant_types": ["client_credentials"],
        "scope": "openid",
    })
}

async fn stored_audit(
    app: &TestApp,
    action: &'static str,
) -> Vec<latchkey::store::audit::AuditRow> {
    app.state
        .store
        .run(move |conn| {
            latchkey::store::audit::page(
                conn,
                &latchkey::store::audit::AuditFilter {
                    action: Some(action.into()),
                    ..Default::default()
                },
                0,
                100,
            )
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_secret_is_shown_once_stored_hashed_and_rotation_stops_the_old_one_at_once() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    let (status, created) = admin.post("/admin/clients", service_client()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("lks_"), "{secret}");
    assert_eq!(created["built_in"], false);

    let (_, read) = admin.get(&format!("/admin/clients/{id}")).await;
    assert!(read.get("client_secret").is_none(), "{read}");
    let (_, list) = admin.get("/admin/clients").await;
    assert!(!list.to_string().contains(&secret));
    assert!(
        list["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == "latchkey" && c["built_in"] == true)
    );
    let stored_id = id.clone();
    let row = app
        .state
        .store
        .run(move |conn| latchkey::store::clients::find(conn, &stored_id))
        .await
        .unwrap();
    assert_ne!(row.secret_hash.as_deref(), Some(secret.as_str()));
    let audit = stored_audit(&app, "client_created").await;
    assert_eq!(audit.len(), 1);
    assert!(!format!("{audit:?}").contains(&secret));

    let (status, token) = client_credentials(&app, &id, &secret).await;
    assert_eq!(status, 200, "{token}");

    let (status, rotated) = admin
        .post(&format!("/admin/clients/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (status, refused) = client_credentials(&app, &id, &secret).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["error"], "invalid_client");
    assert_eq!(client_credentials(&app, &id, new_secret).await.0, 200);
    assert_eq!(stored_audit(&app, "client_secret_rotated").await.len(), 1);
}

#[tokio::test]
async fn client_metadata_is_validated_field_by_field() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let cases = [
        (
            json!({"redirect_uris": ["https://a.example/cb"]}),
            "client_name",
        ),
        (
            json!({"client_name": "x", "redirect_uris": ["not a url"]}),
            "redirect_uris",
        ),
        (
            json!({"client_name": "x", "grant_types": ["authorization_code"]}),
            "redirect_uris",
        ),
        (
            json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "colour": "red"}),
            "colour",
        ),
        (
            json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "response_types",
        ),
        (
            json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "scope": "openid *"}),
            "scope",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = admin.post("/admin/clients", body.clone()).await;
        assert_eq!(status, 422, "{body} → {error}");
        assert_eq!(error["error"], "validation_error");
        assert!(
            error["details"].to_string().contains(field),
            "{body}: details should name {field}: {error}"
        );
    }
    let (_, list) = admin.get("/admin/clients").await;
    assert_eq!(list["pagination"]["total"], 1, "only the built-in client");
}

#[tokio::test]
async fn patch_merges_put_replaces_and_a_public_client_loses_its_secret() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (_, created) = admin
        .post(
            "/admin/clients",
            json!({"client_name": "Web", "redirect_uris": ["https://a.example/cb"],
                   "post_logout_redirect_uris": ["https://a.example/bye"]}),
        )
        .await;
    let id = created["client_id"].as_str().unwrap();
    let path = format!("/admin/clients/{id}");

    let (status, patched) = admin
        .patch(
            &path,
            json!({"redirect_uris": ["https://b.example/cb"], "skip_consent": true}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["redirect_uris"], json!(["https://b.example/cb"]));
    assert_eq!(
        patched["post_logout_redirect_uris"],
        json!(["https://a.example/bye"])
    );
    assert_eq!(patched["skip_consent"], true);
    assert!(
        patched.get("client_secret").is_none(),
        "the secret is kept, not shown"
    );

    let (status, replaced) = admin
        .put(
            &path,
            json!({"client_name": "Web (SPA)", "redirect_uris": ["https://b.example/cb"],
                   "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        replaced["post_logout_redirect_uris"],
        json!([]),
        "PUT replaces"
    );
    assert_eq!(replaced["require_pkce"], true, "public clients use PKCE");
    let stored_id = id.to_owned();
    let row = app
        .state
        .store
        .run(move |conn| latchkey::store::clients::find(conn, &stored_id))
        .await
        .unwrap();
    assert!(row.secret_hash.is_none());
    let (status, _) = admin
        .post(&format!("/admin/clients/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 409, "a public client has no secret to rotate");

    let (status, error) = admin.put(&path, json!({"redirect_uris": []})).await;
    assert_eq!(status, 422, "{error}");
    let (_, after) = admin.get(&path).await;
    assert_eq!(
        after["client_name"], "Web (SPA)",
        "a refused change changes nothing"
    );
}

#[tokio::test]
async fn deleting_a_client_ends_its_tokens_and_the_built_in_client_is_protected() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (_, created) = admin.post("/admin/clients", service_client()).await;
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let (_, token) = client_credentials(&app, id, secret).await;
    let access = token["access_token"].as_str().unwrap();
    let introspect = |token: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/oauth/introspect"))
                .basic_auth(id, Some(secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(introspect(access.to_owned()).await["active"], true);

    let (status, body) = admin.delete(&format!("/admin/clients/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.get(&format!("/admin/clients/{id}")).await.0, 404);
    assert_eq!(client_credentials(&app, id, secret).await.0, 401);
    // The bearer token of the deleted client no longer opens anything.
    let (status, _) = Api::new(&app, access).get("/auth/me").await;
    assert_eq!(status, 401);

    for (method, path) in [
        ("PATCH", "/admin/clients/latchkey"),
        ("DELETE", "/admin/clients/latchkey"),
        ("POST", "/admin/clients/latchkey/rotate-secret"),
    ] {
        let (status, body) = admin
            .call(
                method.parse().unwrap(),
                path,
                Some(json!({"client_name": "x"})),
            )
            .await;
        assert_eq!(status, 409, "{method} {path}: {body}");
    }
    assert_eq!(admin.get("/admin/clients/latchkey").await.0, 200);
}

#[tokio::test]
async fn clients_and_api_keys_are_closed_to_users_and_to_anonymous_callers() {
    let app = spawn_app().await;
    let (_, token) = user_with_roles(&app, "carol", &["user"]).await;
    let user = Api::new(&app, &token);
    for (method, path) in [
        ("GET", "/admin/clients"),
        ("POST", "/admin/clients"),
        ("GET", "/admin/clients/latchkey"),
        ("GET", "/admin/api-keys"),
        ("POST", "/admin/api-keys"),
    ] {
        let body = Some(service_client());
        let (status, error) = user.call(method.parse().unwrap(), path, body.clone()).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
        assert_eq!(error["error"], "forbidden");
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&format!("/api/v1{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
        assert!(response.headers().get("www-authenticate").is_some());
    }
}

#[tokio::test]
async fn an_api_key_is_shown_once_and_exchanged_for_a_token_limited_to_its_scopes() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (status, created) = admin
        .post(
            "/admin/api-keys",
            json!({"name": "Reporting job", "scopes": ["users:read"], "expires_in_days": 30}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("lk_key_"));
    assert_eq!(created["scopes"], json!(["users:read"]));
    assert_eq!(created["status"], "active");
    let key_id = created["id"].as_str().unwrap().to_owned();
    let (_, read) = admin.get(&format!("/admin/api-keys/{key_id}")).await;
    assert!(read.get("api_key").is_none());
    assert!(key.starts_with(read["key_prefix"].as_str().unwrap()));
    let stored = key_id.clone();
    let row = app
        .state
        .store
        .run(move |conn| latchkey::store::api_keys::find(conn, &stored))
        .await
        .unwrap();
    assert_ne!(row.key_hash, key);
    assert!(!format!("{:?}", stored_audit(&app, "api_key_created").await).contains(&key));
    let (_, account) = admin
        .get(&format!("/users/{}?include=permissions", row.user_id))
        .await;
    assert_eq!(account["kind"], "service");
    assert_eq!(account["direct_permissions"], json!(["users:read"]));

    let exchange = |body: Value| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/api/v1/auth/token"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, token) =
        exchange(json!({"api_key": key, "grant_type": "client_credentials"})).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "users:read");
    let service = Api::new(&app, token["access_token"].as_str().unwrap());
    assert_eq!(service.get("/users").await.0, 200);
    let (status, _) = service
        .post("/users", json!({"email": "x@example.com"}))
        .await;
    assert_eq!(status, 403, "the key's scopes do not include users:write");

    let (status, error) = exchange(json!({"api_key": key, "grant_type": "password"})).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, error) =
        exchange(json!({"api_key": "lk_key_not-a-real-key", "grant_type": "client_credentials"}))
            .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("invalid_api_key"))
    );

    let (status, revoked) = admin.delete(&format!("/admin/api-keys/{key_id}")).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(service.get("/users").await.0, 401, "its tokens end at once");
    let (status, _) = exchange(json!({"api_key": key, "grant_type": "client_credentials"})).await;
    assert_eq!(status, 401);
    let (_, list) = admin.get("/admin/api-keys").await;
    assert_eq!(list["api_keys"][0]["status"], "revoked");
    assert_eq!(
        admin.delete(&format!("/admin/api-keys/{key_id}")).await.0,
        409
    );
}

#[tokio::test]
async fn an_expired_key_is_refused_and_nobody_mints_a_key_beyond_their_own_permissions() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (_, created) = admin
        .post(
            "/admin/api-keys",
            json!({"name": "Old", "scopes": ["users:read"]}),
        )
        .await;
    let key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    app.state
        .store
        .run(move |conn| {
            use diesel::prelude::*;
            use latchkey::store::schema::api_keys;
            diesel::update(api_keys::table.find(&id))
                .set(api_keys::expires_at.eq(Some(1_i64)))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"api_key": key, "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let (status, role) = admin
        .post(
            "/admin/roles",
            json!({"name": "key-manager", "permissions": ["api_keys:write", "users:read"]}),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    let (_, token) = user_with_roles(&app, "dave", &["key-manager"]).await;
    let manager = Api::new(&app, &token);
    let (status, error) = manager
        .post(
            "/admin/api-keys",
            json!({"name": "Sneaky", "scopes": ["users:delete"]}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    let (status, fine) = manager
        .post(
            "/admin/api-keys",
            json!({"name": "Fine", "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(status, 201, "{fine}");
    let (status, error) = admin
        .post(
            "/admin/api-keys",
            json!({"name": "Bad", "scopes": ["users:read"], "expires_in_days": 0}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["details"].to_string().contains("expires_in_days"));
}
