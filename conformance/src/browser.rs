//! A scripted user agent: one cookie jar ("browser"), redirects followed only on the issuer's
//! origin, Latchkey's login / account-choice / consent forms filled in, and the response to the
//! client captured instead of delivered (a redirect's `Location`, or the form_post page's form).

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::Jar;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use url::{Origin, Url};

use crate::checks::Params;
use crate::html::{self, Form};

/// How far the user agent goes through the OP's pages.
#[derive(Debug, Clone, Copy)]
pub struct Interaction {
    /// Fill in and submit the login form when it appears.
    pub login: bool,
    /// Click Allow on the consent page (otherwise stop there).
    pub consent: bool,
}

impl Interaction {
    /// Log in and consent as needed.
    pub const FULL: Self = Self {
        login: true,
        consent: true,
    };
    /// Never interact: stop at the first page.
    pub const NONE: Self = Self {
        login: false,
        consent: false,
    };
}

/// The response as the client would receive it.
#[derive(Debug, Clone)]
pub struct Callback {
    /// `GET` (a redirect) or `POST` (the form_post form).
    pub method: String,
    /// The URL the user agent is sent to (with query and fragment).
    pub url: Url,
    /// Content type of a POST callback (the form's enctype).
    pub content_type: Option<String>,
    /// The URL's query parameters.
    pub query: Params,
    /// The URL's fragment parameters.
    pub fragment: Params,
    /// The POSTed form fields (form_post).
    pub form: Option<Params>,
}

impl Callback {
    /// Every response parameter wherever it travelled (query, fragment, body).
    pub fn all_params(&self) -> Params {
        let mut all = self.query.clone();
        all.extend(self.fragment.iter().cloned());
        if let Some(form) = &self.form {
            all.extend(form.iter().cloned());
        }
        all
    }

    /// The client reached by a redirect (or a link) to `target`.
    pub fn redirect(target: Url) -> Self {
        Self {
            method: "GET".into(),
            query: params_of(target.query_pairs()),
            fragment: target
                .fragment()
                .map(|f| params_of(url::form_urlencoded::parse(f.as_bytes())))
                .unwrap_or_default(),
            url: target,
            content_type: None,
            form: None,
        }
    }

    /// The redirect target without query and fragment.
    pub fn base(&self) -> String {
        let mut u = self.url.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }
}

/// Where an authorization request ended.
#[derive(Debug, Clone)]
pub enum Landing {
    /// The OP sent the user agent back to the client.
    Callback(Callback),
    /// The OP showed a page (error page, or a login/consent page the user agent did not act on).
    Page {
        status: u16,
        url: Url,
        content_type: String,
        body: String,
    },
}

/// What the person had to do during one authorization request.
#[derive(Debug, Clone, Default)]
pub struct Interactions {
    /// Login forms submitted.
    pub logins: u32,
    /// Login pages seen (submitted or not).
    pub login_pages: u32,
    /// Consent pages seen.
    pub consent_pages: u32,
    /// Account-choice pages seen.
    pub select_account_pages: u32,
    /// The requests made, for evidence: `METHOD url -> status`.
    pub hops: Vec<String>,
}

/// One browser.
pub struct Browser {
    client: reqwest::Client,
    issuer_origin: Origin,
    username: String,
    password: String,
}

/// A transport error (not an OP verdict).
pub type BrowserError = String;

fn params_of(pairs: url::form_urlencoded::Parse<'_>) -> Params {
    pairs
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Browser {
    /// A browser with an empty cookie jar. `tls` is built once and shared: building a TLS
    /// connector loads the system's root certificates, too slow to repeat for every browser.
    pub fn new(
        issuer: &Url,
        username: &str,
        password: &str,
        tls: &native_tls::TlsConnector,
    ) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar)
            .timeout(Duration::from_secs(30))
            .user_agent("latchkey-conformance (scripted browser)")
            .build()
            .expect("an HTTP client");
        Self {
            client,
            issuer_origin: issuer.origin(),
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Sends an authorization request (GET with the parameters in the query, or POST as a
    /// form) and walks through the OP's pages until it answers the client or shows a page.
    pub async fn authorize(
        &self,
        endpoint: &Url,
        params: &Params,
        post: bool,
        act: Interaction,
    ) -> Result<(Landing, Interactions), BrowserError> {
        let mut seen = Interactions::default();
        let mut current = endpoint.clone();
        let response = if post {
            seen.hops.push(format!("POST {endpoint}"));
            self.client.post(endpoint.clone()).form(params).send().await
        } else {
            let mut url = endpoint.clone();
            if !params.is_empty() {
                url.query_pairs_mut().extend_pairs(params.iter());
            }
            seen.hops.push(format!("GET {url}"));
            current = url.clone();
            self.client.get(url).send().await
        }
        .map_err(|e| format!("request to {current} failed: {e}"))?;
        self.walk(response, current, seen, act).await
    }

    /// Opens a page of the OP (e.g. the end-session endpoint, GET with the parameters in the
    /// query or POST as a form) and follows it as far as it goes without the person acting:
    /// redirects on the issuer's origin are followed, a redirect leaving it is captured.
    pub async fn open(
        &self,
        url: &Url,
        params: &Params,
        post: bool,
    ) -> Result<(Landing, Interactions), BrowserError> {
        self.authorize(url, params, post, Interaction::NONE).await
    }

    /// Submits a form of a page (as the person clicking one of its buttons, whose name and
    /// value are in `fields` with the hidden inputs) and follows the answer as [`Self::open`].
    pub async fn submit(
        &self,
        page: &Url,
        form: &Form,
        fields: &Params,
    ) -> Result<(Landing, Interactions), BrowserError> {
        let action = page
            .join(&form.action)
            .map_err(|e| format!("bad form action {:?}: {e}", form.action))?;
        let mut seen = Interactions::default();
        seen.hops
            .push(format!("{} {action}", form.method.to_ascii_uppercase()));
        let response = if form.method == "post" {
            self.client.post(action.clone()).form(fields).send().await
        } else {
            let mut url = action.clone();
            url.query_pairs_mut().extend_pairs(fields.iter());
            self.client.get(url).send().await
        }
        .map_err(|e| format!("submitting the form to {action} failed: {e}"))?;
        self.walk(response, action, seen, Interaction::NONE).await
    }

    /// Follows the OP's answers from `response` (the answer to a request for `current`).
    async fn walk(
        &self,
        mut response: reqwest::Response,
        mut current: Url,
        mut seen: Interactions,
        act: Interaction,
    ) -> Result<(Landing, Interactions), BrowserError> {
        for _ in 0..25 {
            let status = response.status().as_u16();
            if let Some(last) = seen.hops.last_mut() {
                last.push_str(&format!(" -> {status}"));
            }
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(format!("{status} without a Location header at {current}"))?
                    .to_owned();
                let target = current
                    .join(&location)
                    .map_err(|e| format!("bad Location {location:?}: {e}"))?;
                if target.origin() != self.issuer_origin {
                    return Ok((Landing::Callback(Callback::redirect(target)), seen));
                }
                seen.hops.push(format!("GET {target}"));
                current = target.clone();
                response = self
                    .client
                    .get(target)
                    .send()
                    .await
                    .map_err(|e| format!("GET {current} failed: {e}"))?;
                continue;
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response
                .text()
                .await
                .map_err(|e| format!("reading {current} failed: {e}"))?;
            let forms = html::forms(&body);

            // The form_post response: an auto-submitting form to the client.
            if let Some(form) = forms.iter().find(|f| self.is_form_post(f, &current)) {
                let action = current
                    .join(&form.action)
                    .map_err(|e| format!("bad form action {:?}: {e}", form.action))?;
                let fields: Params = form
                    .inputs
                    .iter()
                    .filter(|c| c.kind != "submit" && c.kind != "button")
                    .map(|c| (c.name.clone(), c.value.clone()))
                    .collect();
                return Ok((
                    Landing::Callback(Callback {
                        method: form.method.to_ascii_uppercase(),
                        query: params_of(action.query_pairs()),
                        fragment: Vec::new(),
                        url: action,
                        content_type: Some(
                            form.enctype
                                .clone()
                                .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
                        ),
                        form: Some(fields),
                    }),
                    seen,
                ));
            }

            let page = Landing::Page {
                status,
                url: current.clone(),
                content_type: content_type.clone(),
                body: body.clone(),
            };
            let next = if let Some(form) = forms.iter().find(|f| f.has_input("password")) {
                seen.login_pages += 1;
                if !act.login || status != 200 {
                    // A login page answered with an error (wrong credentials) ends here too.
                    return Ok((page, seen));
                }
                seen.logins += 1;
                let mut fields = form.hidden_fields();
                fields.push(("username".into(), self.username.clone()));
                fields.push(("password".into(), self.password.clone()));
                Some((form.clone(), fields))
            } else if let Some(form) = forms.iter().find(|f| f.has_button("decision", "allow")) {
                seen.consent_pages += 1;
                if !act.consent {
                    return Ok((page, seen));
                }
                let mut fields = form.hidden_fields();
                fields.push(("decision".into(), "allow".into()));
                Some((form.clone(), fields))
            } else if let Some(form) = forms.iter().find(|f| f.has_button("choice", "continue")) {
                seen.select_account_pages += 1;
                if !act.consent {
                    return Ok((page, seen));
                }
                let mut fields = form.hidden_fields();
                fields.push(("choice".into(), "continue".into()));
                Some((form.clone(), fields))
            } else {
                None
            };
            let Some((form, fields)) = next else {
                return Ok((page, seen));
            };
            let action = current
                .join(&form.action)
                .map_err(|e| format!("bad form action {:?}: {e}", form.action))?;
            seen.hops.push(format!("POST {action}"));
            current = action.clone();
            response = self
                .client
                .post(action)
                .form(&fields)
                .send()
                .await
                .map_err(|e| format!("POST {current} failed: {e}"))?;
        }
        Err(format!("more than 25 steps: {}", seen.hops.join(", ")))
    }

    /// A form that hands the response to the client: the form_post page (`id="form-post"`), or
    /// any POST form whose action leaves the issuer's origin.
    fn is_form_post(&self, form: &Form, base: &Url) -> bool {
        if form.id.as_deref() == Some("form-post") {
            return true;
        }
        form.method == "post"
            && base
                .join(&form.action)
                .is_ok_and(|a| a.origin() != self.issuer_origin)
    }
}
