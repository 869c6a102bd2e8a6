//! `/api/v1/auth/*` for getting back into an account: forgot and reset password, verify and
//! re-send the email verification, and `/users/change-email`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::recovery::{self, RecoveryError, Verified};
use crate::api::auth::{credential_error, present};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated, actor};
use crate::domain::Email;
use crate::events::audit::Actor;
use crate::startup::AppState;

fn recovery_error(error: RecoveryError) -> ApiError {
    match error {
        RecoveryError::InvalidToken => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "The link is invalid or has expired",
        ),
        RecoveryError::WeakPassword(problem) => {
            ApiError::validation(vec![FieldError::new("new_password", problem)])
        }
        RecoveryError::EmailTaken => ApiError::conflict("The email address is already in use")
            .with_details(json!([{"field": "new_email", "message": "is already in use"}])),
        RecoveryError::Store(e) => e.into(),
        RecoveryError::Internal(e) => e.into(),
    }
}

/// `{"email"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    email: Option<String>,
}

/// `POST /auth/forgot-password`: always 200, saying nothing about whether the account exists.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_FORGOT_PASSWORD,
    tag = "auth",
    request_body = ForgotRequest,
    responses(
        (status = 200, description = "Always, whether or not an account has this address", body = crate::api::openapi::MessageBody),
        (status = 422, description = "`email` is missing or not an address", body = crate::api::openapi::ApiErrorBody),
        (status = 429, description = "`too_many_reset_requests` from this address", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn forgot_password(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<ForgotRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = present(&body.email)
        .ok_or_else(|| ApiError::validation(vec![FieldError::new("email", "is required")]))?;
    let address = Email::parse(address)
        .map_err(|e| ApiError::validation(vec![FieldError::new("email", e.0)]))?;
    recovery::request_reset(&state, address.as_str(), &actor(&http, None));
    Ok(HttpResponse::Ok().json(json!({
        "message": "Password reset email sent if account exists",
    })))
}

/// `{"token"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    token: Option<String>,
}

fn token_of(body: &TokenRequest) -> Result<&str, ApiError> {
    present(&body.token)
        .ok_or_else(|| ApiError::validation(vec![FieldError::new("token", "is required")]))
}

/// `POST /auth/verify-reset-token`: `{"valid", "expires_at"}`.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_VERIFY_RESET_TOKEN,
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Whether the reset token can still be used, and until when", body = schema::ResetTokenState),
        (status = 422, description = "`token` is missing", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn verify_reset_token(
    state: web::Data<AppState>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = token_of(&body)?;
    Ok(
        HttpResponse::Ok().json(match recovery::reset_token_expiry(&state, token).await? {
            Some(expires_at) => json!({ "valid": true, "expires_at": expires_at }),
            None => json!({ "valid": false }),
        }),
    )
}

/// `{"token", "new_password", "confirm_password"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    token: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

/// Checks a new password and its confirmation are there and agree.
pub fn new_password_pair(
    new_password: &Option<String>,
    confirm_password: &Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match (new_password.as_deref(), confirm_password.as_deref()) {
        (None | Some(""), _) => {
            errors.push(FieldError::new("new_password", "is required"));
            None
        }
        (Some(_), None | Some("")) => {
            errors.push(FieldError::new("confirm_password", "is required"));
            None
        }
        (Some(a), Some(b)) if a != b => {
            errors.push(FieldError::new(
                "confirm_password",
                "does not match new_password",
            ));
            None
        }
        (Some(a), Some(_)) => Some(a.to_owned()),
    }
}

/// `POST /auth/reset-password`.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_RESET_PASSWORD,
    tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 200, description = "The password is set; every session of the account ended", body = crate::api::openapi::MessageBody),
        (status = 400, description = "`invalid_token`: the link is invalid or has expired", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing member, passwords that differ, or a weak password", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if present(&body.token).is_none() {
        errors.push(FieldError::new("token", "is required"));
    }
    let password = new_password_pair(&body.new_password, &body.confirm_password, &mut errors);
    let (Some(token), Some(password), true) = (present(&body.token), password, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    recovery::reset_password(
        &state,
        token,
        SecretString::from(password),
        &actor(&http, None),
    )
    .await
    .map_err(recovery_error)?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Password reset successfully" })))
}

/// `POST /auth/verify-email`.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_VERIFY_EMAIL,
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The address is verified (or, for a change of address, changed)", body = schema::EmailVerified),
        (status = 400, description = "`invalid_token`: the link is invalid or has expired", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The new address was taken meanwhile", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`token` is missing", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = token_of(&body)?;
    let verified = recovery::verify_email(&state, token, &actor(&http, None))
        .await
        .map_err(recovery_error)?;
    Ok(HttpResponse::Ok().json(match verified {
        Verified::Email => json!({ "message": "Email verified successfully" }),
        Verified::ChangedEmail(email) => json!({
            "message": "Email address changed successfully",
            "email": email,
        }),
    }))
}

/// `POST /auth/resend-verification` (bearer).
#[utoipa::path(
    post,
    path = crate::paths::AUTH_RESEND_VERIFICATION,
    tag = "auth",
    responses(
        (status = 200, description = "A new verification mail is on its way, or the address is already verified", body = crate::api::openapi::MessageBody),
    ),
    security(("bearer" = [])),
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user_id = caller.user_id()?.to_owned();
    let sent = recovery::send_verification(&state, &user_id).await?;
    Ok(HttpResponse::Ok().json(if sent {
        json!({ "message": "Verification email sent" })
    } else {
        json!({ "message": "The email address is already verified" })
    }))
}

/// `{"new_email", "password"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    new_email: Option<String>,
    password: Option<String>,
}

/// Checks the caller's current password; a wrong one counts toward the lockout (and is written
/// to the audit log as `actor`'s).
pub async fn confirm_password(
    state: &AppState,
    user_id: &str,
    password: &str,
    actor: &Actor,
) -> Result<(), ApiError> {
    crate::accounts::login::confirm_password(state, user_id, password, actor)
        .await
        .map_err(credential_error)
}

/// `POST /users/change-email`: a link to the new address confirms it.
#[utoipa::path(
    post,
    path = crate::paths::USERS_CHANGE_EMAIL,
    tag = "profile",
    request_body = ChangeEmailRequest,
    responses(
        (status = 200, description = "A link to the new address will confirm the change", body = schema::EmailChangeStarted),
        (status = 401, description = "No valid access token, or a wrong password (`invalid_credentials`)", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The new address is in use", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated wrong passwords", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn change_email(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<ChangeEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let mut errors = Vec::new();
    let email = match present(&body.new_email) {
        None => {
            errors.push(FieldError::new("new_email", "is required"));
            None
        }
        Some(raw) => Email::parse(raw)
            .map_err(|e| errors.push(FieldError::new("new_email", e.0)))
            .ok(),
    };
    if body.password.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new("password", "is required"));
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let by = caller.actor(&http);
    confirm_password(
        &state,
        &user_id,
        body.password.as_deref().unwrap_or_default(),
        &by,
    )
    .await?;
    recovery::request_email_change(&state, &user_id, email.as_str(), &by)
        .await
        .map_err(recovery_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": "Email change verification sent",
        "verification_required": true,
    })))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    forgot_password,
    verify_reset_token,
    reset_password,
    verify_email,
    resend_verification,
    change_email
))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document (the handlers build them
/// with `json!`).
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// Whether a reset token is still good.
    #[derive(ToSchema)]
    pub struct ResetTokenState {
        pub valid: bool,
        /// When the token stops working (only while it is valid).
        pub expires_at: Option<Timestamp>,
    }

    /// A verified address; `email` is the new one when the link confirmed a change.
    #[derive(ToSchema)]
    pub struct EmailVerified {
        pub message: String,
        pub email: Option<String>,
    }

    /// A change of address, waiting for its confirmation.
    #[derive(ToSchema)]
    pub struct EmailChangeStarted {
        pub message: String,
        /// Always `true`.
        pub verification_required: bool,
    }
}
