//! The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself.

use crate::domain::{AuthMethod, GrantType, Permission, Scope, now};
use crate::oauth::access_token::{self, AccessTokenClaims};
use crate::oauth::clients::Client;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::startup::AppState;

use super::TokenResponse;

/// Scopes about a person: meaningless when no person is involved.
const PERSON_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

pub(super) async fn issue(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::ClientCredentials) || client.auth_method == AuthMethod::None
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This client may not use the client_credentials grant",
        ));
    }
    let machine_scope = Scope::parse(
        &client
            .scope
            .iter()
            .filter(|s| !PERSON_SCOPES.contains(s))
            .collect::<Vec<_>>()
            .join(" "),
    )
    .unwrap_or_default();
    let scope = match params.get("scope") {
        Some(raw) => {
            let asked =
                Scope::parse(raw).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
            if !asked.is_subset_of(&machine_scope) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "The requested scope is not allowed for this client",
                ));
            }
            asked
        }
        None => machine_scope,
    };
    let issued = now();
    let claims = AccessTokenClaims {
        iss: state.settings.issuer.clone(),
        sub: client.id.clone(),
        aud: state.settings.issuer.clone(),
        exp: issued + state.settings.lifetimes.access_token as i64,
        iat: issued,
        jti: access_token::new_jti(),
        client_id: client.id.clone(),
        scope: scope.to_string(),
        roles: Vec::new(),
        // A client acting for itself holds exactly the permissions it was registered for.
        permissions: scope
            .iter()
            .filter(|s| Permission::parse(s).is_ok_and(|p| !p.is_all()))
            .map(str::to_owned)
            .collect(),
        auth_time: None,
        acr: None,
        amr: None,
        sid: None,
        gid: None,
        cep: Some(client.token_epoch),
    };
    let keys = state.keys.current();
    let access_token = access_token::mint(&keys, state.settings.access_token_signing_alg, &claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.settings.lifetimes.access_token,
        refresh_token: None,
        refresh_expires_in: None,
        id_token: None,
        scope: scope.to_string(),
    })
}
