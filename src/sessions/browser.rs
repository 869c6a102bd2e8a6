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
        .cookie(SESSION_COOKIE)
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
    /// Reads the peer address and user agent of a request.
    pub fn of(request: &HttpRequest) -> Self {
        Self {
            ip_address: request.peer_addr().map(|a| a.ip().to_string()),
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
    Cookie::build(SESSION_COOKIE, secret.expose().to_owned())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(lifetime_secs as i64))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}
