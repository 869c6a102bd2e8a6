//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at `/oauth/logout`, GET and
//! POST, with front-channel logout frames on the signed-out page.
//!
//! A valid `id_token_hint` of this provider, for the person signed in in this browser (or for a
//! session no browser holds any more), ends the session at once; a registered
//! `post_logout_redirect_uri` (exact match) then gets the browser back, with `state` alone.
//! Without a valid hint the person confirms first; the confirmation carries the checked
//! redirect (and `state`), checked again when it is posted, so single-page apps that send no
//! hint still get their user back. A hint from a session that a later sign-in in the same
//! browser replaced counts as this browser's. An unregistered redirect URI is an error page; nothing ends.
//! A logout that ends a session is written to the audit log (`logout`, and `session_revoked`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::actor;
use crate::domain::now;
use crate::events::audit::{self, Actor, AuditEvent};
use crate::http::headers::DEFAULT_CSP;
use crate::http::{BodyError, media_type, read_body};
use crate::oauth::authorize::current_session;
use crate::oauth::clients::{Client, find_client};
use crate::oauth::params::Params;
use crate::paths;
use crate::sessions::browser::{self, BrowserSession};
use crate::sessions::revoke::{Revocation, end_session};
use crate::startup::AppState;
use crate::store::{StoreError, grants, sessions as session_rows, users};
use crate::web::csrf::{page_with_csrf, read_form};
use crate::web::pages::{LogoutConfirmPage, LogoutFrame, ReturnTo, SignedOutPage};
use crate::web::{PageError, render};

/// What a valid `id_token_hint` says.
#[derive(Debug, Clone)]
struct Hint {
    sub: String,
    sid: Option<String>,
    client_id: String,
}

/// The subject, session and client of an ID token this provider signed (expired ones too:
/// RP-Initiated Logout §2). Only an ID token: an access token (`typ: at+jwt`), a logout token
/// or a signed userinfo answer (which has no `exp`) names no session to end.
fn read_hint(state: &AppState, token: &str) -> Option<Hint> {
    let keys = state.keys.current();
    let verified = keys.verify(token).ok()?;
    let typ = verified.header.get("typ").and_then(Value::as_str);
    if typ.is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
        return None;
    }
    let claims: Value = serde_json::from_slice(&verified.payload).ok()?;
    if claims.get("iss")?.as_str()? != state.settings.issuer || claims.get("exp").is_none() {
        return None;
    }
    let client_id = match claims.get("aud")? {
        Value::String(aud) => aud.clone(),
        Value::Array(auds) => auds.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    Some(Hint {
        sub: claims.get("sub")?.as_str()?.to_owned(),
        sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
        client_id,
    })
}

fn bad(message: &str) -> PageError {
    PageError::bad_request(message)
}

/// `GET /oauth/logout`.
#[utoipa::path(
    get,
    path = crate::paths::LOGOUT,
    tag = "oidc",
    description = "RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, the `end_session_endpoint`): \
a confirmation page, or — with an `id_token_hint` that names the signed-in person — the logout, then a \
redirect to the `post_logout_redirect_uri` registered by the client.",
    params(crate::oidc::schema::LogoutParams),
    responses(
        (status = 200, description = "The confirmation page, or the page that says the person is signed out (with the clients' front-channel logout frames)", content_type = "text/html"),
        (status = 303, description = "To the client's `post_logout_redirect_uri`, with `state`"),
        (status = 400, description = "An error page: a repeated or malformed parameter, or an unregistered `post_logout_redirect_uri`", content_type = "text/html"),
        (status = 500, description = "An error page", content_type = "text/html"),
        (status = 503, description = "An error page: the database is unreachable", content_type = "text/html"),
    ),
    security(()),
)]
pub async fn logout_get(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let params = Params::from_urlencoded(http.query_string().as_bytes());
    logout(&state, &http, params).await
}

/// `POST /oauth/logout` (a form with the same parameters).
#[utoipa::path(
    post,
    path = crate::paths::LOGOUT,
    tag = "oidc",
    description = "As `GET`, with the parameters as a form.",
    request_body(content = crate::oidc::schema::LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page, or the signed-out page", content_type = "text/html"),
        (status = 303, description = "To the client's `post_logout_redirect_uri`, with `state`"),
        (status = 400, description = "An error page: not a form, a repeated or malformed parameter, or an unregistered `post_logout_redirect_uri`", content_type = "text/html"),
        (status = 413, description = "An error page: the form is too large", content_type = "text/html"),
        (status = 500, description = "An error page", content_type = "text/html"),
        (status = 503, description = "An error page: the database is unreachable", content_type = "text/html"),
    ),
    security(()),
)]
pub async fn logout_post(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    if media_type(&http) != "application/x-www-form-urlencoded" {
        return Err(bad("A logout request sent with POST must be a form."));
    }
    let body = read_body(payload, 64 * 1024).await.map_err(|e| match e {
        BodyError::TooLarge => bad("The logout request is too large."),
        BodyError::Broken => bad("The logout request could not be read."),
    })?;
    logout(&state, &http, Params::from_urlencoded(&body)).await
}

async fn logout(
    state: &AppState,
    http: &HttpRequest,
    params: Params,
) -> Result<HttpResponse, PageError> {
    if let Some(repeated) = params.repeated() {
        return Err(bad(&format!("The parameter {} is repeated.", repeated.0)));
    }
    if let Some(name) = params.with_nul() {
        return Err(bad(&format!("The parameter {name} holds a NUL character.")));
    }
    let hint = match params.get("id_token_hint") {
        Some(token) => read_hint(state, token),
        None => None,
    };
    let hint_was_sent = params.contains("id_token_hint");
    let client_id = match (params.get("client_id"), &hint) {
        (Some(given), Some(hint)) if given != hint.client_id => {
            return Err(bad("client_id does not match the id_token_hint."));
        }
        (Some(given), _) => Some(given.to_owned()),
        (None, Some(hint)) => Some(hint.client_id.clone()),
        (None, None) => None,
    };
    let client = match client_id {
        Some(id) if id.len() <= 255 => state.store.run(move |conn| find_client(conn, &id)).await?,
        _ => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(client) if client.allows_post_logout_redirect(uri) => Some(uri.to_owned()),
            // RP-Initiated Logout §3: never redirect to an unregistered URI.
            Some(_) => {
                return Err(bad(
                    "The post_logout_redirect_uri is not registered for this client. You are still signed in.",
                ));
            }
            // §2: the URI is checked against the client the hint (or client_id) names; without
            // one there is nothing to check it against.
            None => {
                return Err(bad(
                    "A post_logout_redirect_uri needs a valid id_token_hint (or client_id) to say which application it belongs to. You are still signed in.",
                ));
            }
        },
    };
    let session = current_session(state, http).await?;
    let hint_matches_browser = match (&hint, &session) {
        (Some(hint), Some(session)) if hint.sub == session.user_id => match &hint.sid {
            None => true,
            Some(sid) if *sid == session.id => true,
            // A hint from a session a later sign-in in this browser replaced (a re-login
            // forced by `prompt=login` or `max_age`) still speaks for this browser.
            Some(sid) => {
                let (from, to) = (sid.clone(), session.id.clone());
                state
                    .store
                    .run(move |conn| replaced_into(conn, &from, &to))
                    .await?
            }
        },
        // Another person's hint, or no session in this browser: nothing here to end. A hint
        // alone (an ID token its client holds) never ends a session from elsewhere.
        _ => false,
    };
    if let (Some(hint), Some(current), true) = (&hint, &session, hint_matches_browser) {
        let by = actor(http, Some(&hint.sub));
        let frames = end(
            state,
            &by,
            Some(&current.id),
            Some(&hint.sub),
            Some(&hint.client_id),
        )
        .await?;
        let target = redirect.map(|uri| with_state(&uri, params.get("state")));
        return Ok(signed_out(state, &frames, target.as_deref()));
    }
    let return_to = match (&client, &redirect) {
        (Some(client), Some(uri)) => Some(ReturnTo {
            client_id: &client.id,
            post_logout_redirect_uri: uri,
            state: params.get("state"),
        }),
        _ => None,
    };
    match session {
        // Nothing to end: the person is signed out already, and the checked URI (registered
        // by the client named) is where the browser goes back to.
        None => {
            let target = redirect.map(|uri| with_state(&uri, params.get("state")));
            Ok(signed_out(state, &[], target.as_deref()))
        }
        // No trustworthy hint (absent, invalid, or another person's): ask first.
        Some(session) => {
            if hint_was_sent {
                tracing::info!(target: "latchkey::security", event = "logout_hint_refused", "logout request with an unusable id_token_hint: asking the person");
            }
            confirm_page(state, http, &session, client.as_ref(), return_to).await
        }
    }
}

/// Longest chain of sign-ins followed from a hint's session to the browser's current one.
const MAX_REPLACEMENTS: usize = 16;

/// Whether the session `from` was replaced, through later sign-ins in the same browser, by
/// `to`.
fn replaced_into(
    conn: &mut crate::store::AnyConnection,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let mut at = from.to_owned();
    for _ in 0..MAX_REPLACEMENTS {
        match session_rows::replaced_by(conn, &at)? {
            Some(next) if next == to => return Ok(true),
            Some(next) => at = next,
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// The redirect URI with `state` added (and nothing else: RP-Initiated Logout §3).
fn with_state(uri: &str, state: Option<&str>) -> String {
    let Some(state) = state else {
        return uri.to_owned();
    };
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("state", state);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

async fn confirm_page(
    state: &AppState,
    http: &HttpRequest,
    session: &BrowserSession,
    client: Option<&Client>,
    return_to: Option<ReturnTo<'_>>,
) -> Result<HttpResponse, PageError> {
    let id = session.user_id.clone();
    let username = state
        .store
        .run(move |conn| users::find(conn, &id))
        .await?
        .username;
    Ok(page_with_csrf(state, http, StatusCode::OK, |token| {
        render(
            StatusCode::OK,
            &LogoutConfirmPage {
                username: &username,
                client_name: client.map(|c| c.name.as_str()),
                csrf_token: token,
                return_to,
            },
        )
    }))
}

/// The confirmation form, with the redirect back to the client the page carried.
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    choice: String,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// `POST /oauth/logout/confirm`: the person chose to sign out (or to stay).
pub async fn confirm(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: ConfirmForm = read_form(&state, &http, payload).await?;
    if form.choice != "logout" {
        return Ok(render(
            StatusCode::OK,
            &SignedOutPage {
                title: "Still signed in",
                message: "You are still signed in. You can close this window.",
                frames: &[],
                continue_to: None,
            },
        ));
    }
    // The redirect is checked again: the form is the browser's to change.
    let target = match (form.client_id, &form.post_logout_redirect_uri) {
        (Some(id), Some(uri)) if id.len() <= 255 => {
            let client = state.store.run(move |conn| find_client(conn, &id)).await?;
            client
                .filter(|client| client.allows_post_logout_redirect(uri))
                .map(|_| with_state(uri, form.state.as_deref()))
        }
        _ => None,
    };
    let session = current_session(&state, &http).await?;
    let frames = match &session {
        Some(session) => {
            let by = actor(&http, Some(&session.user_id));
            end(&state, &by, Some(&session.id), Some(&session.user_id), None).await?
        }
        None => Vec::new(),
    };
    Ok(signed_out(&state, &frames, target.as_deref()))
}

/// Ends a session (if it is live and belongs to `sub`), by `actor` at the request of
/// `client_id` (if a client asked); returns the front-channel frames of the clients that took
/// part in it.
async fn end(
    state: &AppState,
    actor: &Actor,
    session_id: Option<&str>,
    sub: Option<&str>,
    client_id: Option<&str>,
) -> Result<Vec<LogoutFrame>, StoreError> {
    let Some(session_id) = session_id.map(str::to_owned) else {
        return Ok(Vec::new());
    };
    let sub = sub.map(str::to_owned);
    let crypto = state.crypto.clone();
    let issuer = state.settings.issuer.clone();
    let (by, client_id) = (actor.clone(), client_id.map(str::to_owned));
    let frames = state
        .store
        .write(move |conn| {
            let session = match session_rows::find(conn, &session_id) {
                Ok(session) => session,
                Err(StoreError::NotFound) => return Ok(Vec::new()),
                Err(other) => return Err(other),
            };
            if session.revoked_at.is_some() || sub.as_deref().is_some_and(|s| s != session.user_id)
            {
                return Ok(Vec::new());
            }
            let mut frames = Vec::new();
            for client_id in grants::session_client_ids(conn, &session.id)? {
                let Some(client) = find_client(conn, &client_id)? else {
                    continue;
                };
                let Some(uri) = &client.frontchannel_logout_uri else {
                    continue;
                };
                let Ok(mut url) = url::Url::parse(uri) else {
                    continue;
                };
                url.query_pairs_mut()
                    .append_pair("iss", &issuer)
                    .append_pair("sid", &session.id);
                frames.push(LogoutFrame {
                    src: url.to_string(),
                    name: client.name.clone(),
                });
            }
            let revocation = Revocation {
                actor: &by,
                reason: "logout",
                at: now(),
            };
            end_session(conn, &crypto, &session.id, false, &revocation)?;
            audit::record(
                conn,
                &by,
                AuditEvent::new("logout", "sessions", Some(&session.id)).info(json!({
                    "client_id": client_id,
                    "via": "rp-initiated logout",
                })),
            )?;
            Ok(frames)
        })
        .await?;
    tracing::info!(target: "latchkey::security", event = "logout", frames = frames.len(), "RP-initiated logout");
    Ok(frames)
}

/// The signed-out answer: a plain redirect when no frame has to load first, else the page with
/// the frames (continuing to the redirect after a moment).
fn signed_out(state: &AppState, frames: &[LogoutFrame], redirect: Option<&str>) -> HttpResponse {
    let mut response = match (redirect, frames.is_empty()) {
        (Some(target), true) => HttpResponse::SeeOther()
            .insert_header(("Location", target))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        _ => render(
            StatusCode::OK,
            &SignedOutPage {
                title: "Signed out",
                message: "You are signed out.",
                frames,
                continue_to: redirect,
            },
        ),
    };
    if let Some(policy) = framing_policy(frames) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    let _ = response.add_cookie(&browser::removal_cookie(state.settings.is_https()));
    response
}

/// The default policy, plus `frame-src` for the origins of the front-channel frames: under
/// `default-src 'none'` a browser would refuse to load them.
fn framing_policy(frames: &[LogoutFrame]) -> Option<HeaderValue> {
    let mut origins: Vec<String> = frames
        .iter()
        .filter_map(|frame| url::Url::parse(&frame.src).ok())
        .map(|url| url.origin())
        .filter(url::Origin::is_tuple)
        .map(|origin| origin.ascii_serialization())
        .collect();
    if origins.is_empty() {
        return None;
    }
    origins.sort();
    origins.dedup();
    let policy = format!("{DEFAULT_CSP}; frame-src {}", origins.join(" "));
    HeaderValue::from_str(&policy).ok()
}

/// The paths of logout.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::http::endpoint;
    cfg.service(
        endpoint(paths::LOGOUT)
            .get(logout_get)
            .post(logout_post)
            .finish(),
    )
    .service(endpoint(paths::LOGOUT_CONFIRM).post(confirm).finish());
}
