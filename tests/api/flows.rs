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
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
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
        Self::at(&app.address)
    }

    /// A new browser with an empty cookie jar for the server at `origin` (a server process).
    pub fn at(origin: &str) -> Self {
        Self {
            http: http_client(),
            origin: origin.trim_end_matches('/').to_owned(),
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

/// Decodes the payload of a JWT (no verification: the RP tests verify signatures).
pub fn jwt_payload(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON")
}

/// An authorization URL for `client_id` with the callback redirect URI and `params`.
pub fn authorize_url(app: &TestApp, client_id: &str, params: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&app.url("/oauth/authorize")).unwrap();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("client_id", client_id);
        query.append_pair("redirect_uri", "https://rp.example/callback");
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    url.to_string()
}

/// Tokens from one token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

impl Tokens {
    fn from_body(body: serde_json::Value) -> Self {
        Self {
            access_token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            id_token: body["id_token"].as_str().map(str::to_owned),
        }
    }
}

/// The form-urlencoding RFC 6749 §2.3.1 applies before Basic encoding.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl TestApp {
    /// POSTs a form to the token endpoint with the client's Basic credentials.
    pub async fn token_request(
        &self,
        client: &ClientView,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/oauth/token")).form(form);
        if let Some(secret) = &client.client_secret {
            request = request.basic_auth(form_encode(&client.client_id), Some(form_encode(secret)));
        }
        request.send().await.unwrap()
    }

    /// POSTs a form to `path` with the client's Basic credentials.
    pub async fn client_post(
        &self,
        client: &ClientView,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let secret = client.client_secret.clone().unwrap_or_default();
        self.client
            .post(self.url(path))
            .basic_auth(form_encode(&client.client_id), Some(form_encode(&secret)))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Logs `username` in through `browser` and returns an authorization code.
    pub async fn code_for(
        &self,
        browser: &Browser,
        client: &ClientView,
        username: &str,
        password: &str,
        params: &[(&str, &str)],
    ) -> String {
        let mut all = vec![("response_type", "code"), ("state", "st")];
        all.extend_from_slice(params);
        let url = authorize_url(self, &client.client_id, &all);
        let callback = browser.authorize(&url, username, password).await.left();
        param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"))
    }

    /// Exchanges a code, asserting success.
    pub async fn exchange(&self, client: &ClientView, code: &str) -> Tokens {
        let response = self
            .token_request(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", "https://rp.example/callback"),
                ],
            )
            .await;
        assert_eq!(response.status(), 200, "code exchange");
        Tokens::from_body(response.json().await.unwrap())
    }

    /// Refreshes, returning the raw response.
    pub async fn refresh(&self, client: &ClientView, refresh_token: &str) -> reqwest::Response {
        self.token_request(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A full login for `scope` with a new browser; returns the tokens.
    pub async fn tokens_for(
        &self,
        client: &ClientView,
        username: &str,
        password: &str,
        scope: &str,
    ) -> Tokens {
        let browser = Browser::new(self);
        let code = self
            .code_for(
                &browser,
                client,
                username,
                password,
                &[("scope", scope), ("nonce", "n-1")],
            )
            .await;
        self.exchange(client, &code).await
    }

    /// Introspects a token with `client`'s credentials.
    pub async fn introspect(&self, client: &ClientView, token: &str) -> serde_json::Value {
        let response = self
            .client_post(client, "/oauth/introspect", &[("token", token)])
            .await;
        assert_eq!(response.status(), 200, "introspection");
        response.json().await.unwrap()
    }

    /// Calls UserInfo with a bearer token; returns the status and the body text.
    pub async fn userinfo(&self, token: &str) -> (u16, String, Option<String>) {
        let response = self
            .client
            .get(self.url("/oauth/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, response.text().await.unwrap(), challenge)
    }

    /// Counts the rows of a table.
    pub async fn count(&self, table: &'static str) -> i64 {
        self.state
            .store
            .run(move |conn| {
                use diesel::RunQueryDsl;
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let row: Count = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                    .get_result(conn)?;
                Ok(row.n)
            })
            .await
            .unwrap()
    }
}
