//! The built-in first-party client: the JSON API's logins (`/api/v1/auth/login`) are grants to
//! it, so they get the same JWT access tokens and rotating refresh tokens as OAuth clients, and
//! one verification path protects every resource.

use crate::accounts::login::{Attempt, SignIn, record_login};
use crate::domain::{PlainToken, Scope, now};
use crate::oauth::clients::{Client, find_client};
use crate::oauth::issue::{
    Authentication, Subject, TokenContext, load_subject, mint_access_token, new_refresh_token,
};
use crate::startup::AppState;
use crate::store::clients::{self as client_rows, ClientRow};
use crate::store::grants::{self, GrantRow};
use crate::store::sessions::{self, SessionRow};
use crate::store::{AnyConnection, StoreError, to_json, users};

/// The built-in client's id.
pub const FIRST_PARTY_CLIENT_ID: &str = "latchkey";

/// What an API login is granted: identity scopes and, through `*`, every permission the
/// person holds.
pub const FIRST_PARTY_SCOPE: &str = "openid profile email offline_access *";

/// Creates the built-in client if it is missing (every start: databases made by older versions
/// get it too).
pub fn ensure_client(conn: &mut AnyConnection) -> Result<(), StoreError> {
    if find_client(conn, FIRST_PARTY_CLIENT_ID)?.is_some() {
        return Ok(());
    }
    let at = now();
    let row = ClientRow {
        id: FIRST_PARTY_CLIENT_ID.to_owned(),
        secret_hash: None,
        name: "Latchkey".to_owned(),
        logo_uri: None,
        policy_uri: None,
        tos_uri: None,
        application_type: "native".to_owned(),
        redirect_uris: "[]".to_owned(),
        post_logout_redirect_uris: "[]".to_owned(),
        grant_types: to_json(&["refresh_token"]),
        response_types: "[]".to_owned(),
        token_endpoint_auth_method: "none".to_owned(),
        jwks: None,
        jwks_uri: None,
        id_token_signed_response_alg: "RS256".to_owned(),
        userinfo_signed_response_alg: None,
        scope: FIRST_PARTY_SCOPE.to_owned(),
        skip_consent: true,
        require_pkce: true,
        backchannel_logout_uri: None,
        frontchannel_logout_uri: None,
        created_at: at,
        updated_at: at,
        token_epoch: 0,
    };
    match client_rows::insert(conn, &row) {
        // Another instance created it at the same moment.
        Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// The tokens of an API login.
#[derive(Debug)]
pub struct ApiLogin {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub refresh_expires_in: u64,
    pub session_id: String,
    pub subject: Subject,
}

/// Starts an API session for a person who just authenticated (`amr`, `acr`): a session row, a
/// grant to the first-party client, a refresh token and an access token. `remember_me`
/// lengthens the refresh lifetime. The sign-in is written to the audit log (with the attempt's
/// address and user agent, which the session keeps too) and reported to the `user.login`
/// webhooks in the same transaction.
pub async fn start_session(
    state: &AppState,
    user_id: &str,
    amr: &[&str],
    acr: &str,
    remember_me: bool,
    attempt: &Attempt,
) -> anyhow::Result<ApiLogin> {
    let at = now();
    let refresh_ttl = if remember_me {
        state.settings.accounts.remember_me_refresh_ttl_secs
    } else {
        state.settings.lifetimes.refresh_token
    };
    let family_ttl = state.settings.lifetimes.refresh_family.max(refresh_ttl);
    let session = SessionRow {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "api".into(),
        user_id: user_id.to_owned(),
        secret_hash: None,
        auth_time: at,
        amr: to_json(&amr),
        acr: acr.to_owned(),
        ip_address: attempt.actor.ip_address.clone(),
        user_agent: attempt.actor.user_agent.clone(),
        created_at: at,
        last_activity: at,
        expires_at: at + family_ttl as i64,
        revoked_at: None,
    };
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: FIRST_PARTY_CLIENT_ID.to_owned(),
        user_id: user_id.to_owned(),
        session_id: Some(session.id.clone()),
        scope: FIRST_PARTY_SCOPE.to_owned(),
        claims: None,
        auth_time: at,
        acr: acr.to_owned(),
        amr: to_json(&amr),
        offline: false,
        created_at: at,
        expires_at: at + family_ttl as i64,
        revoked_at: None,
        revoked_reason: None,
        refresh_ttl_secs: remember_me.then_some(refresh_ttl as i64),
    };
    let crypto = state.crypto.clone();
    let (stored_session, stored_grant) = (session.clone(), grant.clone());
    let attempt = Attempt {
        client_id: Some(FIRST_PARTY_CLIENT_ID.to_owned()),
        ..attempt.clone()
    };
    let methods: Vec<String> = amr.iter().map(|a| (*a).to_owned()).collect();
    let (client, subject, refresh): (Client, Subject, PlainToken) = state
        .store
        .write(move |conn| {
            let client = find_client(conn, FIRST_PARTY_CLIENT_ID)?.ok_or(StoreError::NotFound)?;
            sessions::insert(conn, &stored_session)?;
            grants::insert_grant(conn, &stored_grant)?;
            let refresh =
                new_refresh_token(conn, &crypto, &stored_grant.id, at + refresh_ttl as i64)?;
            users::touch_login(conn, &stored_grant.user_id, at)?;
            let subject = load_subject(conn, &stored_grant.user_id)?;
            record_login(
                conn,
                &crypto,
                &attempt,
                &SignIn {
                    user: &subject.user,
                    session_id: &stored_session.id,
                    amr: &methods,
                    step_up: false,
                },
            )?;
            Ok((client, subject, refresh))
        })
        .await?;
    let scope = Scope::parse(FIRST_PARTY_SCOPE).expect("a valid scope");
    let authentication = Authentication {
        auth_time: at,
        acr: acr.to_owned(),
        amr: amr.iter().map(|a| (*a).to_owned()).collect(),
        session_id: Some(session.id.clone()),
    };
    let (access_token, _) = mint_access_token(
        state,
        &TokenContext {
            client: &client,
            subject: &subject,
            grant_id: &grant.id,
            scope: &scope,
            authentication: &authentication,
            claims: &Default::default(),
        },
    )?;
    state.metrics.token_issued("password");
    Ok(ApiLogin {
        access_token,
        refresh_token: refresh.expose().to_owned(),
        expires_in: state.settings.lifetimes.access_token,
        refresh_expires_in: refresh_ttl,
        session_id: session.id,
        subject,
    })
}
