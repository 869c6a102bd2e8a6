//! Tokens: renewal of any access token without a refresh token (F6), the refresh grace window
//! for clients that cannot authenticate (I2), cookie prefixes and a CSRF token bound to the
//! session (I1), and `Cache-Control` on personal data (I4).

use reqwest::Method;
use serde_json::{Value, json};

use super::{PASSWORD, bearer, post_json, register, token_of};
use crate::admin_support::{Api, admin_token};
use crate::flows::{Browser, input_value};
use crate::helpers::{spawn_app, spawn_app_with};

async fn reissue(app: &crate::helpers::TestApp, token: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn f6_only_first_party_tokens_are_renewed_and_revoking_one_ends_the_chain() {
    let app = spawn_app().await;
    app.create_user("yara", PASSWORD).await;
    // Another client's access token, leaked: no renewal.
    let client = app
        .web_client("Third party", |r| {
            r.skip_consent = true;
            r.scope = Some("openid profile:read offline_access".into());
        })
        .await;
    let tokens = app
        .tokens_for(
            &client,
            "yara",
            PASSWORD,
            "openid profile:read offline_access",
        )
        .await;
    assert!(
        tokens.refresh_token.is_some(),
        "the session has a live refresh token"
    );
    let (status, body) = reissue(&app, &tokens.access_token).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.get("access_token").is_none());

    // A first-party token is renewed while its session lives...
    let first = token_of(&app, "yara", PASSWORD).await;
    let (status, renewed) = reissue(&app, &first).await;
    assert_eq!(status, 200, "{renewed}");
    let second = renewed["access_token"].as_str().unwrap().to_owned();
    // ...and revoking the leaked one ends everything renewed from it.
    let response = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", first.as_str()), ("client_id", "latchkey")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = bearer(&app, Method::POST, "/api/v1/auth/verify", &second, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = reissue(&app, &second).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn i2_a_client_that_cannot_authenticate_gets_no_grace_replay() {
    let app = spawn_app().await;
    register(&app, "zoe", "zoe@example.com").await;
    let (status, login) = post_json(
        &app,
        "/api/v1/auth/login",
        json!({"username": "zoe", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let first = login["refresh_token"].as_str().unwrap();
    let refresh = |token: String| {
        let app = &app;
        async move {
            post_json(
                app,
                "/api/v1/auth/refresh",
                json!({"refresh_token": token}),
                None,
            )
            .await
        }
    };
    let (status, rotated) = refresh(first.to_owned()).await;
    assert_eq!(status, 200, "{rotated}");
    let successor = rotated["refresh_token"].as_str().unwrap().to_owned();
    // Presented again at once: whoever holds it cannot prove to be the client that rotated it.
    let (status, replay) = refresh(first.to_owned()).await;
    assert_eq!(status, 401, "{replay}");
    assert!(
        replay.get("refresh_token").is_none(),
        "the successor is not handed out"
    );
    let (status, _) = refresh(successor).await;
    assert_eq!(status, 401, "the family is revoked");
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn i1_cookies_carry_the_host_prefix_under_https() {
    let app = spawn_app_with(Box::new(|s| s.issuer = "https://127.0.0.1:0".into())).await;
    app.create_user("abe", PASSWORD).await;
    let page = app.get("/login").await;
    let cookies = set_cookies(&page);
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("__Host-lk_csrf="))
        .unwrap_or_else(|| panic!("{cookies:?}"))
        .clone();
    assert!(
        csrf_cookie.contains("Secure") && csrf_cookie.contains("Path=/"),
        "{csrf_cookie}"
    );
    assert!(
        !csrf_cookie.to_lowercase().contains("domain="),
        "{csrf_cookie}"
    );
    let html = page.text().await.unwrap();
    let pair = csrf_cookie.split(';').next().unwrap().to_owned();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header("cookie", &pair)
        .form(&[
            (
                "csrf_token",
                input_value(&html, "csrf_token").unwrap().as_str(),
            ),
            ("username", "abe"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let session = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("__Host-lk_session="))
        .expect("the session cookie has the prefix");
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}

#[tokio::test]
async fn i1_a_csrf_token_from_before_the_sign_in_does_not_serve_after_it() {
    let app = spawn_app().await;
    app.create_user("bea", PASSWORD).await;
    let browser = Browser::new(&app);
    let (_, _, login) = browser.visit(&app.url("/login")).await.page();
    let before = input_value(&login, "csrf_token").unwrap();
    let response = browser
        .http
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", before.as_str()),
            ("username", "bea"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // The pre-sign-in token (one an attacker could have planted with the cookie) is refused.
    let response = browser
        .http
        .post(app.url("/oauth/logout/confirm"))
        .form(&[("csrf_token", before.as_str()), ("choice", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A token of a page shown in the session serves.
    let (_, _, page) = browser.visit(&app.url("/oauth/logout")).await.page();
    let after = input_value(&page, "csrf_token").unwrap();
    assert_ne!(after, before);
    let response = browser
        .http
        .post(app.url("/oauth/logout/confirm"))
        .form(&[("csrf_token", after.as_str()), ("choice", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn i4_personal_json_is_never_stored_by_caches() {
    let app = spawn_app().await;
    let user = register(&app, "cleo", "cleo@example.com").await;
    let token = token_of(&app, "cleo", PASSWORD).await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let id = user["id"].as_str().unwrap();
    for (path, who) in [
        ("/api/v1/me".to_owned(), token.clone()),
        ("/api/v1/auth/me".to_owned(), token.clone()),
        ("/api/v1/users/profile".to_owned(), token.clone()),
        ("/api/v1/sessions".to_owned(), token.clone()),
        ("/oauth/userinfo".to_owned(), token.clone()),
        (format!("/api/v1/users/{id}"), admin.token.clone()),
        ("/api/v1/users".to_owned(), admin.token.clone()),
        ("/api/v1/audit/logs".to_owned(), admin.token.clone()),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&who)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let cache = response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(cache.as_deref(), Some("no-store"), "{path}");
    }
}
