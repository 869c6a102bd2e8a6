//! Helpers that act as a person in a browser, over plain HTTP with a cookie jar: follow the
//! server's redirects, fill in the login form, answer the consent page. The browser tests in
//! Chromium cover the same pages with a real rendering engine.

use latchkey::accounts::passwords::hash_blocking;
use latchkey::accounts::users::{NewUser, create_user};
use latchkey::domain::{Email, Username};
use latchkey::oauth::clients::{ClientRequest, ClientView, create_client};
use url::Url;

use crate::helpers::{TestApp, http_client};

/// Where a browser ends up after following the server's redirects.
#[derive(Debug)]
pub enum Landing {
    /// A redirect away from the server (to the client): the full URL.
    Left(Url),
    /// A page of the server: its URL, status and HTML.
    Page { url: Url, status: u16, html: String },
}

impl Landing {
    /// The URL the browser left for; panics on a page.
    pub fn left(self) -> Url {
        match self {
            Landing::Left(url) => url,
            Landing::Page { url, status, html } => {
                panic!("expected a redirect to the client, got page {url} ({status}): {html}")
            }
        }
    }

    /// The page's HTML; panics on a redirect.
    pub fn page(self) -> (Url, u16, String) {
        match self {
            Landing::Page { url, status, html } => (url, status, html),
            Landing::Left(url) => panic!("expected a page, left for {url}"),
        }
    }
}

/// A person's browser: one cookie jar.
pub struct Browser {
    pub http: reqwest::Client,
    origin: String,
}

/// Decodes the HTML entities askama writes in attribute values.
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// The value of the input named `name` in `html`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Every hidden input of a form_post page, with the form's action.
pub fn form_post_fields(html: &str) -> (String, Vec<(String, String)>) {
    let action_marker = "action=\"";
    let start = html.find(action_marker).expect("a form action") + action_marker.len();
    let end = html[start..].find('"').unwrap() + start;
    let action = unescape(&html[start..end]);
    let mut fields = Vec::new();
    for chunk in html.split("<input type=\"hidden\" name=\"").skip(1) {
        let name_end = chunk.find('"').unwrap();
        let name = chunk[..name_end].to_owned();
        let value = input_value(&format!("name=\"{}", chunk), &name).unwrap_or_default();
        fields.push((name, value));
    }
    (action, fields)
}

impl Browser {
    /// A new browser with an empty cookie jar.
    pub fn new(app: &TestApp) -> Self {
        Self {
            http: http_client(),
            origin: app.address.clone(),
        }
    }

    /// Follows redirects within the server from `url` until a page or a redirect away.
    pub async fn visit(&self, url: &str) -> Landing {
        self.follow(self.http.get(url).send().await.unwrap()).await
    }

    /// Follows the redirects a response starts.
    pub async fn follow(&self, mut response: reqwest::Response) -> Landing {
        loop {
            let current = response.url().clone();
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                let next = current.join(&location).unwrap();
                if !next.as_str().starts_with(&self.origin) {
                    return Landing::Left(next);
                }
                response = self.http.get(next).send().await.unwrap();
                continue;
            }
            let html = response.text().await.unwrap();
            return Landing::Page {
                url: current,
                status,
                html,
            };
        }
    }

    /// Submits the login form on `html` with these credentials.
    pub async fn submit_login(&self, html: &str, username: &str, password: &str) -> Landing {
        let form = [
            (
                "csrf_token",
                input_value(html, "csrf_token").expect("a CSRF token"),
            ),
            (
                "request",
                input_value(html, "request").expect("a request id"),
            ),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        let response = self
            .http
            .post(format!("{}/login", self.origin))
            .form(&form)
            .send()
            .await
            .unwrap();
        self.follow(response).await
    }

    /// Answers the consent page on `html`.
    pub async fn submit_consent(&self, html: &str, allow: bool) -> Landing {
        let form = [
            (
                "csrf_token",
                input_value(html, "csrf_token").expect("a CSRF token"),
            ),
            (
                "request",
                input_value(html, "request").expect("a request id"),
            ),
            ("decision", if allow { "allow" } else { "deny" }.to_owned()),
        ];
        let response = self
            .http
            .post(format!("{}/consent", self.origin))
            .form(&form)
            .send()
            .await
            .unwrap();
        self.follow(response).await
    }

    /// Goes through login and consent (whichever are shown) and returns where the browser
    /// lands after them: normally the redirect to the client, or a form_post page.
    pub async fn authorize(&self, url: &str, username: &str, password: &str) -> Landing {
        let mut landing = self.visit(url).await;
        for _ in 0..4 {
            let Landing::Page { url, html, status } = &landing else {
                return landing;
            };
            landing = if url.path() == "/login" {
                self.submit_login(html, username, password).await
            } else if url.path() == "/consent" {
                self.submit_consent(html, true).await
            } else {
                return Landing::Page {
                    url: url.clone(),
                    status: *status,
                    html: html.clone(),
                };
            };
        }
        landing
    }
}

/// A query (or fragment) parameter of a URL.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A parameter of a URL's fragment.
pub fn fragment_param(url: &Url, name: &str) -> Option<String> {
    url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl TestApp {
    /// Creates a user with a password and the `user` role; returns its id.
    pub async fn create_user(&self, username: &str, password: &str) -> String {
        let (username, email) = (
            Username::parse(username).unwrap(),
            Email::parse(&format!("{username}@example.com")).unwrap(),
        );
        let hash = hash_blocking(password).unwrap();
        self.state
            .store
            .run(move |conn| {
                Ok(create_user(
                    conn,
                    NewUser {
                        username,
                        email,
                        password_hash: Some(hash),
                        roles: vec!["user".into()],
                        email_verified: true,
                    },
                ))
            })
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// Registers a client; returns its view with the secret.
    pub async fn create_client(&self, request: ClientRequest) -> ClientView {
        let registration = request.validate().expect("valid client metadata");
        let crypto = self.state.crypto.clone();
        self.state
            .store
            .run(move |conn| create_client(conn, &crypto, registration))
            .await
            .unwrap()
    }

    /// A confidential web client for `https://rp.example/callback`.
    pub async fn web_client(
        &self,
        name: &str,
        tweak: impl FnOnce(&mut ClientRequest),
    ) -> ClientView {
        let mut request = ClientRequest {
            name: name.into(),
            redirect_uris: vec!["https://rp.example/callback".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..Default::default()
        };
        tweak(&mut request);
        self.create_client(request).await
    }
}
