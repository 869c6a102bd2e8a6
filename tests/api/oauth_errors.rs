//! Bad input at the authorization and token endpoints: the right RFC error, never a 500,
//! never a redirect to an untrusted URI, and nothing stored for a refused request.

use serde_json::Value;

use crate::flows::{Browser, authorize_url, param};
use crate::helpers::{TestApp, spawn_app};

const PASSWORD: &str = "password-for-errors-1";

/// Asserts an error page: HTML, the status, no Location header.
async fn assert_error_page(app: &TestApp, url: &str, status: u16) -> String {
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), status, "{url}");
    assert!(
        response.headers().get("location").is_none(),
        "an error page never redirects: {url}"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    response.text().await.unwrap()
}

/// Asserts an error redirect to the client and returns its parameters.
async fn assert_error_redirect(app: &TestApp, url: &str, error: &str) -> url::Url {
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{url}");
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let found =
        param(&location, "error").or_else(|| crate::flows::fragment_param(&location, "error"));
    assert_eq!(found.as_deref(), Some(error), "{url} → {location}");
    location
}

#[tokio::test]
async fn untrusted_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let client = app
        .web_client("Two redirects", |r| {
            r.redirect_uris = vec![
                "https://rp.example/callback".into(),
                "https://rp.example/other".into(),
            ];
        })
        .await;
    let base = app.url("/oauth/authorize");
    let id = &client.client_id;
    let cases = [
        format!("{base}?response_type=code&scope=openid&redirect_uri=https://rp.example/callback"),
        format!(
            "{base}?client_id=unknown&response_type=code&redirect_uri=https://rp.example/callback"
        ),
        format!(
            "{base}?client_id={id}&response_type=code&redirect_uri=https://evil.example/callback"
        ),
        format!(
            "{base}?client_id={id}&response_type=code&redirect_uri=https://rp.example/callback/extra"
        ),
        format!(
            "{base}?client_id={id}&response_type=code&redirect_uri=https://rp.example/callback?foo=bar"
        ),
        format!("{base}?client_id={id}&response_type=code&scope=openid"),
        format!(
            "{base}?client_id={id}&client_id={id}&response_type=code&redirect_uri=https://rp.example/callback"
        ),
        format!(
            "{base}?client_id={id}&response_type=code&redirect_uri=https://rp.example/callback&redirect_uri=https://rp.example/other"
        ),
    ];
    for url in cases {
        let html = assert_error_page(&app, &url, 400).await;
        assert!(html.contains("Request id"), "the page shows the request id");
    }
    assert_eq!(app.count("authorization_requests").await, 0);
}

#[tokio::test]
async fn protocol_errors_are_redirected_with_state_and_iss() {
    let app = spawn_app().await;
    let client = app.web_client("Errors", |_| {}).await;
    let public = app
        .web_client("Public", |r| r.auth_method = Some("none".into()))
        .await;
    let url = |client_id: &str, params: &[(&str, &str)]| {
        let mut all = vec![("state", "s-1")];
        all.extend_from_slice(params);
        authorize_url(&app, client_id, &all)
    };
    let id = client.client_id.as_str();
    let cases: Vec<(String, &str)> = vec![
        (url(id, &[("scope", "openid")]), "invalid_request"),
        (
            url(id, &[("response_type", "magic"), ("scope", "openid")]),
            "unsupported_response_type",
        ),
        (
            url(id, &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "id_token"),
                    ("scope", "openid"),
                    ("nonce", "n"),
                ],
            ),
            "unauthorized_client",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "code"),
                    ("scope", "openid"),
                    ("scope", "email"),
                ],
            ),
            "invalid_request",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "code"),
                    ("request", "eyJhbGciOiJub25lIn0.e30."),
                ],
            ),
            "request_not_supported",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "code"),
                    ("request_uri", "https://rp.example/r"),
                ],
            ),
            "request_uri_not_supported",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "code"),
                    (
                        "code_challenge",
                        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    ),
                    ("code_challenge_method", "plain"),
                ],
            ),
            "invalid_request",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "code"),
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
            ),
            "invalid_request",
        ),
        (
            url(id, &[("response_type", "code"), ("prompt", "none login")]),
            "invalid_request",
        ),
        (
            url(id, &[("response_type", "code"), ("prompt", "sometimes")]),
            "invalid_request",
        ),
        (
            url(id, &[("response_type", "code"), ("max_age", "-1")]),
            "invalid_request",
        ),
        (
            url(id, &[("response_type", "code"), ("max_age", "soon")]),
            "invalid_request",
        ),
        (
            url(id, &[("response_type", "code"), ("claims", "{not json")]),
            "invalid_request",
        ),
        (
            url(
                id,
                &[
                    ("response_type", "code"),
                    ("response_mode", "carrier_pigeon"),
                ],
            ),
            "invalid_request",
        ),
        (
            url(
                id,
                &[("response_type", "code"), ("id_token_hint", "not.a.token")],
            ),
            "invalid_request",
        ),
        (
            url(id, &[("response_type", "code"), ("scope", "open\"id")]),
            "invalid_scope",
        ),
        (
            url(
                &public.client_id,
                &[("response_type", "code"), ("scope", "openid")],
            ),
            "invalid_request",
        ),
    ];
    for (url, error) in cases {
        let location = assert_error_redirect(&app, &url, error).await;
        let get = |name: &str| {
            param(&location, name).or_else(|| crate::flows::fragment_param(&location, name))
        };
        assert_eq!(get("state").as_deref(), Some("s-1"), "{url}");
        assert_eq!(get("iss").as_deref(), Some(app.issuer.as_str()));
        assert!(get("code").is_none());
        let description = get("error_description").unwrap_or_default();
        assert!(
            description
                .chars()
                .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
            "error_description characters: {description}"
        );
    }
    assert_eq!(app.count("authorization_requests").await, 0);
    assert_eq!(app.count("grants").await, 0);
}

#[tokio::test]
async fn front_channel_errors_use_the_fragment_and_implicit_needs_a_nonce() {
    let app = spawn_app().await;
    let client = app
        .web_client("Implicit", |r| r.grant_types = vec!["implicit".into()])
        .await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "id_token"),
            ("scope", "openid"),
            ("state", "f"),
        ],
    );
    let location = assert_error_redirect(&app, &url, "invalid_request").await;
    assert!(
        location.query().is_none(),
        "front-channel errors travel in the fragment"
    );
    assert_eq!(
        crate::flows::fragment_param(&location, "state").as_deref(),
        Some("f")
    );
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "id_token token"),
            ("scope", "openid"),
            ("nonce", "n"),
            ("response_mode", "query"),
        ],
    );
    assert_error_redirect(&app, &url, "invalid_request").await;
}

#[tokio::test]
async fn an_oversized_authorization_post_is_refused_with_413() {
    let app = spawn_app().await;
    let big = "x".repeat(300 * 1024);
    let response = app
        .client
        .post(app.url("/oauth/authorize"))
        .form(&[("client_id", "c"), ("state", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

async fn token_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

#[tokio::test]
async fn token_endpoint_refuses_malformed_requests_with_rfc_errors() {
    let app = spawn_app().await;
    let client = app.web_client("Token errors", |_| {}).await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let client = &client;
        async move { app.token_request(client, &form).await }
    };
    token_error(post(vec![]).await, 400, "invalid_request").await;
    token_error(
        post(vec![("grant_type", "password")]).await,
        400,
        "unsupported_grant_type",
    )
    .await;
    token_error(
        post(vec![("grant_type", "authorization_code")]).await,
        400,
        "invalid_request",
    )
    .await;
    token_error(
        post(vec![("grant_type", "authorization_code"), ("code", "nope")]).await,
        400,
        "invalid_grant",
    )
    .await;
    token_error(
        post(vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
        ])
        .await,
        400,
        "invalid_grant",
    )
    .await;
    token_error(
        post(vec![("grant_type", "client_credentials")]).await,
        400,
        "unauthorized_client",
    )
    .await;
    token_error(
        post(vec![
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ])
        .await,
        400,
        "invalid_request",
    )
    .await;
    // Wrong content type.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "text/plain")
        .body("grant_type=authorization_code")
        .send()
        .await
        .unwrap();
    token_error(response, 400, "invalid_request").await;
    // Oversized body.
    let big = "x".repeat(300 * 1024);
    let response = app
        .token_request(&client, &[("grant_type", "x"), ("pad", &big)])
        .await;
    token_error(response, 413, "invalid_request").await;
    // Malformed JSON body.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body("{\"grant_type\":")
        .send()
        .await
        .unwrap();
    token_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client() {
    let app = spawn_app().await;
    let basic = app.web_client("Basic", |_| {}).await;
    let post = app
        .web_client("Post", |r| {
            r.auth_method = Some("client_secret_post".into())
        })
        .await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    // Wrong secret over Basic: 401 with a Basic challenge.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&basic.client_id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    token_error(response, 401, "invalid_client").await;
    // Unknown client.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("no-such-client", Some("x"))
        .form(&form)
        .send()
        .await
        .unwrap();
    token_error(response, 401, "invalid_client").await;
    // A client registered for post that uses Basic.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&post.client_id, post.client_secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap();
    token_error(response, 401, "invalid_client").await;
    // Two methods at once.
    let secret = basic.client_secret.clone().unwrap();
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&basic.client_id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", basic.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    token_error(response, 400, "invalid_request").await;
    // No authentication at all for a confidential client.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", basic.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    token_error(response, 401, "invalid_client").await;
    // A malformed Authorization header.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("authorization", "Basic !!!")
        .form(&form)
        .send()
        .await
        .unwrap();
    token_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_code_is_single_use_and_its_replay_revokes_every_token_of_the_grant() {
    let app = spawn_app().await;
    app.create_user("paul", PASSWORD).await;
    let client = app.web_client("Replay", |_| {}).await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(&browser, &client, "paul", PASSWORD, &[("scope", "openid")])
        .await;
    let tokens = app.exchange(&client, &code).await;
    assert_eq!(app.userinfo(&tokens.access_token).await.0, 200);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://rp.example/callback"),
    ];
    token_error(
        app.token_request(&client, &form).await,
        400,
        "invalid_grant",
    )
    .await;
    let (status, _, challenge) = app.userinfo(&tokens.access_token).await;
    assert_eq!(
        status, 401,
        "the first exchange's access token is revoked at once"
    );
    assert!(challenge.unwrap().contains("invalid_token"));
    assert_eq!(
        app.introspect(&client, &tokens.access_token).await["active"],
        false
    );
    let refresh = tokens.refresh_token.unwrap();
    token_error(app.refresh(&client, &refresh).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_failed_exchange_burns_the_code() {
    let app = spawn_app().await;
    app.create_user("quinn", PASSWORD).await;
    let client = app.web_client("Burn", |_| {}).await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(
            &browser,
            &client,
            "quinn",
            PASSWORD,
            &[
                ("scope", "openid"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let attempt = |verifier: &'static str, redirect: &'static str| {
        let (app, client, code) = (&app, &client, code.clone());
        async move {
            app.token_request(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let body = token_error(
        attempt(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            "https://rp.example/callback",
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );
    // The right verifier no longer helps: the code was spent by the failed attempt.
    token_error(
        attempt(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "https://rp.example/callback",
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    let code2 = app
        .code_for(&browser, &client, "quinn", PASSWORD, &[("scope", "openid")])
        .await;
    let wrong_redirect = app
        .token_request(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code2),
                ("redirect_uri", "https://rp.example/other"),
            ],
        )
        .await;
    token_error(wrong_redirect, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = crate::helpers::spawn_app_with(Box::new(|s| s.lifetimes.code = 1)).await;
    app.create_user("rita", PASSWORD).await;
    let client = app.web_client("Expiry", |_| {}).await;
    let code = app
        .code_for(
            &Browser::new(&app),
            &client,
            "rita",
            PASSWORD,
            &[("scope", "openid")],
        )
        .await;
    app.state
        .store
        .run(|conn| {
            use diesel::prelude::*;
            use latchkey::store::schema::authorization_codes::dsl::*;
            diesel::update(authorization_codes)
                .set(expires_at.eq(0i64))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let body = token_error(
        app.token_request(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://rp.example/callback"),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn a_json_token_request_is_accepted_as_the_seeds_send_it() {
    let app = spawn_app().await;
    app.create_user("sam", PASSWORD).await;
    let client = app
        .web_client("Json", |r| {
            r.auth_method = Some("client_secret_post".into())
        })
        .await;
    let browser = Browser::new(&app);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[("response_type", "code"), ("scope", "openid")],
    );
    let code = param(
        &browser.authorize(&url, "sam", PASSWORD).await.left(),
        "code",
    )
    .unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/oauth/token"))
        .json(&serde_json::json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://rp.example/callback",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn a_refused_request_object_is_answered_the_way_the_object_asks() {
    use base64::Engine;
    let app = spawn_app().await;
    let client = app.web_client("Objects", |_| {}).await;
    let encode = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let object = format!(
        "{}.{}.",
        encode(serde_json::json!({"alg": "none"})),
        encode(serde_json::json!({"response_mode": "form_post", "state": "inside", "nonce": "n"}))
    );
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("request", &object),
        ],
    );
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "a form_post page, not a redirect");
    let html = response.text().await.unwrap();
    let (action, fields) = crate::flows::form_post_fields(&html);
    assert_eq!(action, "https://rp.example/callback");
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(field("error").as_deref(), Some("request_not_supported"));
    assert_eq!(field("state").as_deref(), Some("inside"));
}
