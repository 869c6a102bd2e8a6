//! What every authorization-flow module shares (checklist §2, `AbstractOIDCCServerTest`): the
//! configure phase, building the authorization request, reading the callback, the token
//! request and the UserInfo call, each with the suite's conditions and levels.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use rand::distributions::Alphanumeric;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::{Map, Value};
use url::Url;

use crate::browser::{Browser, Callback, Interaction, Interactions, Landing};
use crate::checks::{self, IdTokenExpectations, Params, param};
use crate::config::{ClientConfig, Config};
use crate::html;
use crate::jose::{self, Jwt};
use crate::receiver::Inbox;
use crate::report::{Finding, Level, Record, Step, Stop, stop};

/// Shared by every module.
pub struct Env {
    pub config: Config,
    /// Back-channel HTTP (token, UserInfo, discovery): no cookies, no redirects.
    pub http: reqwest::Client,
    pub issuer_url: Url,
    /// The back-channel logout listener, when a module needs it.
    pub backchannel: Option<Inbox>,
    /// The TLS connector every browser shares.
    tls: native_tls::TlsConnector,
}

impl Env {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let tls = native_tls::TlsConnector::new()?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .user_agent("latchkey-conformance")
            .build()?;
        let issuer_url = Url::parse(&config.issuer)?;
        Ok(Self {
            config,
            http,
            issuer_url,
            backchannel: None,
            tls,
        })
    }

    /// Whether a URL's scheme satisfies the suite's https rule (or the local relaxation).
    pub fn scheme_ok(&self, url: &Url) -> bool {
        url.scheme() == "https" || (self.config.allow_http && url.scheme() == "http")
    }

    /// A fresh browser (empty cookie jar) for the configured user.
    pub fn browser(&self) -> Browser {
        Browser::new(
            &self.issuer_url,
            &self.config.user.username,
            &self.config.user.password,
            &self.tls,
        )
    }

    pub fn client(&self, which: Which) -> Client {
        self.optional_client(which)
            .expect("client, client2 and client_post are required")
    }

    /// A configured client; the logout clients are optional.
    pub fn optional_client(&self, which: Which) -> Option<Client> {
        let (c, auth): (&ClientConfig, AuthMethod) = match which {
            Which::One => (&self.config.client, AuthMethod::Basic),
            Which::Two => (&self.config.client2, AuthMethod::Basic),
            Which::Post => (&self.config.client_post, AuthMethod::Post),
            Which::Backchannel => (self.config.client_backchannel.as_ref()?, AuthMethod::Basic),
            Which::Frontchannel => (self.config.client_frontchannel.as_ref()?, AuthMethod::Basic),
        };
        Some(Client {
            id: c.client_id.clone(),
            secret: c.client_secret.clone(),
            auth,
        })
    }
}

/// The configured clients.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    One,
    Two,
    Post,
    /// Registered with `backchannel_logout_uri`.
    Backchannel,
    /// Registered with `frontchannel_logout_uri`.
    Frontchannel,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
}

/// A client as the harness uses it.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
    pub auth: AuthMethod,
}

/// A captured HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResult {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl HttpResult {
    async fn read(response: reqwest::Response) -> Result<Self, String> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?;
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The media type, lower-cased, without parameters.
    pub fn mime(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `HTTP 400 application/json {...}` (body shortened), for evidence.
    pub fn describe(&self) -> String {
        let mut body: String = self.body.chars().take(300).collect();
        if self.body.chars().count() > 300 {
            body.push('…');
        }
        format!(
            "HTTP {} {} {}",
            self.status,
            self.mime(),
            body.replace('\n', " ")
        )
    }
}

/// The server as the configure phase found it.
#[derive(Debug, Clone)]
pub struct Server {
    pub discovery: Map<String, Value>,
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub jwks: Value,
}

impl Server {
    /// A string array member of discovery.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.discovery.get(name).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    }
}

/// An authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: Client,
    pub params: Params,
    /// Sent as a POST form instead of a GET query.
    pub post: bool,
}

impl AuthRequest {
    pub fn get(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// Sets a parameter (replacing it in place, or appending it).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.params.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.params.retain(|(n, _)| n != name);
    }

    pub fn state(&self) -> Option<&str> {
        self.get("state")
    }

    pub fn nonce(&self) -> Option<&str> {
        self.get("nonce")
    }

    pub fn redirect_uri(&self) -> &str {
        self.get("redirect_uri").unwrap_or_default()
    }
}

/// The token endpoint's answer to a successful code exchange.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub json: Map<String, Value>,
    pub access_token: String,
    pub id_token: Jwt,
    pub refresh_token: Option<String>,
}

/// One completed happy flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub seen: Interactions,
    pub code: String,
    pub tokens: Tokens,
}

/// A random alphanumeric string.
pub fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// One module's running state.
pub struct Ctx {
    pub env: Arc<Env>,
    /// `response_mode=form_post` variant.
    pub form_post: bool,
    pub rec: Record,
}

impl Ctx {
    pub fn new(env: Arc<Env>, form_post: bool) -> Self {
        Self {
            env,
            form_post,
            rec: Record::default(),
        }
    }

    pub fn apply(&mut self, findings: Vec<Finding>) -> Step<()> {
        self.rec.apply(findings)
    }

    // ------------------------------------------------------------------------------------
    // Configure phase (§2.1)

    /// `GetDynamicServerConfiguration` (STOP).
    pub async fn fetch_discovery(&mut self) -> Step<(HttpResult, Map<String, Value>)> {
        let url = self.env.config.discovery_url();
        let response = match self.env.http.get(&url).send().await {
            Ok(r) => HttpResult::read(r).await,
            Err(e) => Err(e.to_string()),
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => return stop("GetDynamicServerConfiguration", format!("GET {url}: {e}")),
        };
        match response.json() {
            Some(Value::Object(map)) => Ok((response, map)),
            _ => stop(
                "GetDynamicServerConfiguration",
                format!("GET {url} is not a JSON object: {}", response.describe()),
            ),
        }
    }

    /// `FetchServerKeys` (STOP): GET jwks_uri, a JSON object.
    pub async fn fetch_jwks(&mut self, jwks_uri: &str) -> Step<Value> {
        let response = match self.env.http.get(jwks_uri).send().await {
            Ok(r) => HttpResult::read(r).await,
            Err(e) => Err(e.to_string()),
        };
        match response {
            Ok(r) => match r.json() {
                Some(v @ Value::Object(_)) => Ok(v),
                _ => stop(
                    "FetchServerKeys",
                    format!("GET {jwks_uri} is not a JSON object: {}", r.describe()),
                ),
            },
            Err(e) => stop("FetchServerKeys", format!("GET {jwks_uri}: {e}")),
        }
    }

    /// The configure phase of every flow module, for a client authenticating with `auth`.
    pub async fn configure(&mut self, auth: AuthMethod) -> Step<Server> {
        let (_, discovery) = self.fetch_discovery().await?;
        // CheckServerConfiguration (STOP)
        let url_member = |name: &str| -> Step<Url> {
            match discovery.get(name).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => Url::parse(s).or_else(|e| {
                    stop(
                        "CheckServerConfiguration",
                        format!("{name} {s:?} is not a URL: {e}"),
                    )
                }),
                _ => stop(
                    "CheckServerConfiguration",
                    format!("{name} is missing or empty"),
                ),
            }
        };
        let issuer = url_member("issuer")?;
        let _ = issuer;
        let issuer = discovery["issuer"].as_str().unwrap_or_default().to_owned();
        let authorization_endpoint = url_member("authorization_endpoint")?;
        let token_endpoint = url_member("token_endpoint")?;
        let userinfo_endpoint = discovery
            .get("userinfo_endpoint")
            .and_then(Value::as_str)
            .and_then(|s| Url::parse(s).ok());
        let jwks_uri = match discovery.get("jwks_uri").and_then(Value::as_str) {
            Some(u) => u.to_owned(),
            None => return stop("FetchServerKeys", "discovery has no jwks_uri"),
        };
        let jwks = self.fetch_jwks(&jwks_uri).await?;
        self.apply(jose::validate_jwks(&jwks, Level::Warning))?;

        // The client's authentication method must be advertised.
        let methods: Option<Vec<&str>> = discovery
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        match auth {
            AuthMethod::Basic => {
                if methods
                    .as_ref()
                    .is_some_and(|m| !m.contains(&"client_secret_basic"))
                {
                    self.rec.failure(
                        "EnsureServerConfigurationSupportsClientSecretBasic",
                        format!("token_endpoint_auth_methods_supported {methods:?} lacks client_secret_basic"),
                    );
                }
            }
            AuthMethod::Post => {
                if !methods
                    .as_ref()
                    .is_some_and(|m| m.contains(&"client_secret_post"))
                {
                    self.rec.failure(
                        "EnsureServerConfigurationSupportsClientSecretPost",
                        format!("token_endpoint_auth_methods_supported {methods:?} does not list client_secret_post"),
                    );
                }
            }
        }
        Ok(Server {
            discovery,
            issuer,
            authorization_endpoint,
            token_endpoint,
            userinfo_endpoint,
            jwks,
        })
    }

    // ------------------------------------------------------------------------------------
    // Authorization request (§2.2)

    /// The suite's request: client_id, redirect_uri, scope=openid, state, nonce,
    /// response_type=code (+ response_mode=form_post).
    pub fn request(&self, client: &Client) -> AuthRequest {
        let mut params: Params = vec![
            ("client_id".into(), client.id.clone()),
            ("redirect_uri".into(), self.env.config.redirect_uri.clone()),
            ("scope".into(), "openid".into()),
            ("state".into(), random_string(10)),
            ("nonce".into(), random_string(10)),
            ("response_type".into(), "code".into()),
        ];
        if self.form_post {
            params.push(("response_mode".into(), "form_post".into()));
        }
        AuthRequest {
            client: client.clone(),
            params,
            post: false,
        }
    }

    /// Sends the request through the browser.
    pub async fn authorize(
        &mut self,
        browser: &Browser,
        server: &Server,
        req: &AuthRequest,
        act: Interaction,
    ) -> Step<(Landing, Interactions)> {
        let result = browser
            .authorize(&server.authorization_endpoint, &req.params, req.post, act)
            .await
            .map_err(|e| Stop::Fail(format!("browser: {e}")))?;
        let (landing, seen) = &result;
        self.rec.note(format!("browser: {}", seen.hops.join(" | ")));
        match landing {
            Landing::Callback(cb) => self.rec.note(format!(
                "callback: {} {} form={:?}",
                cb.method, cb.url, cb.form
            )),
            Landing::Page {
                status, url, body, ..
            } => self
                .rec
                .note(format!("page: HTTP {status} {url} {}", html::summary(body))),
        }
        Ok(result)
    }

    /// The OP must have sent the browser back to the client.
    pub fn expect_callback(&self, landing: Landing, seen: &Interactions) -> Step<Callback> {
        match landing {
            Landing::Callback(cb) => Ok(cb),
            Landing::Page {
                status, url, body, ..
            } => stop(
                "ExpectRedirectUriHasBeenCalled",
                format!(
                    "the OP did not return to the client; it answered HTTP {status} at {url}: {} (requests: {})",
                    html::summary(&body),
                    seen.hops.join(", ")
                ),
            ),
        }
    }

    /// `processCallback`: picks where the response parameters are read (form body for
    /// form_post, else the query of the code flow) and runs the form_post checks.
    pub fn response_params(&mut self, cb: &Callback) -> Params {
        if self.form_post {
            if cb.method != "POST" {
                self.rec.failure(
                    "CheckCallbackHttpMethodIsPost",
                    format!(
                        "the response reached the client by {} {} (OAuth2-FP-2)",
                        cb.method, cb.url
                    ),
                );
            }
            if !cb
                .content_type
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
            {
                self.rec.failure(
                    "CheckCallbackContentTypeIsFormUrlEncoded",
                    match &cb.content_type {
                        Some(c) => format!("the form posts as {c:?}"),
                        None => format!("the callback was a {} without a form body", cb.method),
                    },
                );
            }
            if param(&cb.query, "code").is_some() {
                self.rec.failure(
                    "RejectAuthCodeInUrlQuery",
                    format!("code in the callback URL query: {}", cb.url),
                );
            }
            if param(&cb.query, "error").is_some() {
                self.rec.failure(
                    "RejectErrorInUrlQuery",
                    format!("error in the callback URL query: {}", cb.url),
                );
            }
            cb.form.clone().unwrap_or_default()
        } else {
            cb.query.clone()
        }
    }

    /// `CheckMatchingCallbackParameters`: the callback went to the redirect_uri sent, with its
    /// own query parameters intact.
    fn matching_callback(&mut self, cb: &Callback, req: &AuthRequest) {
        let Ok(sent) = Url::parse(req.redirect_uri()) else {
            return;
        };
        let mut base = sent.clone();
        base.set_query(None);
        base.set_fragment(None);
        if cb.base() != base.as_str() {
            self.rec.failure(
                "CheckMatchingCallbackParameters",
                format!("the response went to {} instead of {}", cb.base(), base),
            );
        }
        for (k, v) in sent.query_pairs() {
            if !cb.query.iter().any(|(n, w)| *n == *k && *w == *v) {
                self.rec.failure(
                    "CheckMatchingCallbackParameters",
                    format!("the redirect_uri query parameter {k}={v} was lost"),
                );
            }
        }
    }

    /// `processCallback` + `onAuthorizationCallbackResponse` for a flow expected to succeed.
    pub fn success_params(
        &mut self,
        server: &Server,
        cb: &Callback,
        req: &AuthRequest,
    ) -> Step<Params> {
        let params = self.response_params(cb);
        self.success_checks(server, cb, &params, req)?;
        Ok(params)
    }

    /// `onAuthorizationCallbackResponse` for a flow expected to succeed, on parameters
    /// already read by [`Self::response_params`].
    pub fn success_checks(
        &mut self,
        server: &Server,
        cb: &Callback,
        params: &Params,
        req: &AuthRequest,
    ) -> Step<()> {
        let params = params.clone();
        self.matching_callback(cb, req);
        let iss = checks::iss_findings(&params, &server.issuer);
        self.apply(iss)?;
        if let Some(error) = param(&params, "error") {
            return stop(
                "CheckIfAuthorizationEndpointError",
                format!(
                    "the authorization endpoint returned error={error} ({})",
                    param(&params, "error_description").unwrap_or_default()
                ),
            );
        }
        let state = checks::state_findings(&params, req.state());
        self.apply(state)
    }

    /// `ExtractAuthorizationCodeFromAuthorizationResponse` (STOP).
    pub fn extract_code(&self, params: &Params) -> Step<String> {
        match param(params, "code") {
            Some(c) if !c.is_empty() => Ok(c.to_owned()),
            _ => stop(
                "ExtractAuthorizationCodeFromAuthorizationResponse",
                format!("no code in the response {params:?}"),
            ),
        }
    }

    /// Authorization up to the code: request, browser, callback checks.
    pub async fn authorize_for_code(
        &mut self,
        browser: &Browser,
        server: &Server,
        req: &AuthRequest,
    ) -> Step<(Interactions, Params, String)> {
        let (landing, seen) = self
            .authorize(browser, server, req, Interaction::FULL)
            .await?;
        let cb = self.expect_callback(landing, &seen)?;
        let params = self.success_params(server, &cb, req)?;
        let code = self.extract_code(&params)?;
        Ok((seen, params, code))
    }

    // ------------------------------------------------------------------------------------
    // Token endpoint (§2.4)

    /// POSTs a form to the token endpoint with the client's authentication.
    pub async fn token_request(
        &self,
        server: &Server,
        client: &Client,
        form: Params,
    ) -> Step<HttpResult> {
        let mut form = form;
        let mut request = self.env.http.post(server.token_endpoint.clone());
        match client.auth {
            AuthMethod::Basic => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    enc(&client.id),
                    enc(&client.secret)
                ));
                request = request.header(AUTHORIZATION, format!("Basic {credentials}"));
            }
            AuthMethod::Post => {
                form.push(("client_id".into(), client.id.clone()));
                form.push(("client_secret".into(), client.secret.clone()));
            }
        }
        let response = request.form(&form).send().await;
        match response {
            Ok(r) => HttpResult::read(r)
                .await
                .or_else(|e| stop("CallTokenEndpoint", e)),
            Err(e) => stop(
                "CallTokenEndpoint",
                format!("POST {}: {e}", server.token_endpoint),
            ),
        }
    }

    /// The authorization_code token request of `req`.
    pub fn code_request_form(&self, req: &AuthRequest, code: &str) -> Params {
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.to_owned()),
            ("redirect_uri".into(), req.redirect_uri().to_owned()),
        ]
    }

    /// `requestAuthorizationCode`: the token request and its checks, then the standard ID
    /// token checks.
    pub async fn exchange_code(
        &mut self,
        server: &Server,
        req: &AuthRequest,
        code: &str,
        extra: Params,
    ) -> Step<Tokens> {
        let mut form = self.code_request_form(req, code);
        form.extend(extra);
        let response = self.token_request(server, &req.client, form).await?;
        self.rec
            .note(format!("token endpoint: {}", response.describe()));
        let tokens = self.token_success(server, response)?;
        self.rec.note(format!(
            "ID token header {} claims {}",
            serde_json::Value::Object(tokens.id_token.header.clone()),
            serde_json::Value::Object(tokens.id_token.claims.clone())
        ));
        self.check_id_token(server, &tokens.id_token, &req.client.id, req.nonce())?;
        Ok(tokens)
    }

    /// Checks of a successful token response that carries an ID token.
    pub fn token_success(&mut self, _server: &Server, response: HttpResult) -> Step<Tokens> {
        if response.status != 200 {
            return stop(
                "CheckTokenEndpointHttpStatus200",
                format!("the token endpoint answered {}", response.describe()),
            );
        }
        let json = match response.json() {
            Some(Value::Object(map)) => map,
            _ => {
                return stop(
                    "CallTokenEndpoint",
                    format!(
                        "the token response is not a JSON object: {}",
                        response.describe()
                    ),
                );
            }
        };
        if json.contains_key("error") {
            return stop(
                "CheckIfTokenEndpointResponseError",
                format!(
                    "the token endpoint returned an error: {}",
                    response.describe()
                ),
            );
        }
        let nonempty = |k: &str| {
            json.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(access_token), Some(_)) = (nonempty("access_token"), nonempty("token_type"))
        else {
            return stop(
                "CheckForAccessTokenValue",
                format!(
                    "access_token or token_type missing: {}",
                    response.describe()
                ),
            );
        };
        let access_token = access_token.to_owned();
        if let Some(expires_in) = json.get("expires_in") {
            self.validate_expires_in(expires_in);
        }
        let refresh_token = nonempty("refresh_token").map(str::to_owned);
        let id_token = match json.get("id_token").and_then(Value::as_str) {
            None => {
                return stop(
                    "ExtractIdTokenFromTokenResponse",
                    "no id_token in the token response (OIDCC-3.1.3.3)",
                );
            }
            Some(raw) => match Jwt::parse(raw) {
                Ok(jwt) => jwt,
                Err(e) => return stop("ExtractIdTokenFromTokenResponse", e),
            },
        };
        Ok(Tokens {
            json,
            access_token,
            id_token,
            refresh_token,
        })
    }

    /// `ValidateExpiresIn` (FAILURE): a JSON number, > 0, ≤ one year.
    pub fn validate_expires_in(&mut self, expires_in: &Value) {
        match expires_in.as_f64() {
            Some(v) if v > 0.0 && v <= 31_536_000.0 => {}
            _ => self.rec.failure(
                "ValidateExpiresIn",
                format!("expires_in {expires_in} is not a number in 1..=31536000 (RFC6749-5.1)"),
            ),
        }
    }

    /// `PerformStandardIdTokenChecks`.
    pub fn check_id_token(
        &mut self,
        server: &Server,
        token: &Jwt,
        client_id: &str,
        nonce: Option<&str>,
    ) -> Step<()> {
        let findings = checks::standard_id_token_checks(
            token,
            &server.jwks,
            &IdTokenExpectations {
                issuer: &server.issuer,
                client_id,
                nonce,
            },
        );
        self.apply(findings)
    }

    // ------------------------------------------------------------------------------------
    // UserInfo (§2.6)

    /// Calls UserInfo: GET with the Bearer header, POST with the header, or POST with the
    /// token in the body.
    pub async fn call_userinfo(
        &mut self,
        server: &Server,
        how: UserInfoCall,
        access_token: &str,
    ) -> Step<HttpResult> {
        let Some(endpoint) = server.userinfo_endpoint.clone() else {
            return stop(
                "SetProtectedResourceUrlToUserInfoEndpoint",
                "discovery has no userinfo_endpoint",
            );
        };
        let bearer = format!("Bearer {access_token}");
        let request = match how {
            UserInfoCall::Get => self
                .env
                .http
                .get(endpoint.clone())
                .header(AUTHORIZATION, bearer),
            UserInfoCall::PostHeader => self
                .env
                .http
                .post(endpoint.clone())
                .header(AUTHORIZATION, bearer)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(""),
            UserInfoCall::PostBody => self
                .env
                .http
                .post(endpoint.clone())
                .form(&[("access_token", access_token)]),
        };
        let result = match request.send().await {
            Ok(r) => HttpResult::read(r)
                .await
                .or_else(|e| stop("CallProtectedResource", e)),
            Err(e) => stop("CallProtectedResource", format!("{endpoint}: {e}")),
        }?;
        self.rec
            .note(format!("UserInfo ({how:?}): {}", result.describe()));
        Ok(result)
    }

    /// `requestProtectedResource`: GET UserInfo, 200 (FAILURE).
    pub async fn protected_resource(
        &mut self,
        server: &Server,
        access_token: &str,
    ) -> Step<HttpResult> {
        let response = self
            .call_userinfo(server, UserInfoCall::Get, access_token)
            .await?;
        if response.status != 200 {
            self.rec.failure(
                "EnsureHttpStatusCodeIs200",
                format!("UserInfo answered {}", response.describe()),
            );
        }
        Ok(response)
    }

    /// The whole happy flow: authorize, callback, token, ID token, UserInfo.
    pub async fn full_flow(
        &mut self,
        browser: &Browser,
        server: &Server,
        req: &AuthRequest,
    ) -> Step<Flow> {
        let (seen, _, code) = self.authorize_for_code(browser, server, req).await?;
        let tokens = self.exchange_code(server, req, &code, Vec::new()).await?;
        self.protected_resource(server, &tokens.access_token)
            .await?;
        Ok(Flow { seen, code, tokens })
    }

    /// An authorization request that must come back with an error asking for the person
    /// (`prompt=none` without a session): the generic error checks (§2.7) and
    /// `CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface` (FAILURE).
    pub async fn expect_interaction_error(
        &mut self,
        browser: &Browser,
        server: &Server,
        req: &AuthRequest,
    ) -> Step<()> {
        let (landing, seen) = self
            .authorize(browser, server, req, Interaction::NONE)
            .await?;
        let cb = self.expect_callback(landing, &seen)?;
        let params = self.response_params(&cb);
        let generic = checks::generic_error_response_findings(
            &params,
            &cb.all_params(),
            req.state(),
            &server.issuer,
        );
        self.apply(generic)?;
        let error = param(&params, "error");
        if !matches!(
            error,
            Some(
                "login_required"
                    | "interaction_required"
                    | "account_selection_required"
                    | "consent_required"
            )
        ) {
            self.rec.failure(
                "CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface",
                format!("error is {error:?}, expected login_required or another interaction error"),
            );
        }
        Ok(())
    }

    /// `AbstractOIDCCUserInfoTest`: the full UserInfo checks of a JSON answer.
    pub fn check_userinfo_response(
        &mut self,
        response: &HttpResult,
        id_token: &Jwt,
    ) -> Step<Map<String, Value>> {
        if response.status != 200 {
            self.rec.failure(
                "EnsureHttpStatusCodeIs200",
                format!("UserInfo answered {}", response.describe()),
            );
        }
        if response.mime() != "application/json" {
            self.rec.failure(
                "CheckUserInfoEndpointReturnedJsonContentType",
                format!(
                    "Content-Type is {:?}, not application/json (OIDCC-5.3.2)",
                    response.mime()
                ),
            );
        }
        let claims = match response.json() {
            Some(Value::Object(map)) => map,
            _ => {
                return stop(
                    "ExtractUserInfoFromUserInfoEndpointResponse",
                    format!("UserInfo is not a JSON object: {}", response.describe()),
                );
            }
        };
        for problem in checks::standard_claim_problems(&claims) {
            self.rec.failure("ValidateUserInfoStandardClaims", problem);
        }
        if claims
            .get("sub")
            .and_then(Value::as_str)
            .is_none_or(|s| s.is_empty())
        {
            self.rec
                .failure("EnsureUserInfoContainsSub", "UserInfo has no sub");
        }
        if let Some(problem) = checks::updated_at_problem(&claims) {
            self.rec.failure("EnsureUserInfoUpdatedAtValid", problem);
        }
        if let Some(problem) = checks::claim_sources_problem(&claims) {
            self.rec.failure(
                "EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources",
                problem,
            );
        }
        let id_sub = id_token.str_claim("sub");
        let ui_sub = claims.get("sub").and_then(Value::as_str);
        if id_sub != ui_sub {
            self.rec.failure(
                "VerifyUserInfoAndIdTokenInTokenEndpointSameSub",
                format!("UserInfo sub {ui_sub:?} differs from the ID token sub {id_sub:?}"),
            );
        }
        Ok(claims)
    }

    /// Placeholder assertion (§10): the OP answered the browser with an HTML page of status
    /// 200 or 4xx — an error page, not the login form — and never redirected to the client.
    pub fn expect_error_page(
        &mut self,
        landing: &Landing,
        seen: &Interactions,
        condition: &'static str,
    ) -> Step<String> {
        match landing {
            Landing::Callback(cb) => stop(
                condition,
                format!(
                    "the OP redirected to the client instead of showing an error page: {} {}",
                    cb.method, cb.url
                ),
            ),
            Landing::Page {
                status,
                url,
                content_type,
                body,
            } => {
                let summary = html::summary(body);
                if !(*status == 200 || (400..500).contains(status)) {
                    return stop(
                        condition,
                        format!(
                            "the error page has status {status} (expected 200 or 4xx) at {url}: {summary}"
                        ),
                    );
                }
                if !content_type.to_ascii_lowercase().starts_with("text/html") {
                    return stop(
                        condition,
                        format!(
                            "the OP answered {status} with {content_type:?}, not an HTML page, at {url}"
                        ),
                    );
                }
                let _ = seen;
                if html::forms(body).iter().any(|f| f.has_input("password")) {
                    return stop(
                        condition,
                        format!("the OP showed its login page instead of an error page at {url}"),
                    );
                }
                Ok(format!("HTTP {status} {summary}"))
            }
        }
    }
}

/// How UserInfo is called.
#[derive(Debug, Clone, Copy)]
pub enum UserInfoCall {
    Get,
    PostHeader,
    PostBody,
}
