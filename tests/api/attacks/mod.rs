//! The attack review's findings, each reproduced over HTTP against a real server: every test
//! here failed on the code before its fix (the issue note lists the finding, the fix and the
//! test). Grouped by what the attacker goes after.

mod accounts;
mod escalation;
mod interaction;
mod logout;
mod mail;
mod outbound;
mod paths;
mod tokens;

use serde_json::{Value, json};

use crate::flows::{Browser, Landing, input_value};
use crate::helpers::TestApp;

/// The password of every account these tests register.
pub const PASSWORD: &str = "correct horse battery staple";

/// POSTs JSON to `path`, optionally as the client at `forwarded_for` (the servers that read
/// it trust loopback as their proxy); returns the status and the body.
pub async fn post_json(
    app: &TestApp,
    path: &str,
    body: Value,
    forwarded_for: Option<&str>,
) -> (u16, Value) {
    let mut request = app.client.post(app.url(path)).json(&body);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends `method` to `path` with a bearer token and an optional JSON body.
pub async fn bearer(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers `username` with `email` through the API, asserting the 201; returns the body.
pub async fn register(app: &TestApp, username: &str, email: &str) -> Value {
    let (status, body) = post_json(
        app,
        "/api/v1/auth/register",
        json!({"username": username, "email": email, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "register {username}: {body}");
    body
}

/// An API login from `forwarded_for` (or the test's own address); the status and the body.
pub async fn api_login(
    app: &TestApp,
    login: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, Value) {
    post_json(
        app,
        "/api/v1/auth/login",
        json!({"username": login, "password": password}),
        forwarded_for,
    )
    .await
}

/// The access token of a successful API login.
pub async fn token_of(app: &TestApp, login: &str, password: &str) -> String {
    let (status, body) = api_login(app, login, password, None).await;
    assert_eq!(status, 200, "login of {login}: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Submits the second-factor form of the page `html` (the browser holds the MFA cookie).
pub async fn submit_code(browser: &Browser, app: &TestApp, html: &str, code: &str) -> Landing {
    let form = [
        (
            "csrf_token",
            input_value(html, "csrf_token").expect("a CSRF token"),
        ),
        ("code", code.to_owned()),
    ];
    let response = browser
        .http
        .post(app.url("/login/mfa"))
        .form(&form)
        .send()
        .await
        .unwrap();
    browser.follow(response).await
}

/// Every mail written to the server's mail directory so far, as text, oldest first.
pub fn mails(app: &TestApp) -> Vec<String> {
    let dir = &app.state.settings.mail.directory;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The mails to `address` so far (by their `To` header), as text.
pub fn mails_to(app: &TestApp, address: &str) -> Vec<String> {
    mails(app)
        .into_iter()
        .filter(|mail| {
            mail.lines()
                .any(|l| l.starts_with("To:") && l.to_lowercase().contains(address))
        })
        .collect()
}

/// The first link with `path` in a mail, unfolded from its quoted-printable text.
pub fn link_in(mail: &str, path: &str) -> url::Url {
    let unfolded = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = unfolded.find(path).expect("the link's path");
    let from = unfolded[..start].rfind("http").expect("a link");
    let end = unfolded[from..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .map_or(unfolded.len(), |e| from + e);
    url::Url::parse(&unfolded[from..end]).expect("a URL")
}
