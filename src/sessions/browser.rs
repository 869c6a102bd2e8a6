//! The browser session: created by a login, carried by the `lk_session` cookie, which holds a
//! random secret whose keyed hash finds the row. The row holds `auth_time`, `amr` and `acr`,
//! and its id is the `sid` claim.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use crate::crypto::Crypto;
use crate::domain::{PlainToken, now};
use crate::store::sessions::{self as rows, SessionRow};
use crate::store::{AnyConnection, StoreError, from_json, to_json};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "lk_session";
/// The session cookie's name under an https issuer: the `__Host-` prefix makes browsers refuse
/// it unless it is `Secure`, host-only and for `/`, so a sibling subdomain cannot plant or
/// shadow it (RFC 6265bis §4.1.3.2).
pub const SECURE_SESSION_COOKIE: &str = "__Host-lk_session";

/// The session cookie's name: prefixed when cookies are secure (an https issuer).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// Whether this server's cookies are `Secure` (its issuer is https), read from the request's
/// shared state.
pub fn secure_cookies(request: &HttpRequest) -> bool {
    request
        .app_data::<actix_web::web::Data<crate::startup::AppState>>()
        .is_some_and(|state| state.settings.is_https())
}

/// Prefix of session cookie secrets.
const SESSION_SECRET_PREFIX: &str = "lk_s_";

/// A live browser session, parsed.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The session id: the `sid` claim.
    pub id: String,
    /// Whose session it is.
    pub user_id: String,
    /// When the person last authenticated.
    pub auth_time: i64,
    /// How (`pwd`, `otp`, ...).
    pub amr: Vec<String>,
    /// The authentication context class reached.
    pub acr: String,
}

impl BrowserSession {
    fn from_row(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            amr: from_json("sessions.amr", &row.amr)?,
            id: row.id,
            user_id: row.user_id,
            auth_time: row.auth_time,
            acr: row.acr,
        })
    }
}

/// The secret in the request's session cookie, if any.
pub fn cookie_secret(request: &HttpRequest) -> Option<String> {
    request
        .cookie(session_cookie_name(secure_cookies(request)))
        .map(|c| c.value().to_owned())
        .filter(|v| v.starts_with(SESSION_SECRET_PREFIX) && v.len() < 128)
}

/// The live session the cookie secret belongs to.
pub fn find_live(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    secret: &str,
) -> Result<Option<BrowserSession>, StoreError> {
    match rows::find_live_by_secret(conn, &crypto.hash_token(secret).0, now()) {
        Ok(row) => BrowserSession::from_row(row).map(Some),
        Err(StoreError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// What is known about the browser when a session starts.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip_address: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Reads the client's address (the peer, or what trusted proxies say it is, as the rate
    /// limiter reads it) and the user agent of a request.
    pub fn of(request: &HttpRequest) -> Self {
        let state = request.app_data::<actix_web::web::Data<crate::startup::AppState>>();
        let trusted = state.map_or(&[][..], |state| &state.settings.trusted_proxies);
        Self {
            ip_address: crate::http::client_ip(request.peer_addr(), request.headers(), trusted)
                .map(|ip| ip.to_string()),
            user_agent: request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(512).collect()),
        }
    }
}

/// Starts a session after a successful login; returns it with the cookie secret.
pub fn start(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    amr: &[&str],
    acr: &str,
    lifetime_secs: u64,
    info: &ClientInfo,
) -> Result<(BrowserSession, PlainToken), StoreError> {
    let secret = PlainToken::generate(SESSION_SECRET_PREFIX);
    let at = now();
    let row = SessionRow {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "browser".into(),
        user_id: user_id.to_owned(),
        secret_hash: Some(crypto.hash_token(secret.expose()).0),
        auth_time: at,
        amr: to_json(&amr),
        acr: acr.to_owned(),
        ip_address: info.ip_address.clone(),
        user_agent: info.user_agent.clone(),
        created_at: at,
        last_activity: at,
        expires_at: at + lifetime_secs as i64,
        revoked_at: None,
    };
    rows::insert(conn, &row)?;
    Ok((BrowserSession::from_row(row)?, secret))
}

/// The cookie that carries a session: HttpOnly, `SameSite=Lax`, `Secure` when the issuer is
/// https, expiring with the session.
pub fn cookie(secret: &PlainToken, lifetime_secs: u64, secure: bool) -> Cookie<'static> {
    Cookie::build(session_cookie_name(secure), secret.expose().to_owned())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(lifetime_secs as i64))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(session_cookie_name(secure), "")
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}
