//! Authorization flows over HTTP: single sign-on, prompt, max_age, consent memory, response
//! modes, implicit and hybrid responses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use latchkey::store::schema::{grants, sessions};
use sha2::{Digest, Sha256};

use crate::flows::{
    Browser, Landing, authorize_url, form_post_fields, fragment_param, jwt_payload, param,
};
use crate::helpers::{TestApp, spawn_app};

const PASSWORD: &str = "password-for-flows-1";

/// Moves every authentication `seconds` into the past (sessions and the grants made from
/// them), instead of sleeping.
async fn age_sessions(app: &TestApp, seconds: i64) {
    app.state
        .store
        .run(move |conn| {
            diesel::update(sessions::table)
                .set(sessions::auth_time.eq(sessions::auth_time - seconds))
                .execute(conn)?;
            diesel::update(grants::table)
                .set(grants::auth_time.eq(grants::auth_time - seconds))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[tokio::test]
async fn a_second_authorization_uses_the_session_and_remembered_consent() {
    let app = spawn_app().await;
    app.create_user("carol", PASSWORD).await;
    let client = app.web_client("SSO", |_| {}).await;
    let browser = Browser::new(&app);
    let first = app
        .code_for(
            &browser,
            &client,
            "carol",
            PASSWORD,
            &[("scope", "openid email")],
        )
        .await;
    app.exchange(&client, &first).await;
    // Same browser, same scopes: straight back to the client.
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "s2"),
        ],
    );
    let landing = browser.visit(&url).await;
    let callback = landing.left();
    assert!(param(&callback, "code").is_some());
    // A new scope asks for consent again, and only then.
    let url = authorize_url(
        &app,
        &client.client_id,
        &[("response_type", "code"), ("scope", "openid email phone")],
    );
    let (page, _, _) = browser.visit(&url).await.page();
    assert_eq!(page.path(), "/consent");
}

#[tokio::test]
async fn prompt_none_without_a_session_returns_login_required_with_state_and_iss() {
    let app = spawn_app().await;
    let client = app.web_client("Silent", |_| {}).await;
    let state = "x".repeat(128);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", &state),
        ],
    );
    let callback = Browser::new(&app).visit(&url).await.left();
    assert_eq!(param(&callback, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&callback, "state").as_deref(), Some(state.as_str()));
    assert_eq!(
        param(&callback, "iss").as_deref(),
        Some(app.issuer.as_str())
    );
    assert!(param(&callback, "code").is_none());
    assert_eq!(
        app.count("authorization_requests").await,
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn prompt_none_with_a_session_and_consent_succeeds_silently_with_the_same_auth_time() {
    let app = spawn_app().await;
    app.create_user("dave", PASSWORD).await;
    let client = app.web_client("Silent", |_| {}).await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(
            &browser,
            &client,
            "dave",
            PASSWORD,
            &[("scope", "openid"), ("nonce", "1")],
        )
        .await;
    let first = jwt_payload(&app.exchange(&client, &code).await.id_token.unwrap());
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("nonce", "2"),
        ],
    );
    let callback = browser.visit(&url).await.left();
    let code = param(&callback, "code").expect("silent success");
    let second = jwt_payload(&app.exchange(&client, &code).await.id_token.unwrap());
    assert_eq!(first["auth_time"], second["auth_time"]);
    assert_eq!(first["sub"], second["sub"]);
    assert_eq!(first["sid"], second["sid"]);
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_again_and_moves_auth_time() {
    let app = spawn_app().await;
    app.create_user("erin", PASSWORD).await;
    let client = app.web_client("Relogin", |_| {}).await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(&browser, &client, "erin", PASSWORD, &[("scope", "openid")])
        .await;
    // The session is made older than the second login can be, so no sleeping is needed.
    age_sessions(&app, 100).await;
    let first = jwt_payload(&app.exchange(&client, &code).await.id_token.unwrap());
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "login"),
        ],
    );
    let (page, _, html) = browser.visit(&url).await.page();
    assert_eq!(page.path(), "/login", "a new login is required");
    let callback = browser.submit_login(&html, "erin", PASSWORD).await.left();
    let second = jwt_payload(
        &app.exchange(&client, &param(&callback, "code").unwrap())
            .await
            .id_token
            .unwrap(),
    );
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64());
    assert_ne!(
        first["sid"], second["sid"],
        "a new login starts a new session"
    );
}

#[tokio::test]
async fn max_age_forces_a_new_login_once_exceeded_and_not_before() {
    let app = spawn_app().await;
    app.create_user("frank", PASSWORD).await;
    let client = app.web_client("MaxAge", |_| {}).await;
    let browser = Browser::new(&app);
    app.code_for(&browser, &client, "frank", PASSWORD, &[("scope", "openid")])
        .await;
    let within = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("max_age", "10000"),
        ],
    );
    let code = param(&browser.visit(&within).await.left(), "code").unwrap();
    let token = jwt_payload(&app.exchange(&client, &code).await.id_token.unwrap());
    assert!(
        token["auth_time"].is_i64(),
        "auth_time is present when max_age is used"
    );
    age_sessions(&app, 60).await;
    let exceeded = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("max_age", "30"),
        ],
    );
    let (page, _, _) = browser.visit(&exceeded).await.page();
    assert_eq!(page.path(), "/login");
}

#[tokio::test]
async fn denying_consent_returns_access_denied_and_issues_nothing() {
    let app = spawn_app().await;
    app.create_user("gina", PASSWORD).await;
    let client = app.web_client("Denied", |_| {}).await;
    let browser = Browser::new(&app);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "keep me"),
        ],
    );
    let (_, _, login) = browser.visit(&url).await.page();
    let (page, _, consent) = browser.submit_login(&login, "gina", PASSWORD).await.page();
    assert_eq!(page.path(), "/consent");
    assert!(consent.contains("Denied") && consent.contains("Sign you in with your account"));
    let callback = browser.submit_consent(&consent, false).await.left();
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&callback, "state").as_deref(), Some("keep me"));
    assert_eq!(app.count("grants").await, 0);
    assert_eq!(app.count("consents").await, 0);
}

#[tokio::test]
async fn first_party_clients_skip_consent() {
    let app = spawn_app().await;
    app.create_user("hank", PASSWORD).await;
    let client = app
        .web_client("First party", |r| r.skip_consent = true)
        .await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[("response_type", "code"), ("scope", "openid profile")],
    );
    let browser = Browser::new(&app);
    let (_, _, login) = browser.visit(&url).await.page();
    let callback = browser.submit_login(&login, "hank", PASSWORD).await.left();
    assert!(param(&callback, "code").is_some());
}

#[tokio::test]
async fn state_is_echoed_exactly_and_registered_query_is_kept() {
    let app = spawn_app().await;
    app.create_user("ivy", PASSWORD).await;
    let client = app
        .create_client(latchkey::oauth::clients::ClientRequest {
            name: "Query".into(),
            redirect_uris: vec!["https://rp.example/cb?bar=foo".into()],
            skip_consent: true,
            ..Default::default()
        })
        .await;
    let state = "a b+c/=&é?#%";
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", "https://rp.example/cb?bar=foo")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", state);
    let callback = Browser::new(&app)
        .authorize(url.as_str(), "ivy", PASSWORD)
        .await
        .left();
    assert_eq!(param(&callback, "state").as_deref(), Some(state));
    assert_eq!(param(&callback, "bar").as_deref(), Some("foo"));
    assert!(
        callback
            .as_str()
            .starts_with("https://rp.example/cb?bar=foo&")
    );
}

#[tokio::test]
async fn form_post_answers_with_an_auto_submitting_form() {
    let app = spawn_app().await;
    app.create_user("jack", PASSWORD).await;
    let client = app.web_client("FormPost", |r| r.skip_consent = true).await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("response_mode", "form_post"),
            ("state", "s\"<x>"),
        ],
    );
    let browser = Browser::new(&app);
    let (page, status, html) = browser.authorize(&url, "jack", PASSWORD).await.page();
    assert_eq!(status, 200);
    assert_eq!(page.path(), "/oauth/authorize/resume");
    let (action, fields) = form_post_fields(&html);
    assert_eq!(action, "https://rp.example/callback");
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert!(field("code").is_some());
    assert_eq!(field("state").as_deref(), Some("s\"<x>"));
    assert_eq!(field("iss").as_deref(), Some(app.issuer.as_str()));
    assert!(html.contains("<script src=\"/static/js/form-post.js\""));
    assert!(!html.contains("<script>"), "no inline script");
    let script = app.get("/static/js/form-post.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("form-post"));
}

#[tokio::test]
async fn implicit_and_hybrid_responses_carry_hashes_in_the_fragment() {
    let app = spawn_app().await;
    app.create_user("kim", PASSWORD).await;
    let client = app
        .web_client("Hybrid", |r| {
            r.grant_types = vec![
                "authorization_code".into(),
                "implicit".into(),
                "refresh_token".into(),
            ];
            r.skip_consent = true;
        })
        .await;
    let browser = Browser::new(&app);
    for response_type in [
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
        "id_token",
    ] {
        let url = authorize_url(
            &app,
            &client.client_id,
            &[
                ("response_type", response_type),
                ("scope", "openid email"),
                ("nonce", "nonce-1"),
                ("state", "st"),
            ],
        );
        let callback = browser.authorize(&url, "kim", PASSWORD).await.left();
        assert!(
            callback.query().is_none_or(|q| !q.contains("code=")),
            "{response_type}: nothing in the query"
        );
        let get = |n: &str| fragment_param(&callback, n);
        assert_eq!(get("state").as_deref(), Some("st"));
        assert_eq!(get("iss").as_deref(), Some(app.issuer.as_str()));
        if let Some(id_token) = get("id_token") {
            let claims = jwt_payload(&id_token);
            assert_eq!(claims["nonce"], "nonce-1");
            if let Some(code) = get("code") {
                assert_eq!(
                    claims["c_hash"],
                    half_hash(&code),
                    "{response_type}: c_hash"
                );
            }
            if let Some(token) = get("access_token") {
                assert_eq!(
                    claims["at_hash"],
                    half_hash(&token),
                    "{response_type}: at_hash"
                );
                assert_eq!(get("token_type").as_deref(), Some("Bearer"));
                assert!(
                    claims.get("email").is_none(),
                    "claims go to userinfo when a token is issued"
                );
            } else if !response_type.contains("code") {
                assert_eq!(
                    claims["email"], "kim@example.com",
                    "id_token alone carries the scope's claims"
                );
            }
        }
        if let Some(token) = get("access_token") {
            let (status, _, _) = app.userinfo(&token).await;
            assert_eq!(status, 200, "{response_type}: front-channel token works");
        }
        assert_eq!(get("code").is_some(), response_type.contains("code"));
    }
}

#[tokio::test]
async fn authorization_requests_may_be_posted_as_forms() {
    let app = spawn_app().await;
    app.create_user("lee", PASSWORD).await;
    let client = app.web_client("Posted", |r| r.skip_consent = true).await;
    let browser = Browser::new(&app);
    let response = browser
        .http
        .post(app.url("/oauth/authorize"))
        .form(&[
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", "https://rp.example/callback"),
            ("response_type", "code"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    let (page, _, html) = browser.follow(response).await.page();
    assert_eq!(page.path(), "/login");
    let callback = browser.submit_login(&html, "lee", PASSWORD).await.left();
    assert!(param(&callback, "code").is_some());
}

#[tokio::test]
async fn native_clients_may_use_any_loopback_port() {
    let app = spawn_app().await;
    app.create_user("max", PASSWORD).await;
    let client = app
        .create_client(latchkey::oauth::clients::ClientRequest {
            name: "CLI tool".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            auth_method: Some("none".into()),
            application_type: Some("native".into()),
            skip_consent: true,
            ..Default::default()
        })
        .await;
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:51004/callback")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let callback = Browser::new(&app)
        .authorize(url.as_str(), "max", PASSWORD)
        .await
        .left();
    assert!(
        callback
            .as_str()
            .starts_with("http://127.0.0.1:51004/callback?")
    );
    let code = param(&callback, "code").unwrap();
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:51004/callback"),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn select_account_shows_the_signed_in_account_and_continues() {
    let app = spawn_app().await;
    app.create_user("nina", PASSWORD).await;
    let client = app.web_client("Accounts", |r| r.skip_consent = true).await;
    let browser = Browser::new(&app);
    app.code_for(&browser, &client, "nina", PASSWORD, &[("scope", "openid")])
        .await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "select_account"),
        ],
    );
    let (page, _, html) = browser.visit(&url).await.page();
    assert_eq!(page.path(), "/select-account");
    assert!(html.contains("Continue as nina"));
    let form = [
        (
            "csrf_token",
            crate::flows::input_value(&html, "csrf_token").unwrap(),
        ),
        (
            "request",
            crate::flows::input_value(&html, "request").unwrap(),
        ),
        ("choice", "continue".to_owned()),
    ];
    let response = browser
        .http
        .post(app.url("/select-account"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = browser.follow(response).await.left();
    assert!(param(&callback, "code").is_some());
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_without_revealing_the_account() {
    let app = spawn_app().await;
    app.create_user("olga", PASSWORD).await;
    let client = app.web_client("Wrong", |_| {}).await;
    let browser = Browser::new(&app);
    let url = authorize_url(
        &app,
        &client.client_id,
        &[("response_type", "code"), ("scope", "openid")],
    );
    let (_, _, html) = browser.visit(&url).await.page();
    let Landing::Page {
        status,
        html: wrong,
        ..
    } = browser
        .submit_login(&html, "olga", "not the password")
        .await
    else {
        panic!("expected the login page");
    };
    assert_eq!(status, 401);
    let Landing::Page {
        status: unknown_status,
        html: unknown,
        ..
    } = browser
        .submit_login(&html, "nobody-here", "not the password")
        .await
    else {
        panic!("expected the login page");
    };
    assert_eq!(unknown_status, 401);
    let message = |h: &str| {
        h.split("id=\"login-error\">")
            .nth(1)
            .map(|s| s.split('<').next().unwrap().to_owned())
    };
    assert_eq!(
        message(&wrong),
        message(&unknown),
        "same answer whether or not the account exists"
    );
    assert_eq!(app.count("sessions").await, 0);
}
