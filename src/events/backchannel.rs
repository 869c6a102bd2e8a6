//! OpenID Connect Back-Channel Logout 1.0: when a session ends, each client that took part in
//! it and registered a `backchannel_logout_uri` receives a signed logout token, delivered
//! through the outbox (retried with backoff; status recorded).
//!
//! The token is signed at each attempt, so a retry never sends an expired one; its `jti` is
//! fixed when the logout happens, so a receiver can recognise a repeat.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::outbox::{self, Outcome};
use crate::crypto::Crypto;
use crate::domain::now;
use crate::oauth::access_token::new_jti;
use crate::oauth::clients::{Client, find_client};
use crate::startup::AppState;
use crate::store::{AnyConnection, StoreError};

/// The outbox kind of logout tokens.
pub const BACKCHANNEL_LOGOUT: &str = "backchannel_logout";

/// The event member of a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid after it is signed.
const TOKEN_LIFETIME_SECS: i64 = 120;

/// What a queued logout notice carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutNotice {
    pub client_id: String,
    pub uri: String,
    pub sub: String,
    pub sid: String,
    pub jti: String,
}

/// Queues a logout notice for every client of `clients` that registered a back-channel URI.
pub fn queue(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    clients: &[Client],
    sub: &str,
    sid: &str,
) -> Result<usize, StoreError> {
    let mut queued = 0;
    for client in clients {
        let Some(uri) = &client.backchannel_logout_uri else {
            continue;
        };
        let notice = LogoutNotice {
            client_id: client.id.clone(),
            uri: uri.clone(),
            sub: sub.to_owned(),
            sid: sid.to_owned(),
            jti: new_jti(),
        };
        outbox::enqueue(
            conn,
            crypto,
            BACKCHANNEL_LOGOUT,
            Some(&client.id),
            &serde_json::to_value(&notice).expect("plain data"),
        )?;
        queued += 1;
    }
    Ok(queued)
}

/// Signs the logout token of a notice for `client` (with its ID-token algorithm, so it
/// verifies against the same published keys).
pub fn logout_token(
    state: &AppState,
    client: &Client,
    notice: &LogoutNotice,
) -> anyhow::Result<String> {
    let keys = state.keys.current();
    let key = keys
        .active(client.id_token_signed_response_alg)
        .ok_or_else(|| anyhow::anyhow!("no active {} key", client.id_token_signed_response_alg))?;
    let issued = now();
    key.sign_jwt(
        "logout+jwt",
        &json!({
            "iss": state.settings.issuer,
            "aud": client.id,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_SECS,
            "jti": notice.jti,
            "events": { LOGOUT_EVENT: {} },
            "sub": notice.sub,
            "sid": notice.sid,
        }),
    )
}

/// Delivers one notice: POSTs `logout_token` as a form; a 2xx answer is success (OpenID
/// Connect Back-Channel Logout 1.0 §2.8), anything else is retried.
pub(crate) async fn deliver(state: &AppState, payload: serde_json::Value) -> Outcome {
    let notice: LogoutNotice = match serde_json::from_value(payload) {
        Ok(notice) => notice,
        Err(_) => return Outcome::Reject("the payload is not a logout notice".into()),
    };
    let id = notice.client_id.clone();
    let client = match state.store.run(move |conn| find_client(conn, &id)).await {
        Ok(Some(client)) => client,
        Ok(None) => return Outcome::Reject("the client no longer exists".into()),
        Err(error) => return Outcome::Retry(format!("database: {error}")),
    };
    let token = match logout_token(state, &client, &notice) {
        Ok(token) => token,
        Err(error) => return Outcome::Retry(format!("signing: {error}")),
    };
    let http = match state.http.client_for(&notice.uri) {
        Ok(http) => http,
        Err(error) => match error.downcast_ref::<crate::http::outbound::TargetRefused>() {
            Some(refused) => return Outcome::Reject(format!("refused: {refused}")),
            None => return Outcome::Retry(format!("outbound HTTP: {error}")),
        },
    };
    let response = http
        .post(&notice.uri)
        .header("Cache-Control", "no-store")
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => Outcome::Delivered,
        Ok(response) => Outcome::Retry(format!(
            "the client answered {}",
            response.status().as_u16()
        )),
        Err(error) => Outcome::Retry(crate::http::outbound::describe(&error, "client")),
    }
}
