//! RP-initiated logout as real relying parties send it: the checked `post_logout_redirect_uri`
//! and `state` survive the confirmation page, and a hint from the same browser's previous
//! session (replaced by a forced re-login) is still accepted.

use crate::flows::{Browser, authorize_url, input_value, param};
use crate::helpers::{TestApp, spawn_app};

use super::PASSWORD;

async fn rp(app: &TestApp) -> latchkey::oauth::clients::ClientView {
    app.web_client("Logout RP", |r| {
        r.skip_consent = true;
        r.post_logout_redirect_uris = vec!["https://rp.example/bye".into()];
    })
    .await
}

fn logout_url(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    for (name, value) in pairs {
        url.query_pairs_mut().append_pair(name, value);
    }
    url.to_string()
}

#[tokio::test]
async fn a_confirmed_logout_goes_back_to_the_checked_redirect_uri_with_its_state() {
    let app = spawn_app().await;
    app.create_user("wendy", PASSWORD).await;
    let client = rp(&app).await;
    let browser = Browser::new(&app);
    app.code_for(&browser, &client, "wendy", PASSWORD, &[("scope", "openid")])
        .await;
    // What a single-page app library sends once it has no stored user: no hint.
    let url = logout_url(
        &app,
        &[
            ("client_id", &client.client_id),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "spa-state-1"),
        ],
    );
    let (_, status, html) = browser.visit(&url).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Sign out?"), "{html}");
    let mut form: Vec<(String, String)> = vec![
        (
            "csrf_token".into(),
            input_value(&html, "csrf_token").unwrap(),
        ),
        ("choice".into(), "logout".into()),
    ];
    for name in ["client_id", "post_logout_redirect_uri", "state"] {
        if let Some(value) = input_value(&html, name) {
            form.push((name.into(), value));
        }
    }
    let response = browser
        .http
        .post(app.url("/oauth/logout/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/bye");
    assert_eq!(param(&location, "state").as_deref(), Some("spa-state-1"));
    assert_eq!(app.count("sessions").await, 1);
    assert_eq!(live_sessions(&app).await, 0, "the session ended");

    // A confirmation form whose redirect URI was changed is not followed anywhere else.
    let browser = Browser::new(&app);
    app.code_for(&browser, &client, "wendy", PASSWORD, &[("scope", "openid")])
        .await;
    let (_, _, html) = browser.visit(&url).await.page();
    let response = browser
        .http
        .post(app.url("/oauth/logout/confirm"))
        .form(&[
            (
                "csrf_token",
                input_value(&html, "csrf_token").unwrap().as_str(),
            ),
            ("choice", "logout"),
            ("client_id", &client.client_id),
            ("post_logout_redirect_uri", "https://evil.example/"),
            ("state", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("location").is_none());

    // Already signed out: the registered URI is still where the browser goes.
    let response = Browser::new(&app).http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://rp.example/bye?state=spa-state-1")
    );
}

#[tokio::test]
async fn a_hint_from_the_session_a_forced_re_login_replaced_is_accepted() {
    let app = spawn_app().await;
    app.create_user("xena", PASSWORD).await;
    let client = rp(&app).await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(
            &browser,
            &client,
            "xena",
            PASSWORD,
            &[("scope", "openid"), ("nonce", "n")],
        )
        .await;
    let old_id_token = app.exchange(&client, &code).await.id_token.unwrap();
    // A re-login forced by prompt=login replaces the browser's session.
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "login"),
        ],
    );
    let callback = browser.authorize(&url, "xena", PASSWORD).await.left();
    assert!(param(&callback, "code").is_some());

    let url = logout_url(
        &app,
        &[
            ("id_token_hint", &old_id_token),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "after-relogin"),
        ],
    );
    let response = browser.http.get(&url).send().await.unwrap();
    assert_eq!(
        response.status(),
        303,
        "no confirmation page for the same browser"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://rp.example/bye?state=after-relogin"),
        "{location}"
    );
    // The current session ended.
    let prompt_none = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    let answer = browser.visit(&prompt_none).await.left();
    assert_eq!(param(&answer, "error").as_deref(), Some("login_required"));

    // Another browser's old hint is not enough to end this browser's session.
    let other = Browser::new(&app);
    let code = app
        .code_for(
            &other,
            &client,
            "xena",
            PASSWORD,
            &[("scope", "openid"), ("nonce", "n")],
        )
        .await;
    let foreign = app.exchange(&client, &code).await.id_token.unwrap();
    let mine = Browser::new(&app);
    app.code_for(&mine, &client, "xena", PASSWORD, &[("scope", "openid")])
        .await;
    let (_, status, html) = mine
        .visit(&logout_url(
            &app,
            &[
                ("id_token_hint", &foreign),
                ("post_logout_redirect_uri", "https://rp.example/bye"),
            ],
        ))
        .await
        .page();
    assert_eq!(status, 200);
    assert!(html.contains("Sign out?"), "asked first: {html}");
}

/// Sessions not yet ended.
async fn live_sessions(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use latchkey::store::schema::sessions;
    app.state
        .store
        .run(|conn| {
            Ok(sessions::table
                .filter(sessions::revoked_at.is_null())
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hint_ends_no_session_from_another_browser_and_only_an_id_token_is_a_hint() {
    let app = spawn_app().await;
    app.create_user("xena", PASSWORD).await;
    let client = rp(&app).await;
    let browser = Browser::new(&app);
    let code = app
        .code_for(&browser, &client, "xena", PASSWORD, &[("scope", "openid")])
        .await;
    let tokens = app.exchange(&client, &code).await;
    let id_token = tokens.id_token.unwrap();
    assert_eq!(live_sessions(&app).await, 1);

    // Anyone holding the ID token (the client does, and whoever it leaked to), from a browser
    // without the session: signed out there, redirected, and the session lives on.
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "s1"),
        ],
    );
    let response = Browser::new(&app).http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://rp.example/bye?state=s1")
    );
    assert_eq!(live_sessions(&app).await, 1, "the session was not ended");

    // An access token signed by the same keys is no hint: the person is asked.
    let url = logout_url(&app, &[("id_token_hint", &tokens.access_token)]);
    let (_, status, html) = browser.visit(&url).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Sign out?"), "{html}");
    assert_eq!(live_sessions(&app).await, 1);

    // The ID token, from the browser that holds its session, ends it at once.
    let url = logout_url(&app, &[("id_token_hint", &id_token)]);
    let (_, status, html) = browser.visit(&url).await.page();
    assert_eq!(status, 200);
    assert!(!html.contains("Sign out?"), "{html}");
    assert_eq!(live_sessions(&app).await, 0);
}
