//! The pages of an authorization request: login, account choice and consent.
//!
//! Every form carries a CSRF token. Each POST ends in a redirect to the resume step (or, for
//! consent, in the response itself), so reloading a page never submits a form twice.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::{ACR_PASSWORD, Scope, now};
use crate::http::{BodyError, read_body};
use crate::oauth::clients::Client;
use crate::oauth::error::ErrorCode;
use crate::paths;
use crate::sessions::browser::{self, BrowserSession, ClientInfo};
use crate::startup::AppState;
use crate::store::authorization_requests as pending;
use crate::store::{consents, sessions, users};
use crate::web::pages::{ConsentPage, LoginPage, SelectAccountPage, describe_scope};
use crate::web::{PageError, csrf, render};

use super::request::AuthorizationRequest;
use super::response::AuthorizeError;
use super::{Pending, ResumeQuery, complete, current_session, go_to, load_pending};

/// Reads a form posted by one of our pages and checks its CSRF token.
async fn read_form<T: serde::de::DeserializeOwned>(
    state: &AppState,
    http: &HttpRequest,
    payload: web::Payload,
) -> Result<T, PageError> {
    let body = read_body(payload, 16 * 1024).await.map_err(|e| match e {
        BodyError::TooLarge => PageError::bad_request("The form is too large."),
        BodyError::Broken => PageError::bad_request("The form could not be read."),
    })?;
    let token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "csrf_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !csrf::verify(http, &state.crypto, &token) {
        return Err(PageError::csrf());
    }
    serde_urlencoded::from_bytes(&body).map_err(|_| {
        PageError::bad_request("The form is missing a field or has an unexpected one.")
    })
}

/// Renders a page with its CSRF token, setting the CSRF cookie when the browser has none.
fn page_with_csrf(
    state: &AppState,
    http: &HttpRequest,
    status: StatusCode,
    build: impl FnOnce(&str) -> HttpResponse,
) -> HttpResponse {
    let guard = csrf::issue(http, &state.crypto, state.settings.is_https());
    let mut response = build(&guard.token);
    response.head_mut().status = status;
    if let Some(cookie) = guard.cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

fn login_page(
    state: &AppState,
    http: &HttpRequest,
    status: StatusCode,
    client: &Client,
    pending: &Pending,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    page_with_csrf(state, http, status, |token| {
        render(
            status,
            &LoginPage {
                client,
                request_id: &pending.id,
                csrf_token: token,
                username,
                error,
            },
        )
    })
}

/// `GET /login?request=<id>`.
pub async fn login_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, AuthorizeError> {
    let (client, request, pending) = load_pending(&state, &query.request).await?;
    let hint = request.login_hint.clone().unwrap_or_default();
    Ok(login_page(
        &state,
        &http,
        StatusCode::OK,
        &client,
        &pending,
        &hint,
        None,
    ))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    request: String,
    username: String,
    password: String,
}

/// `POST /login`: checks the credentials, starts the session, and resumes the request.
pub async fn login(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AuthorizeError> {
    let form: LoginForm = read_form(&state, &http, payload).await?;
    let (client, _, pending) = load_pending(&state, &form.request).await?;
    let login = form.username.trim().to_owned();
    let lookup = login.clone();
    let user = state
        .store
        .run(move |conn| match users::find_by_login(conn, &lookup) {
            Ok(user) => Ok(Some(user)),
            Err(crate::store::StoreError::NotFound) => Ok(None),
            Err(other) => Err(other),
        })
        .await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = state
        .passwords
        .verify(SecretString::from(form.password), hash)
        .await?;
    let user = match user {
        Some(user) if password_ok && user.status == "active" => user,
        _ => {
            tracing::info!(target: "latchkey::security", event = "login_failed", client_id = %client.id, "login failed");
            return Ok(login_page(
                &state,
                &http,
                StatusCode::UNAUTHORIZED,
                &client,
                &pending,
                &login,
                Some("The username or password is incorrect."),
            ));
        }
    };
    let previous = browser::cookie_secret(&http);
    let crypto = state.crypto.clone();
    let lifetime = state.settings.lifetimes.session;
    let info = ClientInfo::of(&http);
    let pending_id = pending.id.clone();
    let user_id = user.id.clone();
    let (session, secret) = state
        .store
        .run(move |conn| {
            // A new login replaces the browser's previous session.
            if let Some(previous) = previous {
                if let Some(old) = browser::find_live(conn, &crypto, &previous)? {
                    sessions::revoke(conn, &old.id, now())?;
                }
            }
            let started = browser::start(
                conn,
                &crypto,
                &user_id,
                &["pwd"],
                ACR_PASSWORD,
                lifetime,
                &info,
            )?;
            pending::set_login_session(conn, &pending_id, &started.0.id)?;
            users::touch_login(conn, &user_id, now())?;
            Ok(started)
        })
        .await?;
    tracing::info!(target: "latchkey::security", event = "login", user_id = %user.id, session_id = %session.id, client_id = %client.id, "login succeeded");
    let mut response = go_to(paths::AUTHORIZE_RESUME, &pending.id);
    let _ = response.add_cookie(&browser::cookie(
        &secret,
        lifetime,
        state.settings.is_https(),
    ));
    Ok(response)
}

/// The session and the stored request behind a consent or account-choice page; without a
/// session the person is sent back through the flow (to the login page).
async fn session_for_page(
    state: &AppState,
    http: &HttpRequest,
    id: &str,
) -> Result<
    Result<(Client, AuthorizationRequest, Pending, BrowserSession), HttpResponse>,
    AuthorizeError,
> {
    let (client, request, pending) = load_pending(state, id).await?;
    match current_session(state, http).await? {
        Some(session) => Ok(Ok((client, request, pending, session))),
        None => Ok(Err(go_to(paths::AUTHORIZE_RESUME, &pending.id))),
    }
}

async fn username_of(state: &AppState, user_id: &str) -> Result<String, AuthorizeError> {
    let id = user_id.to_owned();
    Ok(state
        .store
        .run(move |conn| users::find(conn, &id))
        .await?
        .username)
}

/// `GET /consent?request=<id>`.
pub async fn consent_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, AuthorizeError> {
    let (client, request, pending, session) =
        match session_for_page(&state, &http, &query.request).await? {
            Ok(found) => found,
            Err(redirect) => return Ok(redirect),
        };
    let username = username_of(&state, &session.user_id).await?;
    let mut scopes: Vec<String> = request.scope().iter().map(describe_scope).collect();
    for claim in request
        .claims
        .userinfo
        .keys()
        .chain(request.claims.id_token.keys())
    {
        scopes.push(format!("See your {}", claim.replace('_', " ")));
    }
    if scopes.is_empty() {
        scopes.push("Know that you signed in".to_owned());
    }
    Ok(page_with_csrf(&state, &http, StatusCode::OK, |token| {
        render(
            StatusCode::OK,
            &ConsentPage {
                client: &client,
                request_id: &pending.id,
                csrf_token: token,
                username: &username,
                scopes,
            },
        )
    }))
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: String,
    decision: String,
}

/// `POST /consent`: allow (remember the scope, issue the response) or deny (`access_denied`).
pub async fn consent(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AuthorizeError> {
    let form: ConsentForm = read_form(&state, &http, payload).await?;
    let (client, request, pending, session) =
        match session_for_page(&state, &http, &form.request).await? {
            Ok(found) => found,
            Err(redirect) => return Ok(redirect),
        };
    match form.decision.as_str() {
        "allow" => {
            let (user_id, client_id) = (session.user_id.clone(), client.id.clone());
            let scope = request.scope();
            state
                .store
                .run(move |conn| {
                    let mut granted = consents::granted_scope(conn, &user_id, &client_id)?
                        .and_then(|s| Scope::parse(&s).ok())
                        .unwrap_or_default()
                        .to_string();
                    for token in scope.iter() {
                        granted.push(' ');
                        granted.push_str(token);
                    }
                    let merged = Scope::parse(&granted).unwrap_or_default().to_string();
                    consents::save(conn, &user_id, &client_id, &merged, now())
                })
                .await?;
            complete(&state, &client, &request, &session, Some(&pending)).await
        }
        "deny" => {
            let id = pending.id.clone();
            state
                .store
                .run(move |conn| pending::take(conn, &id))
                .await?;
            tracing::info!(client_id = %client.id, "consent denied");
            Ok(request
                .target(&state.settings.issuer)
                .error(ErrorCode::AccessDenied, "The user denied the request"))
        }
        _ => Err(PageError::bad_request("Choose Allow or Deny.").into()),
    }
}

/// `GET /select-account?request=<id>`.
pub async fn select_account_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, AuthorizeError> {
    let (client, _, pending, session) =
        match session_for_page(&state, &http, &query.request).await? {
            Ok(found) => found,
            Err(redirect) => return Ok(redirect),
        };
    let username = username_of(&state, &session.user_id).await?;
    Ok(page_with_csrf(&state, &http, StatusCode::OK, |token| {
        render(
            StatusCode::OK,
            &SelectAccountPage {
                client: &client,
                request_id: &pending.id,
                csrf_token: token,
                username: &username,
            },
        )
    }))
}

/// The account-choice form.
#[derive(Debug, Deserialize)]
pub struct SelectAccountForm {
    request: String,
    choice: String,
}

/// `POST /select-account`: continue with the signed-in account, or log in as another.
pub async fn select_account(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AuthorizeError> {
    let form: SelectAccountForm = read_form(&state, &http, payload).await?;
    let (_, _, pending, session) = match session_for_page(&state, &http, &form.request).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    match form.choice.as_str() {
        "continue" => {
            let (id, sid) = (pending.id.clone(), session.id.clone());
            state
                .store
                .run(move |conn| pending::set_login_session(conn, &id, &sid))
                .await?;
            Ok(go_to(paths::AUTHORIZE_RESUME, &pending.id))
        }
        "other" => Ok(go_to(paths::LOGIN, &pending.id)),
        _ => Err(PageError::bad_request("Choose an account.").into()),
    }
}
