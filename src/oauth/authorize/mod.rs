//! The authorization endpoint (`/oauth/authorize`, GET and POST) and the steps of the
//! interaction it may need: login, account choice, consent.
//!
//! A request is validated once. When the person must act, the validated request is stored and
//! the browser goes to the page; each page then resumes the flow through
//! [`paths::AUTHORIZE_RESUME`], which decides the next step again, until the response can be
//! issued. A stored request is answered once.

pub mod interaction;
pub mod request;
pub mod response;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::{ACR_MFA, GrantType, PlainToken, ResponseType, Scope, now};
use crate::http::{BodyError, media_type, read_body};
use crate::oauth::clients::{Client, find_client};
use crate::oauth::error::ErrorCode;
use crate::oauth::issue::{
    Authentication, CODE_PREFIX, TokenContext, load_subject, mint_access_token, mint_id_token,
};
use crate::oauth::params::Params;
use crate::paths;
use crate::sessions::browser::{self, BrowserSession};
use crate::startup::AppState;
use crate::store::authorization_requests::{self as pending, AuthorizationRequestRow};
use crate::store::grants::{self as grants, CodeRow, GrantRow};
use crate::store::{StoreError, consents, to_json};
use crate::web::PageError;

use request::AuthorizationRequest;
use response::AuthorizeError;

/// How long a person has to log in and consent before the request must start over.
const PENDING_REQUEST_TTL_SECS: i64 = 1800;

/// `GET /oauth/authorize`.
#[utoipa::path(
    get,
    path = crate::paths::AUTHORIZE,
    tag = "oauth",
    description = "The authorization endpoint (RFC 6749 §4.1, OpenID Connect Core §3.1.2), also at \
`/api/v1/oauth/authorize`. A person's browser comes here from a client; the answer is a redirect \
to the login, account choice or consent page, or back to the client's `redirect_uri` with `code` and \
`state` (or `error` and `state`), or, with `response_mode=form_post`, a page that posts them. When the \
client or its redirect URI cannot be trusted, an error page is shown instead (§4.1.2.1).",
    params(crate::oauth::schema::AuthorizationParams),
    responses(
        (status = 200, description = "The `form_post` page that sends the response to the client", content_type = "text/html"),
        (status = 302, description = "Back to the client's `redirect_uri` with `code` (or `error`) and `state`"),
        (status = 303, description = "To the login, account choice or consent page"),
        (status = 400, description = "An error page: unknown client, unregistered `redirect_uri`, or a malformed request", content_type = "text/html"),
        (status = 500, description = "An error page", content_type = "text/html"),
        (status = 503, description = "An error page: the database is unreachable", content_type = "text/html"),
    ),
    security(()),
)]
pub async fn authorize_get(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, AuthorizeError> {
    let params = Params::from_urlencoded(request.query_string().as_bytes());
    start(&state, &request, params).await
}

/// `POST /oauth/authorize` (OpenID Connect Core §3.1.2.1: the same parameters as a form).
#[utoipa::path(
    post,
    path = crate::paths::AUTHORIZE,
    tag = "oauth",
    description = "The authorization endpoint with its parameters as a form (OpenID Connect Core §3.1.2.1); \
answers as `GET` does.",
    request_body(content = crate::oauth::schema::AuthorizationParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The `form_post` page that sends the response to the client", content_type = "text/html"),
        (status = 302, description = "Back to the client's `redirect_uri` with `code` (or `error`) and `state`"),
        (status = 303, description = "To the login, account choice or consent page"),
        (status = 400, description = "An error page: not a form, unknown client, unregistered `redirect_uri`, or a malformed request", content_type = "text/html"),
        (status = 413, description = "An error page: the form is too large", content_type = "text/html"),
        (status = 500, description = "An error page", content_type = "text/html"),
        (status = 503, description = "An error page: the database is unreachable", content_type = "text/html"),
    ),
    security(()),
)]
pub async fn authorize_post(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AuthorizeError> {
    if media_type(&request) != "application/x-www-form-urlencoded" {
        return Err(PageError::bad_request(
            "An authorization request sent with POST must be a form (application/x-www-form-urlencoded).",
        )
        .into());
    }
    let body = read_body(payload, state.settings.max_body_bytes)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => PageError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "This request is too large",
                "The authorization request is larger than the server accepts.",
            ),
            BodyError::Broken => PageError::bad_request("The request could not be read."),
        })?;
    start(&state, &request, Params::from_urlencoded(&body)).await
}

/// Validates a new request and proceeds.
async fn start(
    state: &AppState,
    http: &HttpRequest,
    params: Params,
) -> Result<HttpResponse, AuthorizeError> {
    let client_id = request::client_id(&params)?;
    let lookup = client_id.clone();
    let client = state
        .store
        .run(move |conn| find_client(conn, &lookup))
        .await?
        .ok_or_else(|| {
            PageError::bad_request("The application that sent you here is not registered.")
        })?;
    let trusted = request::trust(&params, &client)?;
    let keys = state.keys.current();
    let validated = request::validate(&params, trusted, &keys, &state.settings.issuer)?;
    proceed(state, http, &client, validated, None, Consent::NotGiven).await
}

/// Whether the person gave consent in this request (by submitting the consent page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Not in this request: a missing consent shows the consent page.
    NotGiven,
    /// Allowed on the consent page: remembered once every step before it is met.
    Given,
}

/// A stored request and what happened to it so far.
pub struct Pending {
    /// Its id (in the pages' URLs and forms).
    pub id: String,
    /// The session a login made for it, if one did.
    pub login_session_id: Option<String>,
    /// The session chosen on its account-choice page, if one was.
    pub selected_session_id: Option<String>,
}

/// `GET /oauth/authorize/resume?request=<id>`: continues a stored request.
pub async fn resume(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, AuthorizeError> {
    let (client, stored, pending) = load_pending(&state, &query.request).await?;
    proceed(
        &state,
        &http,
        &client,
        stored,
        Some(pending),
        Consent::NotGiven,
    )
    .await
}

/// The query of the resume step and of the interaction pages.
#[derive(Debug, serde::Deserialize)]
pub struct ResumeQuery {
    /// The stored request's id.
    pub request: String,
}

/// Loads a stored request with its client, or explains on a page why it cannot continue.
pub async fn load_pending(
    state: &AppState,
    id: &str,
) -> Result<(Client, AuthorizationRequest, Pending), AuthorizeError> {
    if id.len() > 64 {
        return Err(expired().into());
    }
    let id = id.to_owned();
    let found = state
        .store
        .run(move |conn| match pending::find_live(conn, &id, now()) {
            Ok(row) => {
                let client = find_client(conn, &row.client_id)?;
                Ok(client.map(|c| (c, row)))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(other) => Err(other),
        })
        .await?;
    let (client, row) = found.ok_or_else(expired)?;
    let request: AuthorizationRequest = serde_json::from_str(&row.parameters)
        .map_err(|e| anyhow::anyhow!("stored authorization request is invalid: {e}"))?;
    Ok((
        client,
        request,
        Pending {
            id: row.id,
            login_session_id: row.login_session_id,
            selected_session_id: row.selected_session_id,
        },
    ))
}

fn expired() -> PageError {
    PageError::bad_request(
        "This sign-in request has expired or was already completed. Go back to the application \
         and start again.",
    )
}

/// The browser's live session, if any.
pub async fn current_session(
    state: &AppState,
    http: &HttpRequest,
) -> Result<Option<BrowserSession>, StoreError> {
    let Some(secret) = browser::cookie_secret(http) else {
        return Ok(None);
    };
    let crypto = state.crypto.clone();
    state
        .store
        .run(move |conn| browser::find_live(conn, &crypto, &secret))
        .await
}

/// Stores a request (once) so a page can continue it; returns its id.
async fn park(
    state: &AppState,
    request: &AuthorizationRequest,
    pending: Option<&Pending>,
) -> Result<String, AuthorizeError> {
    if let Some(pending) = pending {
        return Ok(pending.id.clone());
    }
    let id = PlainToken::generate("").expose().to_owned();
    let at = now();
    let row = AuthorizationRequestRow {
        id: id.clone(),
        client_id: request.client_id.clone(),
        parameters: to_json(request),
        login_session_id: None,
        selected_session_id: None,
        created_at: at,
        expires_at: at + PENDING_REQUEST_TTL_SECS,
    };
    state
        .store
        .run(move |conn| pending::insert(conn, &row))
        .await?;
    Ok(id)
}

fn go_to(page: &str, id: &str) -> HttpResponse {
    let mut url = url::Url::parse("http://placeholder").expect("a valid URL");
    url.set_path(page);
    url.query_pairs_mut().append_pair("request", id);
    let location = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// Decides the next step of a request: a page, an error for the client, or the response.
/// Every step is decided again on every call, in order (login, second factor, account choice,
/// consent), so that no page can complete a step the request is not yet at: a consent given
/// while a login or a second factor is still owed only leads to that step.
pub async fn proceed(
    state: &AppState,
    http: &HttpRequest,
    client: &Client,
    request: AuthorizationRequest,
    pending: Option<Pending>,
    consent: Consent,
) -> Result<HttpResponse, AuthorizeError> {
    let target = request.target(&state.settings.issuer);
    let to_client = |code: ErrorCode, description: &str| AuthorizeError::Redirect {
        target: target.clone(),
        code,
        description: description.to_owned(),
    };
    if request.asks_for_an_unknown_level() {
        return Err(to_client(
            ErrorCode::UnmetAuthenticationRequirements,
            "No sign-in here meets the essential acr values asked for",
        ));
    }
    let session = current_session(state, http).await?;
    let logged_in_for_this = match (&session, &pending) {
        (Some(s), Some(p)) => p.login_session_id.as_deref() == Some(s.id.as_str()),
        _ => false,
    };
    let at = now();
    let login_needed = match &session {
        None => true,
        Some(s) => {
            (request.prompt.login && !logged_in_for_this)
                // `max_age=0` asks for a fresh login as `prompt=login` does, even within the
                // second of the last one.
                || request.max_age.is_some_and(|max| {
                    (max == 0 || at - s.auth_time > max) && !logged_in_for_this
                })
                || request
                    .id_token_hint_sub
                    .as_ref()
                    .is_some_and(|sub| *sub != s.user_id)
        }
    };
    if login_needed {
        if request.prompt.none {
            return Err(to_client(ErrorCode::LoginRequired, "The user must log in"));
        }
        let id = park(state, &request, pending.as_ref()).await?;
        return Ok(go_to(paths::LOGIN, &id));
    }
    let session = session.expect("a session exists when no login is needed");
    {
        let sid = session.id.clone();
        state
            .store
            .run(move |conn| crate::store::sessions::touch(conn, &sid, now()))
            .await?;
    }
    if request.asks_for_mfa() && session.acr != ACR_MFA {
        let user_id = session.user_id.clone();
        let has_mfa = state
            .store
            .run(move |conn| Ok(crate::store::security::find(conn, &user_id)?.mfa_enabled))
            .await?;
        if has_mfa {
            if request.prompt.none {
                return Err(to_client(
                    ErrorCode::InteractionRequired,
                    "A second factor is required",
                ));
            }
            let id = park(state, &request, pending.as_ref()).await?;
            let challenge = crate::accounts::mfa::LoginChallenge {
                authorization_request: Some(id),
                step_up_session: Some(session.id.clone()),
                ..Default::default()
            };
            return interaction::start_second_factor(state, &session.user_id, challenge).await;
        }
        if request.requires_mfa() {
            return Err(to_client(
                ErrorCode::UnmetAuthenticationRequirements,
                "The essential acr (a second factor) cannot be met: the account has none",
            ));
        }
    }
    let selected_for_this = pending
        .as_ref()
        .and_then(|p| p.selected_session_id.as_deref())
        == Some(session.id.as_str());
    if request.prompt.select_account && !logged_in_for_this && !selected_for_this {
        let id = park(state, &request, pending.as_ref()).await?;
        return Ok(go_to(paths::SELECT_ACCOUNT, &id));
    }
    let scope = request.scope();
    let (user_id, client_id) = (session.user_id.clone(), client.id.clone());
    let remembered = state
        .store
        .run(move |conn| consents::granted_scope(conn, &user_id, &client_id))
        .await?;
    let consented = remembered
        .as_deref()
        .and_then(|s| Scope::parse(s).ok())
        .is_some_and(|granted| scope.is_subset_of(&granted));
    if consent == Consent::Given {
        let (user_id, client_id) = (session.user_id.clone(), client.id.clone());
        state
            .store
            .run(move |conn| remember_consent(conn, &user_id, &client_id, &scope))
            .await?;
    } else if !client.skip_consent && (request.prompt.consent || !consented) {
        if request.prompt.none {
            return Err(to_client(
                ErrorCode::ConsentRequired,
                "The user must consent",
            ));
        }
        let id = park(state, &request, pending.as_ref()).await?;
        return Ok(go_to(paths::CONSENT, &id));
    }
    complete(state, client, &request, &session, pending.as_ref()).await
}

/// Adds `scope` to what the user has consented to for the client.
fn remember_consent(
    conn: &mut crate::store::AnyConnection,
    user_id: &str,
    client_id: &str,
    scope: &Scope,
) -> Result<(), StoreError> {
    let mut granted = consents::granted_scope(conn, user_id, client_id)?
        .and_then(|s| Scope::parse(&s).ok())
        .unwrap_or_default()
        .to_string();
    for token in scope.iter() {
        granted.push(' ');
        granted.push_str(token);
    }
    let merged = Scope::parse(&granted).unwrap_or_default().to_string();
    consents::save(conn, user_id, client_id, &merged, now())
}

/// Issues the response of an authorized request: records the grant, then sends the code and
/// tokens its response type asks for.
pub async fn complete(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    session: &BrowserSession,
    pending: Option<&Pending>,
) -> Result<HttpResponse, AuthorizeError> {
    let response_type: ResponseType = request.response_type();
    // The client's scope as it is now: it may have been narrowed while the request waited.
    let scope = request.scope().intersect(&client.scope);
    let at = now();
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        user_id: session.user_id.clone(),
        session_id: Some(session.id.clone()),
        scope: scope.to_string(),
        claims: (!request.claims.is_empty()).then(|| to_json(&request.claims)),
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: to_json(&session.amr),
        offline: scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken),
        created_at: at,
        expires_at: at + state.settings.lifetimes.refresh_family as i64,
        revoked_at: None,
        revoked_reason: None,
        refresh_ttl_secs: None,
    };
    let code = response_type
        .code
        .then(|| PlainToken::generate(CODE_PREFIX));
    let code_row = code.as_ref().map(|code| CodeRow {
        code_hash: state.crypto.hash_token(code.expose()).0,
        grant_id: grant.id.clone(),
        client_id: client.id.clone(),
        redirect_uri: request.presented_redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request
            .code_challenge
            .as_ref()
            .map(|c| c.as_str().to_owned()),
        created_at: at,
        expires_at: at + state.settings.lifetimes.code as i64,
        used_at: None,
    });
    let pending_id = pending.map(|p| p.id.clone());
    let stored_grant = grant.clone();
    let subject = state
        .store
        .write(move |conn| {
            if let Some(id) = &pending_id
                && !pending::take(conn, id)?
            {
                return Ok(None);
            }
            grants::insert_grant(conn, &stored_grant)?;
            if let Some(row) = &code_row {
                grants::insert_code(conn, row)?;
            }
            Ok(Some(load_subject(conn, &stored_grant.user_id)?))
        })
        .await?
        .ok_or_else(expired)?;

    let authentication = Authentication {
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: session.amr.clone(),
        session_id: Some(session.id.clone()),
    };
    let ctx = TokenContext {
        client,
        subject: &subject,
        grant_id: &grant.id,
        scope: &scope,
        authentication: &authentication,
        claims: &request.claims,
    };
    let mut params: Vec<(&'static str, String)> = Vec::new();
    let access_token = if response_type.token {
        state.metrics.token_issued("implicit");
        Some(mint_access_token(state, &ctx)?.0)
    } else {
        None
    };
    if let Some(code) = &code {
        params.push(("code", code.expose().to_owned()));
    }
    if let Some(token) = &access_token {
        params.push(("access_token", token.clone()));
        params.push(("token_type", "Bearer".to_owned()));
        params.push((
            "expires_in",
            state.settings.lifetimes.access_token.to_string(),
        ));
        params.push(("scope", scope.to_string()));
    }
    if response_type.id_token {
        let id_token = mint_id_token(
            state,
            &ctx,
            request.nonce.as_deref(),
            access_token.as_deref(),
            code.as_ref().map(|c| c.expose()),
        )?;
        params.push(("id_token", id_token));
    }
    tracing::info!(client_id = %client.id, grant_id = %grant.id, response_type = %response_type, "authorization granted");
    Ok(request.target(&state.settings.issuer).deliver(params))
}
