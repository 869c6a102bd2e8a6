//! The account pages a person reaches in a browser: the account page (two-step verification
//! and recovery codes), and the pages that email links open (verify the address, reset the
//! password). Every form is CSRF-protected; the pages behind a sign-in need the browser session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::accounts::login::{CredentialError, confirm_password};
use crate::accounts::mfa::{self, MfaError};
use crate::accounts::profile;
use crate::accounts::recovery::{self, RecoveryError, Verified};
use crate::api::extract::actor;
use crate::http::endpoint;
use crate::oauth::authorize::current_session;
use crate::paths;
use crate::startup::AppState;
use crate::web::csrf::{page_with_csrf, read_form};
use crate::web::pages::{
    AccountPage, MfaSetupPage, NoticePage, RecoveryCodesPage, ResetPasswordPage, VerifyEmailPage,
};
use crate::web::{PageError, render};

/// The routes of the account pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint(paths::ACCOUNT).get(account).finish())
        .service(endpoint("/account/mfa/setup").post(mfa_setup).finish())
        .service(endpoint("/account/mfa/confirm").post(mfa_confirm).finish())
        .service(endpoint("/account/mfa/disable").post(mfa_disable).finish())
        .service(
            endpoint("/account/mfa/recovery-codes")
                .post(mfa_recovery_codes)
                .finish(),
        )
        .service(
            endpoint(paths::ACCOUNT_VERIFY_EMAIL)
                .get(verify_email_form)
                .post(verify_email)
                .finish(),
        )
        .service(
            endpoint(paths::ACCOUNT_RESET_PASSWORD)
                .get(reset_password_form)
                .post(reset_password)
                .finish(),
        );
}

fn to_login() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", paths::LOGIN))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn to_account(done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}?done={done}", paths::ACCOUNT)))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The signed-in person's id, or `None` (the page sends the browser to the login page).
async fn signed_in(state: &AppState, http: &HttpRequest) -> Result<Option<String>, PageError> {
    Ok(current_session(state, http).await?.map(|s| s.user_id))
}

#[derive(Debug, Deserialize)]
struct AccountQuery {
    done: Option<String>,
}

async fn account_page(
    state: &AppState,
    http: &HttpRequest,
    user_id: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let id = user_id.to_owned();
    let (profile, left) = state
        .store
        .run(move |conn| {
            Ok((
                profile::load(conn, &id)?,
                mfa::recovery_codes_left(conn, &id)?,
            ))
        })
        .await?;
    Ok(page_with_csrf(state, http, status, |token| {
        render(
            status,
            &AccountPage {
                username: &profile.user.username,
                email: &profile.user.email,
                mfa_enabled: profile.mfa_enabled,
                recovery_codes_left: left,
                csrf_token: token,
                notice,
                error,
            },
        )
    }))
}

/// `GET /account`.
async fn account(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(user_id) = signed_in(&state, &http).await? else {
        return Ok(to_login());
    };
    let notice = match query.done.as_deref() {
        Some("mfa-on") => Some("Two-step verification is on."),
        Some("mfa-off") => Some("Two-step verification is off."),
        _ => None,
    };
    account_page(&state, &http, &user_id, StatusCode::OK, notice, None).await
}

/// `POST /account/mfa/setup` (needs the password): a new secret, its QR code and the
/// recovery codes.
async fn mfa_setup(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: PasswordForm = read_form(&state, &http, payload).await?;
    let Some(user_id) = signed_in(&state, &http).await? else {
        return Ok(to_login());
    };
    let by = actor(&http, Some(&user_id));
    if let Err(error) = confirm_password(&state, &user_id, &form.password, &by).await {
        return password_refused(&state, &http, &user_id, error).await;
    }
    let handles = state.handles();
    let id = user_id.clone();
    let setup = state
        .store
        .run(move |conn| {
            let user = crate::store::users::find(conn, &id)?;
            Ok(mfa::begin_setup(
                conn,
                &handles.crypto,
                &handles.settings,
                &id,
                &user.username,
            ))
        })
        .await?;
    match setup {
        Ok(setup) => Ok(page_with_csrf(&state, &http, StatusCode::OK, |token| {
            render(
                StatusCode::OK,
                &MfaSetupPage {
                    qr_code: &setup.qr_code,
                    secret: &setup.secret,
                    backup_codes: &setup.backup_codes,
                    setup_token: &setup.setup_token,
                    csrf_token: token,
                    error: None,
                },
            )
        })),
        Err(MfaError::AlreadyEnabled) => Ok(to_account("mfa-on")),
        Err(other) => Err(mfa_failure(other)),
    }
}

/// An MFA refusal a page did not expect, or the database's failure (a 503 when it is down).
fn mfa_failure(error: MfaError) -> PageError {
    match error {
        MfaError::Store(e) => e.into(),
        other => anyhow::anyhow!("MFA: {other}").into(),
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    setup_token: String,
    code: String,
}

/// `POST /account/mfa/confirm`: the code from the app turns two-step verification on.
async fn mfa_confirm(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: ConfirmForm = read_form(&state, &http, payload).await?;
    let Some(user_id) = signed_in(&state, &http).await? else {
        return Ok(to_login());
    };
    let by = actor(&http, Some(&user_id));
    match mfa::enable(&state, &form.setup_token, &form.code, Some(&user_id), &by).await {
        Ok(_) => Ok(to_account("mfa-on")),
        Err(MfaError::WrongCode) => {
            let handles = state.handles();
            let token = form.setup_token.clone();
            let pending = state
                .store
                .run(move |conn| {
                    mfa::pending_setup(conn, &handles.crypto, &handles.settings, &token)
                })
                .await?
                .ok_or_else(|| PageError::bad_request("This setup has expired. Start again."))?;

            Ok(page_with_csrf(
                &state,
                &http,
                StatusCode::UNPROCESSABLE_ENTITY,
                |token| {
                    render(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &MfaSetupPage {
                            qr_code: &pending.qr_code,
                            secret: &pending.secret,
                            backup_codes: &pending.backup_codes,
                            setup_token: &form.setup_token,
                            csrf_token: token,
                            error: Some(
                                "That code is not right. Check the time on your phone and try again.",
                            ),
                        },
                    )
                },
            ))
        }
        Err(MfaError::AlreadyEnabled) => Ok(to_account("mfa-on")),
        Err(MfaError::Store(e)) => Err(e.into()),
        Err(_) => Err(PageError::bad_request(
            "This setup has expired. Start again.",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    password: String,
}

/// The account page with an error, after a wrong password.
async fn password_refused(
    state: &AppState,
    http: &HttpRequest,
    user_id: &str,
    error: CredentialError,
) -> Result<HttpResponse, PageError> {
    let (status, message) = match error {
        CredentialError::Locked { .. } => (
            StatusCode::LOCKED,
            "Too many failed attempts: the account is locked for a while.",
        ),
        CredentialError::Internal(e) => return Err(e.into()),
        _ => (StatusCode::UNAUTHORIZED, "The password is incorrect."),
    };
    account_page(state, http, user_id, status, None, Some(message)).await
}

/// `POST /account/mfa/disable` (needs the password).
async fn mfa_disable(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: PasswordForm = read_form(&state, &http, payload).await?;
    let Some(user_id) = signed_in(&state, &http).await? else {
        return Ok(to_login());
    };
    let by = actor(&http, Some(&user_id));
    if let Err(error) = confirm_password(&state, &user_id, &form.password, &by).await {
        return password_refused(&state, &http, &user_id, error).await;
    }
    match mfa::turn_off(&state, &user_id, &by).await {
        // Already off (another tab turned it off): the page says so either way.
        Ok(()) | Err(MfaError::NotEnabled) => Ok(to_account("mfa-off")),
        Err(other) => Err(mfa_failure(other)),
    }
}

/// `POST /account/mfa/recovery-codes` (needs the password).
async fn mfa_recovery_codes(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: PasswordForm = read_form(&state, &http, payload).await?;
    let Some(user_id) = signed_in(&state, &http).await? else {
        return Ok(to_login());
    };
    let by = actor(&http, Some(&user_id));
    if let Err(error) = confirm_password(&state, &user_id, &form.password, &by).await {
        return password_refused(&state, &http, &user_id, error).await;
    }
    match mfa::replace_recovery_codes(&state, &user_id, &by).await {
        Ok(codes) => Ok(render(StatusCode::OK, &RecoveryCodesPage { codes: &codes })),
        Err(MfaError::NotEnabled) => Ok(to_account("mfa-off")),
        Err(other) => Err(mfa_failure(other)),
    }
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: String,
}

fn notice(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<&str>,
    link_text: &str,
) -> HttpResponse {
    render(
        status,
        &NoticePage {
            title,
            message,
            link,
            link_text,
        },
    )
}

/// `GET /account/verify-email?token=…`: a button, so that a mail scanner following the link
/// does not spend the token.
async fn verify_email_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    page_with_csrf(&state, &http, StatusCode::OK, |token| {
        render(
            StatusCode::OK,
            &VerifyEmailPage {
                token: &query.token,
                csrf_token: token,
            },
        )
    })
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    token: String,
}

/// `POST /account/verify-email`.
async fn verify_email(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: TokenForm = read_form(&state, &http, payload).await?;
    match recovery::verify_email(&state, &form.token, &actor(&http, None)).await {
        Ok(Verified::Email) => Ok(notice(
            StatusCode::OK,
            "Address confirmed",
            "Thank you: your email address is confirmed.",
            None,
            "",
        )),
        Ok(Verified::ChangedEmail(address)) => Ok(notice(
            StatusCode::OK,
            "Address changed",
            &format!("Your account now uses {address}."),
            None,
            "",
        )),
        Err(RecoveryError::EmailTaken) => Err(PageError::new(
            StatusCode::CONFLICT,
            "Address in use",
            "Another account uses this address now.",
        )),
        Err(RecoveryError::InvalidToken) => Err(PageError::bad_request(
            "This link is invalid, was already used, or has expired.",
        )),
        Err(RecoveryError::Store(e)) => Err(e.into()),
        Err(other) => Err(anyhow::anyhow!("{other}").into()),
    }
}

fn reset_form(
    state: &AppState,
    http: &HttpRequest,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> HttpResponse {
    page_with_csrf(state, http, status, |csrf| {
        render(
            status,
            &ResetPasswordPage {
                token,
                csrf_token: csrf,
                error,
            },
        )
    })
}

/// `GET /account/reset-password?token=…`.
async fn reset_password_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    if recovery::reset_token_expiry(&state, &query.token)
        .await?
        .is_none()
    {
        return Err(PageError::bad_request(
            "This link is invalid, was already used, or has expired. Ask for a new one.",
        ));
    }
    Ok(reset_form(
        &state,
        &http,
        StatusCode::OK,
        &query.token,
        None,
    ))
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    token: String,
    new_password: String,
    confirm_password: String,
}

/// `POST /account/reset-password`.
async fn reset_password(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: ResetForm = read_form(&state, &http, payload).await?;
    if form.new_password != form.confirm_password {
        return Ok(reset_form(
            &state,
            &http,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.token,
            Some("The two passwords differ."),
        ));
    }
    let by = actor(&http, None);
    match recovery::reset_password(
        &state,
        &form.token,
        SecretString::from(form.new_password),
        &by,
    )
    .await
    {
        Ok(()) => Ok(notice(
            StatusCode::OK,
            "Password changed",
            "Your password is changed and every device was signed out. Sign in with the new password.",
            None,
            "",
        )),
        Err(RecoveryError::WeakPassword(problem)) => Ok(reset_form(
            &state,
            &http,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.token,
            Some(&format!("The new password {problem}.")),
        )),
        Err(RecoveryError::InvalidToken) => Err(PageError::bad_request(
            "This link is invalid, was already used, or has expired. Ask for a new one.",
        )),
        Err(RecoveryError::Store(e)) => Err(e.into()),
        Err(other) => Err(anyhow::anyhow!("{other}").into()),
    }
}
