//! Browser and HTTP hardening: security headers on pages, the API and static files; cookie
//! flags; CSRF on every form; CORS for registered web origins only.

use reqwest::Method;
use serde_json::json;

use crate::admin_support::{Api, admin_token};
use crate::flows::{Browser, authorize_url};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn assert_hardened(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
    };
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
}

#[tokio::test]
async fn pages_the_api_and_static_files_carry_the_security_headers() {
    let app = spawn_app().await;
    let client = app.web_client("Headers", |_| {}).await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
        ],
    );
    let login = Browser::new(&app).visit(&url).await;
    let (_, status, _) = login.page();
    assert_eq!(status, 200);
    for (path, what) in [
        ("/health", "health"),
        ("/api/v1/users", "a 401 of the API"),
        ("/static/css/latchkey.css", "a stylesheet"),
        ("/oauth/jwks", "the JWK Set"),
        ("/no/such/path", "a 404"),
    ] {
        let response = app.get(path).await;
        assert_hardened(&response, what);
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none()
        );
    }
    let page = app.client.get(&url).send().await.unwrap();
    assert_hardened(&page, "the login page");
}

#[tokio::test]
async fn an_https_issuer_adds_hsts_and_secure_cookies() {
    let app = spawn_app_with(Box::new(|s| s.issuer = "https://127.0.0.1:0".into())).await;
    let response = app.get("/health").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let client = app.web_client("Secure", |_| {}).await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
        ],
    );
    let redirect = app.client.get(url).send().await.unwrap();
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with('/') {
        app.url(&location)
    } else {
        location.replace("https://", "http://")
    };
    let page = app.client.get(location).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!cookies.is_empty());
    for cookie in cookies {
        for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
    }
}

#[tokio::test]
async fn the_session_and_csrf_cookies_are_http_only_and_same_site() {
    let app = spawn_app().await;
    let client = app.web_client("Cookies", |r| r.skip_consent = true).await;
    let url = authorize_url(
        &app,
        &client.client_id,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
        ],
    );
    let browser = Browser::new(&app);
    let (_, _, html) = browser.visit(&url).await.page();
    let form = [
        (
            "csrf_token",
            crate::flows::input_value(&html, "csrf_token").unwrap(),
        ),
        (
            "request",
            crate::flows::input_value(&html, "request").unwrap(),
        ),
        ("username", "admin".to_owned()),
        ("password", crate::helpers::ADMIN_PASSWORD.to_owned()),
    ];
    let response = browser
        .http
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("lk_session="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(!session.contains("Secure"), "plain http issuer: {session}");
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_token_with_a_403_page() {
    let app = spawn_app().await;
    let forms = [
        "/login",
        "/login/mfa",
        "/consent",
        "/select-account",
        "/account/mfa/setup",
        "/account/mfa/confirm",
        "/account/mfa/disable",
        "/account/mfa/recovery-codes",
        "/account/verify-email",
        "/account/reset-password",
        "/oauth/logout/confirm",
    ];
    for path in forms {
        for body in ["username=admin", "csrf_token=forged&username=admin"] {
            let response = app
                .client
                .post(app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", "latchkey_csrf=also-forged")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 403, "POST {path} with {body}");
            let page = response.text().await.unwrap();
            assert!(page.contains("Your session has expired"), "{path}: {page}");
        }
    }
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_is_allowed_for_registered_web_origins_only() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (status, _) = admin
        .post(
            "/admin/clients",
            json!({"client_name": "SPA", "redirect_uris": ["https://spa.example:8443/callback"],
                   "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, 201);
    let registered = "https://spa.example:8443";
    for path in ["/oauth/token", "/oauth/userinfo", "/api/v1/auth/me"] {
        let allowed = preflight(&app, path, registered).await;
        assert_eq!(allowed.status().as_u16(), 204, "{path}");
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            registered,
            "{path}"
        );
        assert!(
            allowed.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("Authorization")
        );
        let refused = preflight(&app, path, "https://evil.example").await;
        assert_eq!(refused.status().as_u16(), 403, "{path}");
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    let actual = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("origin", registered)
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status().as_u16(), 401);
    assert_eq!(actual.headers()["access-control-allow-origin"], registered);
    assert!(
        actual.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("WWW-Authenticate")
    );
    let stranger = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let public = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .header("origin", "https://anyone.example")
        .send()
        .await
        .unwrap();
    assert_eq!(public.headers()["access-control-allow-origin"], "*");
    let page = app
        .client
        .get(app.url("/login"))
        .header("origin", registered)
        .send()
        .await
        .unwrap();
    assert!(page.headers().get("access-control-allow-origin").is_none());
}
