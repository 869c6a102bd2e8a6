//! Shared pieces of the admin API tests: tokens for the bootstrap admin and for users with
//! chosen roles, and a small bearer-token JSON client.

use latchkey::accounts::passwords::hash_blocking;
use latchkey::accounts::users::{NewUser, create_user};
use latchkey::domain::{Email, Username};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, TestApp};

/// The password of every user made by [`user_with_roles`].
pub const USER_PASSWORD: &str = "correct horse battery staple";

/// Logs in through `POST /api/v1/auth/login`; returns the access token.
pub async fn login(app: &TestApp, username: &str, password: &str) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "login of {username}: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// An access token of the bootstrap admin (role `admin`, permission `*`).
pub async fn admin_token(app: &TestApp) -> String {
    login(app, "admin", ADMIN_PASSWORD).await
}

/// Creates a user `username` (email `<username>@example.com`) with `roles`, which must exist;
/// returns its id and an access token.
pub async fn user_with_roles(app: &TestApp, username: &str, roles: &[&str]) -> (String, String) {
    let (name, email) = (
        Username::parse(username).unwrap(),
        Email::parse(&format!("{username}@example.com")).unwrap(),
    );
    let hash = hash_blocking(USER_PASSWORD).unwrap();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let id = app
        .state
        .store
        .run(move |conn| {
            Ok(create_user(
                conn,
                NewUser {
                    username: name,
                    email,
                    password_hash: Some(hash),
                    roles,
                    email_verified: true,
                },
            ))
        })
        .await
        .unwrap()
        .unwrap()
        .id;
    let token = login(app, username, USER_PASSWORD).await;
    (id, token)
}

/// A JSON client of the API that sends one bearer token.
pub struct Api<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Api<'a> {
    /// A client sending `token`.
    pub fn new(app: &'a TestApp, token: &str) -> Self {
        Self {
            app,
            token: token.to_owned(),
        }
    }

    /// Sends `method` to `/api/v1{path}` with an optional JSON body; returns the status and
    /// the JSON body (`Null` when the body is empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// GET returning the raw response (for exports and headers).
    pub async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }
}

/// Tries a login through `POST /api/v1/auth/login`; returns the status and the body, whatever
/// they are (for refusals).
pub async fn try_login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT (its payload, not verified: the server verified it when it issued it).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWS in compact form");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A query string (`?a=1&b=x%20y`) with every value percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    format!("?{}", serializer.finish())
}

/// Creates a role through `POST /api/v1/admin/roles`, asserting the 201; returns the role.
pub async fn create_role(api: &Api<'_>, name: &str, permissions: &[&str]) -> Value {
    let (status, role) = api
        .post(
            "/admin/roles",
            json!({"name": name, "permissions": permissions}),
        )
        .await;
    assert_eq!(status, 201, "create role {name}: {role}");
    role
}

impl Api<'_> {
    /// Sends `method` to `/api/v1{path}` with an optional JSON body and returns the raw
    /// response (for headers such as `Location` and `WWW-Authenticate`).
    pub async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

/// A client-credentials token request with HTTP Basic authentication.
pub async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
