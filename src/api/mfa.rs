//! `/api/v1/auth/mfa/*`: TOTP setup and confirmation, the second factor of a login, turning
//! MFA off, and new recovery codes. Each change is mailed to the person.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::first_party::{self, FIRST_PARTY_CLIENT_ID};
use crate::accounts::login::{Attempt, CredentialError};
use crate::accounts::mfa::{self, MfaError, SecondFactorError};
use crate::api::auth::{credential_error, login_json, no_store, present};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated, actor};
use crate::api::recovery::confirm_password;
use crate::domain::ACR_MFA;
use crate::sessions::browser::ClientInfo;
use crate::startup::AppState;
use crate::store::users;

fn mfa_error(error: MfaError) -> ApiError {
    match error {
        MfaError::UnknownChallenge => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The token is invalid or has expired",
        ),
        MfaError::WrongCode => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "The code is invalid",
        ),
        MfaError::NotEnabled => ApiError::new(
            StatusCode::CONFLICT,
            "mfa_not_enabled",
            "Multi-factor authentication is not enabled",
        ),
        MfaError::AlreadyEnabled => ApiError::new(
            StatusCode::CONFLICT,
            "mfa_already_enabled",
            "Multi-factor authentication is already enabled",
        ),
        MfaError::Store(e) => e.into(),
    }
}

/// `{"password", "method": "totp", "label"}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The account's password: enrolling a second factor needs a fresh proof, as turning it
    /// off does, so that a stolen access token cannot bind the thief's authenticator.
    password: Option<String>,
    method: Option<String>,
    label: Option<String>,
}

/// `POST /auth/mfa/setup` (needs the password): a new TOTP secret, its QR code and ten
/// recovery codes.
#[utoipa::path(
    post,
    path = crate::paths::MFA_SETUP,
    tag = "mfa",
    request_body = SetupRequest,
    responses(
        (status = 200, description = "A TOTP secret to confirm at `/api/v1/auth/mfa/verify-setup`, shown once", body = schema::TotpSetupBody),
        (status = 401, description = "No valid access token, or a wrong password (`invalid_credentials`)", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "`mfa_already_enabled`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`password` is missing, or `method` is not `totp`", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated wrong passwords", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn setup(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<SetupRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let mut errors = Vec::new();
    if body.password.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new("password", "is required"));
    }
    if body.method.as_deref().is_some_and(|m| m != "totp") {
        errors.push(FieldError::new("method", "must be totp"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let user_id = caller.user_id()?.to_owned();
    let password = body.password.as_deref().unwrap_or_default();
    confirm_password(&state, &user_id, password, &caller.actor(&http)).await?;
    let label =
        present(&body.label).map(|l| l.replace(':', " ").chars().take(100).collect::<String>());
    let handles = state.handles();
    let setup = state
        .store
        .run(move |conn| {
            let user = users::find(conn, &user_id)?;
            let label = label.unwrap_or(user.username);
            Ok(mfa::begin_setup(
                conn,
                &handles.crypto,
                &handles.settings,
                &user_id,
                &label,
            ))
        })
        .await?
        .map_err(mfa_error)?;
    Ok(no_store(HttpResponse::Ok()).json(setup))
}

/// `{"setup_token", "code"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySetupRequest {
    setup_token: Option<String>,
    code: Option<String>,
}

/// `POST /auth/mfa/verify-setup`: a code from the authenticator turns MFA on.
#[utoipa::path(
    post,
    path = crate::paths::MFA_VERIFY_SETUP,
    tag = "mfa",
    request_body = VerifySetupRequest,
    responses(
        (status = 200, description = "Two-step verification is on", body = schema::MfaEnabled),
        (status = 401, description = "`invalid_token` (unknown or expired setup) or `invalid_code`", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "`mfa_already_enabled`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`setup_token` or `code` is missing", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn verify_setup(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<VerifySetupRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if present(&body.setup_token).is_none() {
        errors.push(FieldError::new("setup_token", "is required"));
    }
    if present(&body.code).is_none() {
        errors.push(FieldError::new("code", "is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (token, code) = (
        body.setup_token.unwrap_or_default(),
        body.code.unwrap_or_default(),
    );
    // The setup token says whose account it is.
    mfa::enable(&state, &token, &code, None, &actor(&http, None))
        .await
        .map_err(mfa_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": "MFA setup completed successfully",
        "enabled": true,
    })))
}

/// `{"mfa_token", "code"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    mfa_token: Option<String>,
    code: Option<String>,
}

/// `POST /auth/mfa/verify`: the second factor of a login (a TOTP code or a recovery code)
/// completes it. Wrong codes count toward the lockout.
#[utoipa::path(
    post,
    path = crate::paths::MFA_VERIFY,
    tag = "mfa",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The second factor completes the login", body = crate::api::auth::schema::LoginResponse),
        (status = 401, description = "`invalid_token` (unknown or expired `mfa_token`) or `invalid_code`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`mfa_token` or `code` is missing", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated wrong codes", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn verify(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if present(&body.mfa_token).is_none() {
        errors.push(FieldError::new("mfa_token", "is required"));
    }
    if present(&body.code).is_none() {
        errors.push(FieldError::new("code", "is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (token, code) = (
        body.mfa_token.unwrap_or_default(),
        body.code.unwrap_or_default(),
    );
    let attempt = Attempt {
        actor: actor(&http, None),
        client_id: Some(FIRST_PARTY_CLIENT_ID.to_owned()),
    };
    let (user_id, challenge) = complete_second_factor(&state, &token, &code, &attempt).await?;
    let issued = first_party::start_session(
        &state,
        &user_id,
        &["pwd", "otp"],
        ACR_MFA,
        challenge.remember_me,
        &attempt,
    )
    .await?;
    crate::accounts::devices::note_sign_in(&state, &issued.subject.user, &ClientInfo::of(&http))
        .await?;
    tracing::info!(target: "latchkey::security", event = "login", %user_id, session_id = %issued.session_id, mfa = true, "API login with a second factor");
    Ok(no_store(HttpResponse::Ok()).json(login_json(&issued, true)))
}

/// Completes a login's second factor for the API, mapping refusals to its error form.
async fn complete_second_factor(
    state: &AppState,
    mfa_token: &str,
    code: &str,
    attempt: &Attempt,
) -> Result<(String, mfa::LoginChallenge), ApiError> {
    match mfa::complete_second_factor(state, mfa_token, code, attempt).await {
        Ok(done) => Ok(done),
        Err(SecondFactorError::UnknownChallenge) => Err(mfa_error(MfaError::UnknownChallenge)),
        Err(SecondFactorError::WrongCode) => Err(mfa_error(MfaError::WrongCode)),
        Err(SecondFactorError::Locked { retry_after }) => {
            Err(credential_error(CredentialError::Locked { retry_after }))
        }
        Err(SecondFactorError::Internal(error)) => Err(error.into()),
    }
}

/// `{"password"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    password: Option<String>,
}

fn password_of(body: &PasswordRequest) -> Result<&str, ApiError> {
    body.password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::validation(vec![FieldError::new("password", "is required")]))
}

/// `POST /auth/mfa/disable` (needs the password).
#[utoipa::path(
    post,
    path = crate::paths::MFA_DISABLE,
    tag = "mfa",
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Two-step verification is off", body = crate::api::openapi::MessageBody),
        (status = 401, description = "No valid access token, or a wrong password (`invalid_credentials`)", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "`mfa_not_enabled`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`password` is missing", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated wrong passwords", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn disable(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let by = caller.actor(&http);
    confirm_password(&state, &user_id, password_of(&body)?, &by).await?;
    mfa::turn_off(&state, &user_id, &by)
        .await
        .map_err(mfa_error)?;
    Ok(HttpResponse::Ok().json(json!({ "message": "MFA disabled successfully" })))
}

/// `POST /auth/mfa/recovery-codes` (needs the password): ten new codes replace the old ones.
#[utoipa::path(
    post,
    path = crate::paths::MFA_RECOVERY_CODES,
    tag = "mfa",
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Ten new recovery codes, shown once; the old ones stop working", body = schema::RecoveryCodes),
        (status = 401, description = "No valid access token, or a wrong password (`invalid_credentials`)", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "`mfa_not_enabled`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`password` is missing", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated wrong passwords", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let by = caller.actor(&http);
    confirm_password(&state, &user_id, password_of(&body)?, &by).await?;
    let codes = mfa::replace_recovery_codes(&state, &user_id, &by)
        .await
        .map_err(mfa_error)?;
    Ok(no_store(HttpResponse::Ok()).json(json!({ "backup_codes": codes })))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(setup, verify_setup, verify, disable, regenerate_recovery_codes))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use utoipa::ToSchema;

    /// A TOTP setup (mirrors `accounts::mfa::TotpSetup`).
    #[derive(ToSchema)]
    pub struct TotpSetupBody {
        /// The secret in base32, for typing into an authenticator.
        pub secret: String,
        /// The `otpauth://` URL.
        pub qr_code_url: String,
        /// The same URL as a QR code, an SVG data URI.
        pub qr_code: String,
        /// Ten single-use recovery codes.
        pub backup_codes: Vec<String>,
        /// Identifies this setup when it is confirmed.
        pub setup_token: String,
    }

    /// A confirmed setup.
    #[derive(ToSchema)]
    pub struct MfaEnabled {
        pub message: String,
        /// Always `true`.
        pub enabled: bool,
    }

    /// New recovery codes.
    #[derive(ToSchema)]
    pub struct RecoveryCodes {
        pub backup_codes: Vec<String>,
    }
}
