//! Tokens after issue: refresh rotation and reuse detection, revocation and introspection,
//! client credentials, private_key_jwt, and UserInfo.

use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

use crate::flows::{Browser, jwt_payload};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "password-for-tokens-1";

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let app = spawn_app_with(Box::new(|s| s.refresh_reuse_grace_secs = 0)).await;
    app.create_user("una", PASSWORD).await;
    let client = app.web_client("Rotation", |_| {}).await;
    let first = app
        .tokens_for(&client, "una", PASSWORD, "openid offline_access")
        .await;
    let old = first.refresh_token.clone().unwrap();
    let response = app.refresh(&client, &old).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    let new_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    let new_access = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, old);
    assert_eq!(second["token_type"], "Bearer");
    // The old one again: the whole family goes, including tokens issued after it.
    assert_eq!(
        error_of(app.refresh(&client, &old).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error_of(app.refresh(&client, &new_refresh).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(app.userinfo(&new_access).await.0, 401);
    assert_eq!(app.introspect(&client, &new_access).await["active"], false);
    assert_eq!(app.introspect(&client, &new_refresh).await["active"], false);
}

#[tokio::test]
async fn a_concurrent_retry_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    app.create_user("vera", PASSWORD).await;
    let client = app.web_client("Grace", |_| {}).await;
    let tokens = app.tokens_for(&client, "vera", PASSWORD, "openid").await;
    let old = tokens.refresh_token.unwrap();
    let (a, b) = tokio::join!(app.refresh(&client, &old), app.refresh(&client, &old));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "one successor, never two families"
    );
    assert!(a["refresh_token"].is_string());
    let grants = app.count("grants").await;
    assert_eq!(grants, 1);
    // The successor still works.
    let next = app
        .refresh(&client, a["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_never_widen_it_and_is_bound_to_its_client() {
    let app = spawn_app().await;
    app.create_user("walt", PASSWORD).await;
    let client = app.web_client("Narrow", |_| {}).await;
    let other = app.web_client("Other", |_| {}).await;
    let tokens = app
        .tokens_for(&client, "walt", PASSWORD, "openid email")
        .await;
    let refresh = tokens.refresh_token.unwrap();
    let wider = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "openid email phone"),
            ],
        )
        .await;
    assert_eq!(error_of(wider).await, (400, "invalid_scope".into()));
    assert_eq!(
        error_of(app.refresh(&other, &refresh).await).await,
        (400, "invalid_grant".into())
    );
    let narrower = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(narrower.status(), 200);
    let body: Value = narrower.json().await.unwrap();
    assert_eq!(body["scope"], "openid");
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["scope"],
        "openid"
    );
}

#[tokio::test]
async fn revocation_is_visible_at_once_on_introspection_and_userinfo() {
    let app = spawn_app().await;
    app.create_user("xena", PASSWORD).await;
    let client = app.web_client("Revoke", |_| {}).await;
    let other = app.web_client("Resource server", |_| {}).await;
    let tokens = app
        .tokens_for(&client, "xena", PASSWORD, "openid profile")
        .await;
    let active = app.introspect(&other, &tokens.access_token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], client.client_id.as_str());
    assert_eq!(active["username"], "xena");
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["iss"], app.issuer.as_str());
    assert!(active["exp"].as_i64().unwrap() > active["iat"].as_i64().unwrap());
    assert_eq!(active["scope"], "openid profile");
    // Revoking the access token by another client does nothing.
    let response = app
        .client_post(&other, "/oauth/revoke", &[("token", &tokens.access_token)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.introspect(&other, &tokens.access_token).await["active"],
        true
    );
    // Its own client revokes it.
    let response = app
        .client_post(
            &client,
            "/oauth/revoke",
            &[
                ("token", &tokens.access_token),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.introspect(&other, &tokens.access_token).await["active"],
        false
    );
    assert_eq!(app.userinfo(&tokens.access_token).await.0, 401);
    // The refresh token still works until it is revoked too; then its family is gone.
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(app.introspect(&client, &refresh).await["active"], true);
    let response = app
        .client_post(&client, "/api/v1/oauth/revoke", &[("token", &refresh)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&client, &refresh).await["active"], false);
    assert_eq!(
        error_of(app.refresh(&client, &refresh).await).await,
        (400, "invalid_grant".into())
    );
    // Unknown tokens and hints.
    let response = app
        .client_post(&client, "/oauth/revoke", &[("token", "no-such-token")])
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .client_post(
            &client,
            "/oauth/revoke",
            &[("token", "x"), ("token_type_hint", "id_token")],
        )
        .await;
    assert_eq!(
        error_of(response).await,
        (400, "unsupported_token_type".into())
    );
    assert_eq!(
        app.introspect(&client, "garbage").await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn a_token_verified_while_valid_is_refused_once_it_expires() {
    // Three-second access tokens (valid for at least two, as `exp` counts from the whole second
    // of issue); the server remembers a verified signature by the token's text, and must still
    // check the expiry on every presentation.
    let app = spawn_app_with(Box::new(|s| s.lifetimes.access_token = 3)).await;
    app.create_user("yuri", PASSWORD).await;
    let client = app.web_client("Short-lived", |_| {}).await;
    let tokens = app
        .tokens_for(&client, "yuri", PASSWORD, "openid profile")
        .await;
    assert_eq!(app.userinfo(&tokens.access_token).await.0, 200);
    assert_eq!(
        app.introspect(&client, &tokens.access_token).await["active"],
        true
    );

    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    let (status, _, challenge) = app.userinfo(&tokens.access_token).await;
    assert_eq!(status, 401);
    let challenge = challenge.unwrap_or_default();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(
        app.introspect(&client, &tokens.access_token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn introspection_and_revocation_require_client_authentication() {
    let app = spawn_app().await;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let response = app
            .client
            .post(app.url(path))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(response).await,
            (401, "invalid_client".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn client_credentials_issue_a_token_for_the_client_itself() {
    let app = spawn_app().await;
    let client = app
        .web_client("Service", |r| {
            r.grant_types = vec!["client_credentials".into()];
            r.redirect_uris.clear();
            r.scope = Some("openid users:read reports:read".into());
        })
        .await;
    let response = app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    assert_eq!(
        body["scope"], "users:read reports:read",
        "person scopes are left out"
    );
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["permissions"], json!(["users:read", "reports:read"]));
    let introspected = app
        .introspect(&client, body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], client.client_id.as_str());
    // userinfo is for people.
    let (status, _, challenge) = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().contains("insufficient_scope"));
    let wider = app
        .token_request(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "users:delete"),
            ],
        )
        .await;
    assert_eq!(error_of(wider).await, (400, "invalid_scope".into()));
}

#[tokio::test]
async fn access_tokens_follow_rfc_9068_with_roles_and_scope_cut_permissions() {
    let app = spawn_app().await;
    app.create_user("yuri", PASSWORD).await;
    let client = app
        .web_client("Api", |r| {
            r.scope = Some("openid profile profile:read users:read".into())
        })
        .await;
    let tokens = app
        .tokens_for(&client, "yuri", PASSWORD, "openid profile:read users:read")
        .await;
    let header: Value = {
        use base64::Engine;
        let h = tokens.access_token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims = jwt_payload(&tokens.access_token);
    for member in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(claims.get(member).is_some(), "{member} missing");
    }
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(
        claims["permissions"],
        json!(["profile:read"]),
        "users:read is not held by the user"
    );
}

/// A private key of the test's client, as a JWK Set with one public key.
fn client_key(kid: &str) -> (josekit::jws::alg::rsassa::RsassaJwsSigner, Value) {
    let pair = RS256.generate_key_pair(2048).unwrap();
    let mut public = pair.to_jwk_public_key();
    public.set_key_id(kid);
    let mut signer = RS256.signer_from_der(pair.to_der_private_key()).unwrap();
    signer.set_key_id(kid);
    let jwks: Value = serde_json::from_str(&format!("{{\"keys\":[{}]}}", public)).unwrap();
    (signer, jwks)
}

fn assertion(
    signer: &josekit::jws::alg::rsassa::RsassaJwsSigner,
    client_id: &str,
    audience: &str,
    jti: &str,
    exp_in: i64,
) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(kid) = josekit::jws::JwsSigner::key_id(signer) {
        header.set_key_id(kid);
    }
    let mut payload = JwtPayload::new();
    payload.set_issuer(client_id);
    payload.set_subject(client_id);
    payload.set_audience(vec![audience]);
    payload.set_jwt_id(jti);
    let now = std::time::SystemTime::now();
    payload.set_issued_at(&now);
    payload.set_expires_at(&(now + std::time::Duration::from_secs(exp_in.max(0) as u64)));
    if exp_in < 0 {
        payload.set_expires_at(&(now - std::time::Duration::from_secs((-exp_in) as u64)));
    }
    jwt::encode_with_signer(&payload, &header, signer).unwrap()
}

async fn cc_with_assertion(app: &TestApp, client_id: &str, assertion: &str) -> reqwest::Response {
    post_with_assertion(
        app,
        client_id,
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

#[tokio::test]
async fn private_key_jwt_authenticates_once_per_assertion() {
    let app = spawn_app().await;
    let (signer, jwks) = client_key("k1");
    let client = app
        .web_client("Signed", |r| {
            r.auth_method = Some("private_key_jwt".into());
            r.jwks = Some(jwks);
            r.grant_types = vec!["client_credentials".into()];
            r.redirect_uris.clear();
            r.scope = Some("reports:read".into());
        })
        .await;
    assert!(client.client_secret.is_none());
    let token_endpoint = app.url("/oauth/token");
    let good = assertion(&signer, &client.client_id, &token_endpoint, "jti-1", 60);
    let response = cc_with_assertion(&app, &client.client_id, &good).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    // Replay of the same jti.
    assert_eq!(
        error_of(cc_with_assertion(&app, &client.client_id, &good).await)
            .await
            .1,
        "invalid_client"
    );
    // The issuer is an accepted audience too (RFC 7523 §3).
    let issuer_aud = assertion(&signer, &client.client_id, &app.issuer, "jti-2", 60);
    assert_eq!(
        cc_with_assertion(&app, &client.client_id, &issuer_aud)
            .await
            .status(),
        200
    );
    // Without client_id, the assertion's iss names the client.
    let no_id = assertion(&signer, &client.client_id, &token_endpoint, "jti-3", 60);
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", no_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Refusals.
    for bad in [
        assertion(
            &signer,
            &client.client_id,
            "https://elsewhere.example/token",
            "jti-4",
            60,
        ),
        assertion(&signer, &client.client_id, &token_endpoint, "jti-5", -120),
        assertion(&signer, &client.client_id, &token_endpoint, "jti-6", 7200),
        assertion(
            &client_key("k1").0,
            &client.client_id,
            &token_endpoint,
            "jti-7",
            60,
        ),
        assertion(&signer, "someone-else", &token_endpoint, "jti-8", 60),
    ] {
        assert_eq!(
            error_of(cc_with_assertion(&app, &client.client_id, &bad).await)
                .await
                .1,
            "invalid_client"
        );
    }
    let wrong_type = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_assertion_type", "saml"),
            ("client_assertion", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong_type).await.1, "invalid_request");
}

/// Serves a JWK Set that the test can change, like a client rotating its keys.
async fn serve_jwks(jwks: std::sync::Arc<std::sync::Mutex<Value>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let jwks = jwks.clone();
        actix_web::App::new().route(
            "/jwks",
            actix_web::web::get().to(move || {
                let body = jwks.lock().unwrap().clone();
                async move { actix_web::HttpResponse::Ok().json(body) }
            }),
        )
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/jwks")
}

#[tokio::test]
async fn private_key_jwt_with_a_jwks_uri_follows_the_clients_key_rotation() {
    let app = spawn_app().await;
    let (old_signer, old_jwks) = client_key("old");
    let published = std::sync::Arc::new(std::sync::Mutex::new(old_jwks));
    let jwks_uri = serve_jwks(published.clone()).await;
    let client = app
        .web_client("Rotating", |r| {
            r.auth_method = Some("private_key_jwt".into());
            r.jwks_uri = Some(jwks_uri);
            r.grant_types = vec!["client_credentials".into()];
            r.redirect_uris.clear();
            r.scope = Some("reports:read".into());
        })
        .await;
    let endpoint = app.url("/oauth/token");
    let first = assertion(&old_signer, &client.client_id, &endpoint, "r-1", 60);
    assert_eq!(
        cc_with_assertion(&app, &client.client_id, &first)
            .await
            .status(),
        200
    );
    // The client publishes a new key and signs with it: an unknown kid makes Latchkey re-fetch.
    let (new_signer, new_jwks) = client_key("new");
    *published.lock().unwrap() = new_jwks;
    // The cache refuses to re-fetch more than every 10 s; wait until a re-fetch is allowed.
    let rotated = crate::helpers::eventually(15, "the new key to be fetched", || {
        let (app, signer, id, endpoint) = (
            &app,
            &new_signer,
            client.client_id.clone(),
            endpoint.clone(),
        );
        async move {
            let jti = uuid::Uuid::new_v4().to_string();
            let signed = assertion(signer, &id, &endpoint, &jti, 60);
            (cc_with_assertion(app, &id, &signed).await.status() == 200).then_some(())
        }
    })
    .await;
    let () = rotated;
}

#[tokio::test]
async fn userinfo_errors_follow_rfc_6750() {
    let app = spawn_app().await;
    app.create_user("zoe", PASSWORD).await;
    let client = app.web_client("Userinfo", |_| {}).await;
    let tokens = app
        .tokens_for(&client, "zoe", PASSWORD, "openid email")
        .await;
    // No token at all: 401 with a bare challenge.
    let response = app.get("/oauth/userinfo").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"latchkey\""
    );
    // A malformed token.
    let (status, _, challenge) = app.userinfo("not-a-token").await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    // POST with the token in the form body, and with it in both places.
    let response = app
        .client
        .post(app.url("/oauth/userinfo"))
        .form(&[("access_token", tokens.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "zoe@example.com");
    let response = app
        .client
        .post(app.url("/oauth/userinfo"))
        .bearer_auth(&tokens.access_token)
        .form(&[("access_token", tokens.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // POST with the header.
    let response = app
        .client
        .post(app.url("/oauth/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn signed_userinfo_and_the_claims_parameter() {
    let app = spawn_app().await;
    let user_id = app.create_user("amy", PASSWORD).await;
    app.state
        .store
        .run(move |conn| {
            use diesel::prelude::*;
            use latchkey::store::schema::users;
            diesel::update(users::table.find(&user_id))
                .set((users::first_name.eq("Amy"), users::last_name.eq("Pond")))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let client = app
        .web_client("Signed userinfo", |r| {
            r.userinfo_signed_response_alg = Some("RS256".into())
        })
        .await;
    let claims = r#"{"userinfo":{"name":{"essential":true}},"id_token":{"email":null}}"#;
    let browser = Browser::new(&app);
    let code = app
        .code_for(
            &browser,
            &client,
            "amy",
            PASSWORD,
            &[("scope", "openid"), ("claims", claims)],
        )
        .await;
    let tokens = app.exchange(&client, &code).await;
    let id_token = jwt_payload(&tokens.id_token.unwrap());
    assert_eq!(
        id_token["email"], "amy@example.com",
        "asked for in the ID token"
    );
    assert!(id_token.get("name").is_none());
    let response = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/jwt");
    let jwt = response.text().await.unwrap();
    // Verify with the published key.
    let jwks: Value = app.get_json("/oauth/jwks", 200).await;
    let header = josekit::jwt::decode_header(&jwt).unwrap();
    let kid = header.claim("kid").unwrap().as_str().unwrap().to_owned();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let verifier = RS256
        .verifier_from_jwk(&Jwk::from_bytes(key.to_string()).unwrap())
        .unwrap();
    let (payload, _) = jwt::decode_with_verifier(&jwt, &verifier).unwrap();
    assert_eq!(
        payload.claim("name").unwrap(),
        "Amy Pond",
        "asked for in userinfo"
    );
    assert_eq!(payload.issuer(), Some(app.issuer.as_str()));
    assert_eq!(payload.claim("aud").unwrap(), client.client_id.as_str());
    assert!(payload.claim("nonce").is_none());
    assert!(
        payload.claim("email").is_none(),
        "email was not in the scope"
    );
}

#[tokio::test]
async fn housekeeping_forgets_sealed_successors_and_expired_codes() {
    use diesel::prelude::*;
    use latchkey::store::schema::{authorization_codes, refresh_tokens};
    let app = spawn_app().await;
    app.create_user("ben", PASSWORD).await;
    let client = app.web_client("Sweep", |_| {}).await;
    let tokens = app.tokens_for(&client, "ben", PASSWORD, "openid").await;
    assert_eq!(
        app.refresh(&client, &tokens.refresh_token.unwrap())
            .await
            .status(),
        200
    );
    let sealed = |app: &TestApp| {
        let store = app.state.store.clone();
        async move {
            store
                .run(|conn| {
                    Ok(refresh_tokens::table
                        .filter(refresh_tokens::successor_sealed.is_not_null())
                        .count()
                        .get_result::<i64>(conn)?)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(sealed(&app).await, 1, "kept for the grace window");
    latchkey::maintenance::sweep(&app.state).await.unwrap();
    assert_eq!(sealed(&app).await, 1, "still inside the window");
    app.state
        .store
        .run(|conn| {
            diesel::update(refresh_tokens::table)
                .set(refresh_tokens::used_at.eq(0i64))
                .filter(refresh_tokens::used_at.is_not_null())
                .execute(conn)?;
            diesel::update(authorization_codes::table)
                .set(authorization_codes::expires_at.eq(0i64))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(latchkey::maintenance::sweep(&app.state).await.unwrap() >= 2);
    assert_eq!(sealed(&app).await, 0);
    assert_eq!(app.count("authorization_codes").await, 0);
}

/// The token endpoint's form with a client assertion.
async fn post_with_assertion(
    app: &TestApp,
    client_id: &str,
    assertion: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = form.to_vec();
    all.extend_from_slice(&[
        ("client_id", client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ]);
    app.client
        .post(app.url("/oauth/token"))
        .form(&all)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refresh_refused_before_rotation_leaves_the_token_usable() {
    let app = spawn_app().await;
    app.create_user("rhea", PASSWORD).await;
    let client = app.web_client("Careful", |_| {}).await;
    let tokens = app.tokens_for(&client, "rhea", PASSWORD, "openid").await;
    let refresh = tokens.refresh_token.unwrap();
    // The right token with the wrong secret: the client is refused, and the token not used.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.client_id, Some("not-the-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (401, "invalid_client".into()));
    // An authenticated client that forgets the token is told so.
    assert_eq!(
        error_of(
            app.token_request(&client, &[("grant_type", "refresh_token")])
                .await
        )
        .await,
        (400, "invalid_request".into())
    );
    // Neither refusal used the token: it rotates, and its successor works too.
    let first = app.refresh(&client, &refresh).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let successor = first["refresh_token"].as_str().unwrap();
    assert_ne!(successor, refresh);
    assert_eq!(app.refresh(&client, successor).await.status(), 200);
}

#[tokio::test]
async fn a_private_key_jwt_client_refreshes_with_an_assertion_and_a_refused_one_uses_nothing() {
    let app = spawn_app().await;
    app.create_user("sven", PASSWORD).await;
    let (signer, jwks) = client_key("rk1");
    let client = app
        .web_client("Signed refresh", |r| {
            r.auth_method = Some("private_key_jwt".into());
            r.jwks = Some(jwks);
        })
        .await;
    let token_endpoint = app.url("/oauth/token");
    let browser = Browser::new(&app);
    let code = app
        .code_for(&browser, &client, "sven", PASSWORD, &[("scope", "openid")])
        .await;
    let signed = |jti: &str| assertion(&signer, &client.client_id, &token_endpoint, jti, 60);
    let response = post_with_assertion(
        &app,
        &client.client_id,
        &signed("code-1"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example/callback"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let rotate = |token: String, jti: &'static str| {
        let assertion = signed(jti);
        let app = &app;
        let client_id = client.client_id.clone();
        async move {
            post_with_assertion(
                app,
                &client_id,
                &assertion,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let response = rotate(refresh.clone(), "refresh-1").await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    let successor = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(successor, refresh);
    assert_eq!(
        jwt_payload(body["id_token"].as_str().unwrap())["aud"],
        json!([client.client_id])
    );
    // A replayed assertion is refused before the token is looked at ...
    assert_eq!(
        error_of(rotate(successor.clone(), "refresh-1").await).await,
        (401, "invalid_client".into())
    );
    // ... so the successor is still unused, and rotates with a fresh assertion.
    let response = rotate(successor.clone(), "refresh-2").await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    assert_ne!(body["refresh_token"].as_str().unwrap(), successor);
}
