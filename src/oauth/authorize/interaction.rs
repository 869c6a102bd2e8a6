//! The pages of an authorization request: login, account choice and consent.
//!
//! Every form carries a CSRF token. Each POST ends in a redirect to the resume step (or, for
//! consent, in the response itself), so reloading a page never submits a form twice.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::accounts::login::{Attempt, CredentialError, SignIn, record_login, verify_credentials};
use crate::accounts::mfa::{self, LoginChallenge, SecondFactorError};
use crate::domain::{ACR_MFA, ACR_PASSWORD, now};
use crate::oauth::clients::Client;
use crate::oauth::error::ErrorCode;
use crate::paths;
use crate::sessions::browser::{self, BrowserSession, ClientInfo};
use crate::startup::AppState;
use crate::store::authorization_requests as pending;
use crate::store::{sessions, to_json, users};
use crate::web::csrf::{page_with_csrf, read_form};
use crate::web::pages::{ConsentPage, LoginPage, MfaPage, SelectAccountPage, describe_scope};
use crate::web::{PageError, render};

use super::request::AuthorizationRequest;
use super::response::AuthorizeError;
use super::{Consent, Pending, ResumeQuery, current_session, go_to, load_pending, proceed};

/// The cookie that carries the `mfa_token` of a browser login between the password and the
/// second factor (never in a URL, where it would linger in history and logs).
pub const MFA_COOKIE: &str = "lk_mfa";
/// Its name under an https issuer: `__Secure-` (not `__Host-`, as it is for one path only).
pub const SECURE_MFA_COOKIE: &str = "__Secure-lk_mfa";

fn mfa_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_MFA_COOKIE
    } else {
        MFA_COOKIE
    }
}

fn login_page(
    state: &AppState,
    http: &HttpRequest,
    status: StatusCode,
    client: Option<&Client>,
    pending: Option<&Pending>,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    page_with_csrf(state, http, status, |token| {
        render(
            status,
            &LoginPage {
                client,
                request_id: pending.map(|p| p.id.as_str()),
                csrf_token: token,
                username,
                error,
            },
        )
    })
}

/// The query of the login page: a pending authorization request, or none (the account page).
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    request: Option<String>,
}

/// `GET /login` (`?request=<id>` within an authorization; without, for the account page).
pub async fn login_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AuthorizeError> {
    match &query.request {
        Some(id) => {
            let (client, request, pending) = load_pending(&state, id).await?;
            let hint = request.login_hint.clone().unwrap_or_default();
            Ok(login_page(
                &state,
                &http,
                StatusCode::OK,
                Some(&client),
                Some(&pending),
                &hint,
                None,
            ))
        }
        None => Ok(login_page(
            &state,
            &http,
            StatusCode::OK,
            None,
            None,
            "",
            None,
        )),
    }
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    request: Option<String>,
    username: String,
    password: String,
}

fn mfa_cookie(value: &str, secure: bool, max_age: i64) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(mfa_cookie_name(secure), value.to_owned())
        .path(paths::LOGIN_MFA)
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish()
}

/// Where the browser goes after a completed login: the pending request, or the account page.
fn after_login(pending: Option<&str>) -> HttpResponse {
    match pending {
        Some(id) => go_to(paths::AUTHORIZE_RESUME, id),
        None => HttpResponse::SeeOther()
            .insert_header(("Location", paths::ACCOUNT))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
    }
}

/// The attempt of a browser sign-in, for the audit log: the request, and the client of the
/// pending authorization request (none for the account page).
fn attempt_of(http: &HttpRequest, client_id: Option<&str>) -> Attempt {
    Attempt {
        actor: crate::api::extract::actor(http, None),
        client_id: client_id.map(str::to_owned),
    }
}

/// Starts the browser session of a person who completed every factor, replacing the browser's
/// previous session, and sends the browser on. The sign-in is written to the audit log and
/// reported to the `user.login` webhooks in the transaction that starts the session.
pub async fn finish_login(
    state: &AppState,
    http: &HttpRequest,
    user_id: &str,
    amr: &'static [&'static str],
    acr: &'static str,
    pending: Option<&str>,
    client_id: Option<&str>,
) -> Result<HttpResponse, AuthorizeError> {
    let previous = browser::cookie_secret(http);
    let crypto = state.crypto.clone();
    let lifetime = state.settings.lifetimes.session;
    let info = ClientInfo::of(http);
    let pending_id = pending.map(str::to_owned);
    let id = user_id.to_owned();
    let started_info = info.clone();
    let attempt = attempt_of(http, client_id);
    let methods: Vec<String> = amr.iter().map(|a| (*a).to_owned()).collect();
    let (session, secret, user) = state
        .store
        .write(move |conn| {
            let mut replaced = None;
            if let Some(previous) = previous
                && let Some(old) = browser::find_live(conn, &crypto, &previous)?
            {
                sessions::revoke(conn, &old.id, now())?;
                replaced = Some(old.id);
            }
            let (session, secret) =
                browser::start(conn, &crypto, &id, amr, acr, lifetime, &started_info)?;
            if let Some(old) = &replaced {
                sessions::mark_replaced(conn, old, &session.id)?;
            }
            if let Some(pending_id) = &pending_id {
                pending::set_login_session(conn, pending_id, &session.id)?;
            }
            users::touch_login(conn, &id, now())?;
            let user = users::find(conn, &id)?;
            record_login(
                conn,
                &crypto,
                &attempt,
                &SignIn {
                    user: &user,
                    session_id: &session.id,
                    amr: &methods,
                    step_up: false,
                },
            )?;
            Ok((session, secret, user))
        })
        .await?;
    crate::accounts::devices::note_sign_in(state, &user, &info).await?;
    tracing::info!(target: "latchkey::security", event = "login", user_id = %user.id, session_id = %session.id, "browser login");
    let mut response = after_login(pending);
    let _ = response.add_cookie(&browser::cookie(
        &secret,
        lifetime,
        state.settings.is_https(),
    ));
    Ok(response)
}

/// `POST /login`: checks the credentials (with lockout); with two-step verification on, goes
/// to the code page, otherwise starts the session and continues.
pub async fn login(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AuthorizeError> {
    let form: LoginForm = read_form(&state, &http, payload).await?;
    let loaded = match &form.request {
        Some(id) => {
            let (client, _, pending) = load_pending(&state, id).await?;
            Some((client, pending))
        }
        None => None,
    };
    let (client, pending) = (loaded.as_ref().map(|l| &l.0), loaded.as_ref().map(|l| &l.1));
    let login = form.username.trim().to_owned();
    let refused = |status: StatusCode, message: &str| {
        Ok(login_page(
            &state,
            &http,
            status,
            client,
            pending,
            &login,
            Some(message),
        ))
    };
    let attempt = attempt_of(&http, client.map(|c| c.id.as_str()));
    let verified = match verify_credentials(
        &state,
        &login,
        SecretString::from(form.password),
        &attempt,
    )
    .await
    {
        Ok(verified) => verified,
        Err(CredentialError::Invalid) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "The username or password is incorrect.",
            );
        }
        Err(CredentialError::Locked { retry_after }) => {
            let minutes = (retry_after + 59) / 60;
            return refused(
                StatusCode::LOCKED,
                &format!(
                    "Too many failed attempts. Try again in {minutes} minutes, or reset your password."
                ),
            );
        }
        Err(CredentialError::Disabled) => {
            return refused(StatusCode::FORBIDDEN, "This account is disabled.");
        }
        Err(CredentialError::Internal(error)) => return Err(error.into()),
    };
    if verified.security.mfa_enabled {
        let challenge = LoginChallenge {
            authorization_request: pending.map(|p| p.id.clone()),
            ..Default::default()
        };
        return start_second_factor(&state, &verified.user.id, challenge).await;
    }
    finish_login(
        &state,
        &http,
        &verified.user.id,
        &["pwd"],
        ACR_PASSWORD,
        pending.map(|p| p.id.as_str()),
        client.map(|c| c.id.as_str()),
    )
    .await
}

/// Creates a login challenge and sends the browser to the code page with its cookie.
pub async fn start_second_factor(
    state: &AppState,
    user_id: &str,
    challenge: LoginChallenge,
) -> Result<HttpResponse, AuthorizeError> {
    let (crypto, id) = (state.crypto.clone(), user_id.to_owned());
    let token = state
        .store
        .run(move |conn| mfa::new_login_challenge(conn, &crypto, &id, &challenge))
        .await?;
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", paths::LOGIN_MFA))
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    let _ = response.add_cookie(&mfa_cookie(
        token.expose(),
        state.settings.is_https(),
        mfa::CHALLENGE_TTL_SECS,
    ));
    Ok(response)
}

/// The pending challenge behind the browser's MFA cookie, with its client (for the page).
async fn pending_challenge(
    state: &AppState,
    http: &HttpRequest,
) -> Result<(String, String, LoginChallenge, Option<Client>), AuthorizeError> {
    let token = http
        .cookie(mfa_cookie_name(crate::sessions::browser::secure_cookies(
            http,
        )))
        .map(|c| c.value().to_owned())
        .filter(|t| t.len() < 128)
        .ok_or_else(|| PageError::bad_request("This sign-in has expired. Start again."))?;
    let (crypto, lookup) = (state.crypto.clone(), token.clone());
    let (user_id, challenge) = state
        .store
        .run(move |conn| mfa::find_login_challenge(conn, &crypto, &lookup))
        .await?
        .ok_or_else(|| PageError::bad_request("This sign-in has expired. Start again."))?;
    let client = match &challenge.authorization_request {
        Some(id) => Some(load_pending(state, id).await?.0),
        None => None,
    };
    Ok((token, user_id, challenge, client))
}

fn mfa_page(
    state: &AppState,
    http: &HttpRequest,
    status: StatusCode,
    client: Option<&Client>,
    error: Option<&str>,
) -> HttpResponse {
    page_with_csrf(state, http, status, |token| {
        render(
            status,
            &MfaPage {
                client,
                csrf_token: token,
                error,
            },
        )
    })
}

/// `GET /login/mfa`.
pub async fn mfa_form(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, AuthorizeError> {
    let (_, _, _, client) = pending_challenge(&state, &http).await?;
    Ok(mfa_page(
        &state,
        &http,
        StatusCode::OK,
        client.as_ref(),
        None,
    ))
}

/// The code form.
#[derive(Debug, Deserialize)]
pub struct MfaForm {
    code: String,
}

/// `POST /login/mfa`: a TOTP or recovery code completes the login (or steps up the session).
pub async fn mfa_submit(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AuthorizeError> {
    let form: MfaForm = read_form(&state, &http, payload).await?;
    let (token, _, _, client) = pending_challenge(&state, &http).await?;
    let client_id = client.as_ref().map(|c| c.id.clone());
    let attempt = attempt_of(&http, client_id.as_deref());
    let (user_id, challenge) =
        match mfa::complete_second_factor(&state, &token, &form.code, &attempt).await {
            Ok(done) => done,
            Err(SecondFactorError::WrongCode) => {
                return Ok(mfa_page(
                    &state,
                    &http,
                    StatusCode::UNAUTHORIZED,
                    client.as_ref(),
                    Some("That code is not right. Try again."),
                ));
            }
            Err(SecondFactorError::Locked { retry_after }) => {
                let minutes = (retry_after + 59) / 60;
                return Err(PageError::new(
                    StatusCode::LOCKED,
                    "Account locked",
                    format!("Too many failed attempts. Try again in {minutes} minutes."),
                )
                .into());
            }
            Err(SecondFactorError::UnknownChallenge) => {
                return Err(
                    PageError::bad_request("This sign-in has expired. Start again.").into(),
                );
            }
            Err(SecondFactorError::Internal(error)) => return Err(error.into()),
        };
    let mut response = match &challenge.step_up_session {
        Some(session_id) => {
            let (sid, id, crypto) = (session_id.clone(), user_id.clone(), state.crypto.clone());
            state
                .store
                .write(move |conn| {
                    sessions::step_up(conn, &sid, &to_json(&["pwd", "otp"]), ACR_MFA, now())?;
                    let user = users::find(conn, &id)?;
                    record_login(
                        conn,
                        &crypto,
                        &attempt,
                        &SignIn {
                            user: &user,
                            session_id: &sid,
                            amr: &["pwd".to_owned(), "otp".to_owned()],
                            step_up: true,
                        },
                    )
                })
                .await?;
            tracing::info!(target: "latchkey::security", event = "step_up", %user_id, "session stepped up with a second factor");
            after_login(challenge.authorization_request.as_deref())
        }
        None => {
            finish_login(
                &state,
                &http,
                &user_id,
                &["pwd", "otp"],
                ACR_MFA,
                challenge.authorization_request.as_deref(),
                client_id.as_deref(),
            )
            .await?
        }
    };
    let _ = response.add_cookie(&mfa_cookie("", state.settings.is_https(), 0));
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
    let (client, request, pending, _) = match session_for_page(&state, &http, &form.request).await?
    {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    match form.decision.as_str() {
        // The flow decides again whether the request is at its consent step: a login or a
        // second factor it still owes comes first.
        "allow" => {
            proceed(
                &state,
                &http,
                &client,
                request,
                Some(pending),
                Consent::Given,
            )
            .await
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
        // The choice answers `prompt=select_account` only; a login the request owes
        // (`prompt=login`, `max_age`) is still owed.
        "continue" => {
            let (id, sid) = (pending.id.clone(), session.id.clone());
            state
                .store
                .run(move |conn| pending::set_selected_session(conn, &id, &sid))
                .await?;
            Ok(go_to(paths::AUTHORIZE_RESUME, &pending.id))
        }
        "other" => Ok(go_to(paths::LOGIN, &pending.id)),
        _ => Err(PageError::bad_request("Choose an account.").into()),
    }
}
