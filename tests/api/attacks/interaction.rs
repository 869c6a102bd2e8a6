//! The steps of an authorization: pages that complete steps they do not own (F5), an essential
//! `acr` that cannot be met (F12), loopback ports (F15), and implicit clients on localhost.

use serde_json::json;

use crate::admin_support::{Api, admin_token};
use crate::browser_support::turn_on_mfa;
use crate::flows::{Browser, Landing, authorize_url, input_value, param};
use crate::helpers::{TestApp, spawn_app};

use super::PASSWORD;

/// Posts a page's form fields to `path`, as a person who edited the form would.
async fn post_form(browser: &Browser, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Landing {
    let response = browser
        .http
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    browser.follow(response).await
}

/// Signs `username` in through one complete authorization (so the browser has a session and
/// the client a consent).
async fn signed_in(app: &TestApp, client_id: &str, username: &str) -> Browser {
    let browser = Browser::new(app);
    let url = authorize_url(
        app,
        client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
        ],
    );
    let callback = browser.authorize(&url, username, PASSWORD).await.left();
    assert!(param(&callback, "code").is_some(), "{callback}");
    browser
}

fn assert_not_answered(landing: Landing, what: &str) {
    match landing {
        Landing::Left(url) => panic!("{what}: the request was answered: {url}"),
        Landing::Page { url, status, html } => {
            assert!(
                url.path() == "/login" || url.path() == "/login/mfa" || status == 400,
                "{what}: {url} ({status}) {html}"
            );
        }
    }
}

#[tokio::test]
async fn f5_no_page_completes_a_step_the_request_does_not_wait_for() {
    let app = spawn_app().await;
    app.create_user("sam", PASSWORD).await;
    let client = app.web_client("Steps", |_| {}).await;
    let browser = signed_in(&app, &client.client_id, "sam").await;

    for extra in [("prompt", "login"), ("max_age", "0")] {
        let url = authorize_url(
            &app,
            &client.client_id,
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s"),
                extra,
            ],
        );
        let (page, _, html) = browser.visit(&url).await.page();
        assert_eq!(page.path(), "/login", "{extra:?}");
        let request = input_value(&html, "request").unwrap();
        let csrf = input_value(&html, "csrf_token").unwrap();
        let skipped = post_form(
            &browser,
            &app,
            "/select-account",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("choice", "continue"),
            ],
        )
        .await;
        assert_not_answered(skipped, &format!("{extra:?} through /select-account"));
        let skipped = post_form(
            &browser,
            &app,
            "/consent",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("decision", "allow"),
            ],
        )
        .await;
        assert_not_answered(skipped, &format!("{extra:?} through /consent"));
        // The request still waits for its login, which then answers it.
        let (_, _, login) = browser
            .visit(&app.url(&format!("/login?request={request}")))
            .await
            .page();
        let callback = browser.submit_login(&login, "sam", PASSWORD).await.left();
        assert!(param(&callback, "code").is_some(), "{callback}");
    }
    assert_eq!(app.count("authorization_codes").await, 3);
}

#[tokio::test]
async fn f5_a_step_up_to_a_second_factor_cannot_be_skipped_through_consent() {
    let app = spawn_app().await;
    let id = app.create_user("tess", PASSWORD).await;
    let client = app.web_client("Step-up", |_| {}).await;
    let browser = signed_in(&app, &client.client_id, "tess").await;
    turn_on_mfa(&app, &id).await;
    let claims =
        json!({"id_token": {"acr": {"essential": true, "values": ["urn:latchkey:acr:mfa"]}}});
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("claims", &claims.to_string()),
        ],
    );
    let (page, _, html) = browser.visit(&url).await.page();
    assert_eq!(page.path(), "/login/mfa");
    let csrf = input_value(&html, "csrf_token").unwrap();
    let request: String = {
        use diesel::prelude::*;
        use latchkey::store::schema::authorization_requests;
        app.state
            .store
            .run(|conn| {
                Ok(authorization_requests::table
                    .select(authorization_requests::id)
                    .first(conn)?)
            })
            .await
            .unwrap()
    };
    let skipped = post_form(
        &browser,
        &app,
        "/consent",
        &[
            ("csrf_token", &csrf),
            ("request", &request),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_not_answered(skipped, "a step-up through /consent");
    let skipped = post_form(
        &browser,
        &app,
        "/select-account",
        &[
            ("csrf_token", &csrf),
            ("request", &request),
            ("choice", "continue"),
        ],
    )
    .await;
    assert_not_answered(skipped, "a step-up through /select-account");
    assert_eq!(
        app.count("authorization_codes").await,
        1,
        "only the first sign-in's"
    );
}

#[tokio::test]
async fn f12_an_essential_acr_that_cannot_be_met_is_an_error_not_a_weaker_acr() {
    let app = spawn_app().await;
    app.create_user("uma", PASSWORD).await;
    let client = app.web_client("Essential", |_| {}).await;
    let claims =
        json!({"id_token": {"acr": {"essential": true, "values": ["urn:latchkey:acr:mfa"]}}});
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st-12"),
            ("claims", &claims.to_string()),
        ],
    );
    let callback = Browser::new(&app)
        .authorize(&url, "uma", PASSWORD)
        .await
        .left();
    assert_eq!(param(&callback, "code"), None, "{callback}");
    assert_eq!(
        param(&callback, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{callback}"
    );
    assert_eq!(param(&callback, "state").as_deref(), Some("st-12"));
    assert_eq!(app.count("authorization_codes").await, 0);
    // Asked for only as a preference (acr_values), the password level is still an answer.
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("acr_values", "urn:latchkey:acr:mfa"),
        ],
    );
    let callback = Browser::new(&app)
        .authorize(&url, "uma", PASSWORD)
        .await
        .left();
    assert!(param(&callback, "code").is_some(), "{callback}");
    // An essential level this provider has no sign-in for fails before anyone signs in.
    let claims = json!({"id_token": {"acr": {"essential": true, "value": "urn:example:gold"}}});
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st-gold"),
            ("claims", &claims.to_string()),
        ],
    );
    let callback = Browser::new(&app).visit(&url).await.left();
    assert_eq!(
        param(&callback, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{callback}"
    );
    assert_eq!(param(&callback, "state").as_deref(), Some("st-gold"));
}

#[tokio::test]
async fn f15_a_loopback_port_above_65535_is_refused_before_anything_is_written() {
    let app = spawn_app().await;
    app.create_user("vic", PASSWORD).await;
    let client = app
        .create_client(latchkey::oauth::clients::ClientRequest {
            name: "Native".into(),
            application_type: Some("native".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            auth_method: Some("none".into()),
            skip_consent: true,
            ..Default::default()
        })
        .await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let authorize = |redirect: &str| {
        let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    };
    let browser = Browser::new(&app);
    let callback = browser
        .authorize(&authorize("http://127.0.0.1:51004/cb"), "vic", PASSWORD)
        .await
        .left();
    assert!(param(&callback, "code").is_some(), "{callback}");
    let (grants, codes) = (
        app.count("grants").await,
        app.count("authorization_codes").await,
    );
    for port in ["70000", "65536", "99999", "0", "00080"] {
        let (_, status, html) = browser
            .visit(&authorize(&format!("http://127.0.0.1:{port}/cb")))
            .await
            .page();
        assert_eq!(status, 400, "port {port}: {html}");
        assert!(html.contains("redirect_uri"), "{html}");
    }
    assert_eq!(app.count("grants").await, grants, "no grant written");
    assert_eq!(
        app.count("authorization_codes").await,
        codes,
        "no code written"
    );
}

#[tokio::test]
async fn implicit_web_clients_may_not_redirect_to_localhost() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    for uri in [
        "https://localhost/cb",
        "https://LOCALHOST:8443/cb",
        "https://app.localhost/cb",
        "https://127.0.0.1/cb",
        "https://[::1]/cb",
    ] {
        let (status, body) = admin
            .post(
                "/admin/clients",
                json!({
                    "client_name": "Implicit",
                    "grant_types": ["implicit"],
                    "redirect_uris": [uri],
                    "token_endpoint_auth_method": "none",
                }),
            )
            .await;
        assert_eq!(status, 422, "{uri}: {body}");
        assert_eq!(body["details"][0]["field"], "redirect_uris", "{body}");
    }
    let (status, body) = admin
        .post(
            "/admin/clients",
            json!({
                "client_name": "Implicit",
                "grant_types": ["implicit"],
                "redirect_uris": ["https://rp.example/cb"],
                "token_endpoint_auth_method": "none",
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin
        .post(
            "/admin/clients",
            json!({
                "client_name": "Native code",
                "application_type": "native",
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
            }),
        )
        .await;
    assert_eq!(
        status, 201,
        "native clients keep their loopback redirects: {body}"
    );
}
