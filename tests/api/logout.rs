//! Sessions and logout: listing and revoking sessions, RP-initiated logout with and without a
//! hint, back-channel logout tokens received and verified by a relying party (also one that is
//! down at first), and front-channel frames.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use josekit::jwk::Jwk;
use serde_json::{Value, json};

use crate::flows::{Browser, authorize_url, jwt_payload, param};
use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};

const PASSWORD: &str = "password-for-logout-1";

/// A relying party's back-channel endpoint: records every form POSTed to `/backchannel`.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(port: u16) -> Self {
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = received.clone();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            let sink = sink.clone();
            actix_web::App::new().route(
                "/backchannel",
                actix_web::web::post().to(move |body: actix_web::web::Bytes| {
                    let sink = sink.clone();
                    async move {
                        sink.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).into_owned());
                        actix_web::HttpResponse::Ok()
                            .insert_header(("Cache-Control", "no-store"))
                            .finish()
                    }
                }),
            )
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .run();
        tokio::spawn(server);
        Self { port, received }
    }

    fn uri(port: u16) -> String {
        format!("http://127.0.0.1:{port}/backchannel")
    }

    /// The logout tokens received so far.
    fn tokens(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|body| {
                url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
            })
            .collect()
    }
}

/// Verifies a JWT with the provider's published keys; returns header and claims.
async fn verify_with_jwks(app: &TestApp, token: &str) -> (Value, Value) {
    let jwks: Value = app.get_json("/oauth/jwks", 200).await;
    let header = josekit::jwt::decode_header(token).unwrap();
    let kid = header.claim("kid").unwrap().as_str().unwrap().to_owned();
    let alg = header.claim("alg").unwrap().as_str().unwrap().to_owned();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let jwk = Jwk::from_bytes(key.to_string()).unwrap();
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg.as_str() {
        "RS256" => Box::new(josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap()),
        "ES256" => Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap()),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, header) = josekit::jwt::decode_with_verifier(token, verifier.as_ref()).unwrap();
    let header: Value = serde_json::from_str(&header.to_string()).unwrap();
    (header, Value::Object(payload.claims_set().clone()))
}

/// A fast outbox for the back-channel tests.
fn quick_outbox() -> crate::helpers::Tweak {
    Box::new(|s| {
        s.outbox.poll_interval = Duration::from_millis(100);
        s.outbox.backoff_base_secs = 1;
    })
}

/// Logs `username` in through a browser for `client`; returns the ID token.
async fn browser_login(
    app: &TestApp,
    browser: &Browser,
    client: &latchkey::oauth::clients::ClientView,
    username: &str,
) -> String {
    let code = app
        .code_for(
            browser,
            client,
            username,
            PASSWORD,
            &[("scope", "openid"), ("nonce", "n")],
        )
        .await;
    app.exchange(client, &code).await.id_token.unwrap()
}

async fn logout_client(
    app: &TestApp,
    tweak: impl FnOnce(&mut latchkey::oauth::clients::ClientRequest),
) -> latchkey::oauth::clients::ClientView {
    app.web_client("Logout RP", |r| {
        r.skip_consent = true;
        r.post_logout_redirect_uris = vec!["https://rp.example/bye".into()];
        tweak(r);
    })
    .await
}

async fn prompt_none_error(app: &TestApp, browser: &Browser, client_id: &str) -> Option<String> {
    let url = authorize_url(
        app,
        client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    param(&browser.visit(&url).await.left(), "error")
}

#[tokio::test]
async fn sessions_are_listed_with_current_and_revoking_one_stops_its_tokens_at_once() {
    let app = spawn_app().await;
    app.create_user("sam", PASSWORD).await;
    let login = |app: &TestApp| {
        let app_client = app.client.clone();
        let url = app.url("/api/v1/auth/login");
        async move {
            let response = app_client
                .post(url)
                .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
                .json(&json!({"username": "sam", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    let mine = login(&app).await;
    let other = login(&app).await;
    let token = mine["access_token"].as_str().unwrap();
    let listed: Value = app
        .client
        .get(app.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(
        sessions
            .iter()
            .all(|s| s["device"] == "Chrome on Linux" && s["ip_address"] == "127.0.0.1")
    );
    let other_sid = jwt_payload(other["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another person's session, and an unknown one, are 404.
    let response = app
        .client
        .delete(app.url("/api/v1/sessions/nope"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/sessions/{other_sid}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Its access token is inactive everywhere, at once; its refresh token no longer works.
    let other_access = other["access_token"].as_str().unwrap();
    assert_eq!(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(other_access)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(app.userinfo(other_access).await.0, 401);
    let resource_server = app.web_client("RS", |_| {}).await;
    assert_eq!(
        app.introspect(&resource_server, other_access).await["active"],
        false
    );
    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": other["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 401);
    // Revoking all others keeps the current one.
    let third = login(&app).await;
    let response = app
        .client
        .delete(app.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked_count"], 1);
    assert_eq!(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(third["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn logout_with_a_valid_hint_redirects_with_state_alone_and_ends_the_session() {
    let app = spawn_app().await;
    app.create_user("tara", PASSWORD).await;
    let client = logout_client(&app, |_| {}).await;
    let browser = Browser::new(&app);
    let id_token = browser_login(&app, &browser, &client, "tara").await;
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://rp.example/bye")
        .append_pair("state", "s 1/x");
    let left = browser.visit(url.as_str()).await.left();
    assert_eq!(left.as_str(), "https://rp.example/bye?state=s+1%2Fx");
    assert_eq!(left.query_pairs().count(), 1, "state and nothing else");
    assert_eq!(
        prompt_none_error(&app, &browser, &client.client_id)
            .await
            .as_deref(),
        Some("login_required")
    );
    // Without state: no state.
    let id_token = browser_login(&app, &browser, &client, "tara").await;
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://rp.example/bye");
    assert_eq!(
        browser.visit(url.as_str()).await.left().as_str(),
        "https://rp.example/bye"
    );
    // Without a redirect URI: the signed-out page.
    let id_token = browser_login(&app, &browser, &client, "tara").await;
    let url = format!("{}?id_token_hint={id_token}", app.url("/oauth/logout"));
    let (_, status, html) = browser.visit(&url).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("You are signed out"));
    assert_eq!(
        prompt_none_error(&app, &browser, &client.client_id)
            .await
            .as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn logout_without_a_valid_hint_asks_first_and_never_redirects() {
    let app = spawn_app().await;
    app.create_user("uli", PASSWORD).await;
    let client = logout_client(&app, |_| {}).await;
    let browser = Browser::new(&app);
    let id_token = browser_login(&app, &browser, &client, "uli").await;
    // The hint re-signed with alg none, and no hint at all.
    let parts: Vec<&str> = id_token.split('.').collect();
    use base64::Engine;
    let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let forged = format!("{none_header}.{}.", parts[1]);
    for hint in [Some(forged.as_str()), None] {
        let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
        if let Some(hint) = hint {
            url.query_pairs_mut().append_pair("id_token_hint", hint);
        }
        url.query_pairs_mut()
            .append_pair("post_logout_redirect_uri", "https://rp.example/bye")
            .append_pair("state", "s");
        // No valid hint: no client identified, so the redirect URI cannot be checked → error page,
        // or (with the forged hint) a confirmation page. Never a redirect.
        let response = browser.http.get(url.as_str()).send().await.unwrap();
        assert!(
            response.headers().get("location").is_none(),
            "never redirected"
        );
        assert!(response.status() == 200 || response.status() == 400);
    }
    // No parameters: a confirmation page; the session lives until the person confirms.
    let (_, status, html) = browser.visit(&app.url("/oauth/logout")).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Sign out?"));
    assert_eq!(app.count("sessions").await, 1);
    let form = [
        (
            "csrf_token",
            crate::flows::input_value(&html, "csrf_token").unwrap(),
        ),
        ("choice", "logout".to_owned()),
    ];
    let response = browser
        .http
        .post(app.url("/oauth/logout/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are signed out")
    );
    assert_eq!(
        prompt_none_error(&app, &browser, &client.client_id)
            .await
            .as_deref(),
        Some("login_required")
    );
    // The confirmation form needs its CSRF token.
    let response = browser
        .http
        .post(app.url("/oauth/logout/confirm"))
        .form(&[("choice", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_is_an_error_page_and_nothing_ends() {
    let app = spawn_app().await;
    app.create_user("vic", PASSWORD).await;
    let client = logout_client(&app, |_| {}).await;
    let browser = Browser::new(&app);
    let id_token = browser_login(&app, &browser, &client, "vic").await;
    for uri in [
        "https://rp.example/elsewhere",
        "https://rp.example/bye?foo=bar",
    ] {
        let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", uri);
        let response = browser.http.get(url.as_str()).send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
    }
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    assert!(
        param(&browser.visit(&url).await.left(), "code").is_some(),
        "still signed in"
    );
}

#[tokio::test]
async fn a_post_logout_redirect_uri_without_a_known_client_says_the_client_is_unknown() {
    let app = spawn_app().await;
    app.create_user("val", PASSWORD).await;
    let client = logout_client(&app, |_| {}).await;
    let browser = Browser::new(&app);
    browser_login(&app, &browser, &client, "val").await;
    let page = |params: Vec<(&'static str, String)>| {
        let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        let request = browser.http.get(url.as_str());
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let registered = "https://rp.example/bye".to_owned();
    // Neither a hint nor a client_id: nothing says which client the URI belongs to.
    for params in [
        vec![("post_logout_redirect_uri", registered.clone())],
        vec![
            ("post_logout_redirect_uri", registered.clone()),
            ("id_token_hint", "not-a-token".to_owned()),
        ],
    ] {
        let (status, html) = page(params).await;
        assert_eq!(status, 400);
        assert!(html.contains("needs a valid id_token_hint"), "{html}");
        assert!(!html.contains("not registered"), "{html}");
    }
    // A known client, and a URI it did not register.
    let (status, html) = page(vec![
        (
            "post_logout_redirect_uri",
            "https://rp.example/elsewhere".into(),
        ),
        ("client_id", client.client_id.clone()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("not registered for this client"), "{html}");
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    assert!(
        param(&browser.visit(&url).await.left(), "code").is_some(),
        "still signed in"
    );
}

#[tokio::test]
async fn back_channel_logout_tokens_reach_the_relying_party_and_verify() {
    let app = spawn_app_with(quick_outbox()).await;
    app.create_user("wes", PASSWORD).await;
    let receiver = Receiver::start(0).await;
    let client = logout_client(&app, |r| {
        r.backchannel_logout_uri = Some(Receiver::uri(receiver.port))
    })
    .await;
    let browser = Browser::new(&app);
    let id_token = browser_login(&app, &browser, &client, "wes").await;
    let id_claims = jwt_payload(&id_token);
    let url = format!("{}?id_token_hint={id_token}", app.url("/oauth/logout"));
    browser.visit(&url).await.page();
    let token = eventually(10, "the logout token", || async {
        receiver.tokens().first().cloned()
    })
    .await;
    let (header, claims) = verify_with_jwks(&app, &token).await;
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert!(claims["jti"].is_string());
    assert!(claims.get("nonce").is_none());
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    let body = receiver.received.lock().unwrap()[0].clone();
    assert!(
        body.starts_with("logout_token=") && !body.contains('&'),
        "only logout_token: {body}"
    );
}

#[tokio::test]
async fn a_relying_party_that_is_down_at_first_still_gets_its_logout_token() {
    let app = spawn_app_with(quick_outbox()).await;
    app.create_user("xia", PASSWORD).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = logout_client(&app, |r| {
        r.backchannel_logout_uri = Some(Receiver::uri(port))
    })
    .await;
    // The person revokes the browser session through the API (another way a session ends).
    let sid = jwt_payload(
        &app.tokens_for(&client, "xia", PASSWORD, "openid")
            .await
            .id_token
            .unwrap(),
    )["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let login: Value = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "xia", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_token = login["access_token"].as_str().unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/sessions/{sid}")))
        .bearer_auth(api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Delivery fails while nothing listens…
    eventually(10, "a failed attempt", || async {
        let entries = app
            .state
            .store
            .run(|conn| latchkey::events::outbox::list(conn, "backchannel_logout", None, 10))
            .await
            .unwrap();
        entries
            .first()
            .filter(|e| e.attempts >= 1 && e.last_error.is_some())
            .map(|_| ())
    })
    .await;
    // …and succeeds once the relying party is up.
    let receiver = Receiver::start(port).await;
    let token = eventually(15, "the logout token", || async {
        receiver.tokens().first().cloned()
    })
    .await;
    assert_eq!(jwt_payload(&token)["sid"], sid.as_str());
}

#[tokio::test]
async fn the_signed_out_page_loads_front_channel_frames_with_iss_and_sid() {
    let app = spawn_app().await;
    app.create_user("yan", PASSWORD).await;
    let client = logout_client(&app, |r| {
        r.frontchannel_logout_uri = Some("https://rp.example/frontchannel".into())
    })
    .await;
    let browser = Browser::new(&app);
    let id_token = browser_login(&app, &browser, &client, "yan").await;
    let sid = jwt_payload(&id_token)["sid"].as_str().unwrap().to_owned();
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://rp.example/bye")
        .append_pair("state", "st");
    let response = browser.http.get(url.as_str()).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the frames must load before the browser leaves"
    );
    // The default policy frames nothing: the page must allow the client's origin, and only it.
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.ends_with("; frame-src https://rp.example"),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = response.text().await.unwrap();
    let start = html
        .find("<iframe class=\"frontchannel\" src=\"")
        .expect("a front-channel frame")
        + 34;
    let end = html[start..].find('"').unwrap() + start;
    let src = url::Url::parse(&crate::flows::unescape(&html[start..end])).unwrap();
    assert_eq!(src.path(), "/frontchannel");
    assert_eq!(param(&src, "iss").as_deref(), Some(app.issuer.as_str()));
    assert_eq!(param(&src, "sid").as_deref(), Some(sid.as_str()));
    assert!(html.contains("http-equiv=\"refresh\""));
    assert!(html.contains("https://rp.example/bye?state=st"));
}

#[tokio::test]
async fn discovery_advertises_the_logout_specifications() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration", 200).await;
    assert_eq!(
        doc["end_session_endpoint"],
        app.url("/oauth/logout").as_str()
    );
    for flag in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(doc[flag], true, "{flag}");
    }
}
