//! `/api/v1/auth/*`: registration, login (with lockout and MFA), refresh, logout, verify, me.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::first_party::{self, ApiLogin, FIRST_PARTY_CLIENT_ID};
use crate::accounts::login::{Attempt, CredentialError, on_behalf_of, verify_credentials};
use crate::accounts::mfa::{self, LoginChallenge};
use crate::accounts::policy::check_new_password;
use crate::accounts::profile::{self, Profile};
use crate::accounts::users::{CreateUserError, NewUser, create_user, webhook_user};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated, OptionalJson, actor};
use crate::domain::{ACR_PASSWORD, Email, Scope, Timestamp, Username, now};
use crate::events::audit::{self, AuditEvent};
use crate::events::webhooks;
use crate::oauth::clients::find_client;
use crate::oauth::error::ErrorCode;
use crate::oauth::issue::{Authentication, TokenContext, load_subject, mint_access_token};
use crate::oauth::params::Params;
use crate::sessions::browser::ClientInfo;
use crate::sessions::revoke::{Revocation, end_other_sessions, end_session};
use crate::startup::AppState;
use crate::store::grants;
use crate::store::{StoreError, from_json};

/// Trims a field and treats an empty one as absent.
pub fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `POST /auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// Validates a name field (optional, one line of at most 100 characters).
pub fn name_field(
    field: &str,
    value: &Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    crate::domain::text::line(value.as_deref()?, 100)
        .map_err(|e| errors.push(FieldError::new(field, e.0)))
        .ok()
        .flatten()
}

/// `POST /api/v1/auth/register`: creates an account with the `user` role (`user_registered`
/// in the audit log, `user.created` to the webhooks, in the transaction that creates it).
#[utoipa::path(
    post,
    path = crate::paths::AUTH_REGISTER,
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account, with the `user` role; a verification mail is on its way", body = schema::Registered),
        (status = 409, description = "The username or the address is taken (`details` names the field)", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member, or a weak password (`details` names each field)", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn register(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let email = match present(&body.email) {
        None => {
            errors.push(FieldError::new("email", "is required"));
            None
        }
        Some(raw) => Email::parse(raw)
            .map_err(|e| errors.push(FieldError::new("email", e.0)))
            .ok(),
    };
    let username = match present(&body.username).or(present(&body.email)) {
        None => None,
        Some(raw) => Username::parse(raw)
            .map_err(|e| errors.push(FieldError::new("username", e.0)))
            .ok(),
    };
    let first_name = name_field("first_name", &body.first_name, &mut errors);
    let last_name = name_field("last_name", &body.last_name, &mut errors);
    let password = match body.password.as_deref() {
        None | Some("") => {
            errors.push(FieldError::new("password", "is required"));
            None
        }
        Some(password) => {
            let known: Vec<&str> = [present(&body.username), present(&body.email)]
                .into_iter()
                .flatten()
                .collect();
            match check_new_password(
                password,
                &known,
                state.settings.accounts.password_min_strength,
            ) {
                Ok(()) => Some(SecretString::from(password.to_owned())),
                Err(problem) => {
                    errors.push(FieldError::new("password", problem));
                    None
                }
            }
        }
    };
    let (Some(email), Some(username), Some(password), true) =
        (email, username, password, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    let hash = state.passwords.hash(password).await?;
    let (by, crypto) = (actor(&http, None), state.crypto.clone());
    let created = state
        .store
        .write(move |conn| {
            let created = create_user(
                conn,
                NewUser {
                    username,
                    email,
                    password_hash: Some(hash),
                    roles: vec!["user".into()],
                    email_verified: false,
                },
            );
            let created = match created {
                Ok(created) => created,
                Err(error) => return Ok(Err(error)),
            };
            if first_name.is_some() || last_name.is_some() {
                crate::store::users::update_profile(
                    conn,
                    &created.id,
                    &crate::store::users::ProfileChanges {
                        first_name: Some(first_name),
                        last_name: Some(last_name),
                        ..Default::default()
                    },
                )?;
            }
            let user = crate::store::users::find(conn, &created.id)?;
            audit::record(
                conn,
                &on_behalf_of(&by, &user.id),
                AuditEvent::new("user_registered", "users", Some(&user.id))
                    .values(
                        None,
                        Some(json!({
                            "username": user.username,
                            "email": user.email,
                            "first_name": user.first_name,
                            "last_name": user.last_name,
                            "roles": created.roles,
                        })),
                    )
                    .info(json!({"method": "self-service"})),
            )?;
            webhooks::emit(
                conn,
                &crypto,
                "user.created",
                json!({ "user": webhook_user(&user) }),
            )?;
            Ok::<_, StoreError>(Ok(created))
        })
        .await?;
    let created = created.map_err(|e| match e {
        CreateUserError::UsernameTaken => ApiError::conflict("The username is already taken")
            .with_details(json!([{"field": "username", "message": "is already taken"}])),
        CreateUserError::EmailTaken => {
            ApiError::conflict("The email address is already registered")
                .with_details(json!([{"field": "email", "message": "is already registered"}]))
        }
        CreateUserError::UsernameIsAnotherAddress => {
            ApiError::validation(vec![FieldError::new("username", e.to_string())])
        }
        CreateUserError::UnknownRole(_) | CreateUserError::Store(_) => {
            ApiError::from(anyhow::anyhow!("registration failed: {e}"))
        }
    })?;
    crate::accounts::recovery::send_verification(&state, &created.id).await?;
    let user_id = created.id.clone();
    let profile = state
        .store
        .run(move |conn| profile::load(conn, &user_id))
        .await?;
    tracing::info!(target: "latchkey::security", event = "user_registered", user_id = %created.id, "account registered");
    let mut body = profile_json(&profile);
    body["message"] = json!("Registration successful. Check your email to verify your address.");
    Ok(HttpResponse::Created().json(body))
}

/// Seed 000's profile shape (`/users/profile`), also returned by registration.
pub fn profile_json(profile: &Profile) -> Value {
    let user = &profile.user;
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "roles": profile.roles,
        "permissions": profile.permissions,
        "status": user.status,
        "created_at": Timestamp(user.created_at),
        "updated_at": Timestamp(user.updated_at),
        "last_login": user.last_login_at.map(Timestamp),
        "email_verified": user.email_verified,
        "mfa_enabled": profile.mfa_enabled,
        "preferences": profile.preferences(),
    })
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    remember_me: bool,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "Invalid username or password",
    )
}

/// The 423 of a locked account, with `retry_after` in the body and the header.
pub fn account_locked(retry_after: i64) -> ApiError {
    let retry_after = retry_after.clamp(1, 365 * 86_400);
    ApiError::new(
        StatusCode::LOCKED,
        "account_locked",
        "The account is locked; try again after retry_after seconds",
    )
    .with_field("retry_after", retry_after)
    .with_header(
        RETRY_AFTER,
        HeaderValue::from_str(&retry_after.to_string()).expect("digits"),
    )
}

/// Maps a credential failure to the API's answer.
pub fn credential_error(error: CredentialError) -> ApiError {
    match error {
        CredentialError::Invalid => invalid_credentials(),
        CredentialError::Locked { retry_after } => account_locked(retry_after),
        CredentialError::Disabled => ApiError::new(
            StatusCode::FORBIDDEN,
            "account_disabled",
            "This account is disabled",
        ),
        CredentialError::Internal(error) => ApiError::from(error),
    }
}

/// The login response of seed 000; `mfa_enabled` says whether the account uses a second factor.
pub fn login_json(login: &ApiLogin, mfa_enabled: bool) -> Value {
    let user = &login.subject.user;
    json!({
        "access_token": login.access_token,
        "refresh_token": login.refresh_token,
        "token_type": "Bearer",
        "expires_in": login.expires_in,
        "refresh_expires_in": login.refresh_expires_in,
        "user": {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "roles": login.subject.roles,
            "permissions": login.subject.permissions,
            "last_login": user.last_login_at.map(Timestamp),
            "mfa_enabled": mfa_enabled,
        },
    })
}

/// `POST /api/v1/auth/login`: username or email and password. With MFA on, answers
/// `403 mfa_required` with an `mfa_token` for `/auth/mfa/verify`.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_LOGIN,
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in: an access token, a refresh token and the user", body = schema::LoginResponse),
        (status = 401, description = "`invalid_credentials`: the same answer whether or not the account exists", body = crate::api::openapi::ApiErrorBody),
        (status = 403, description = "`mfa_required` (with `mfa_token` for `/api/v1/auth/mfa/verify`) or `account_disabled`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`username` (or `email`) or `password` is missing", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated failures, with `retry_after`", body = crate::api::openapi::ApiErrorBody),
        (status = 429, description = "`too_many_login_attempts` from this address for this login", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn login(
    state: web::Data<AppState>,
    http: HttpRequest,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let login = present(&body.username).or(present(&body.email));
    if login.is_none() {
        errors.push(FieldError::new("username", "username or email is required"));
    }
    if body.password.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new("password", "is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let login = login.expect("checked above").to_owned();
    if login.len() > 254 || body.password.as_deref().is_some_and(|p| p.len() > 1024) {
        return Err(invalid_credentials());
    }
    let password = SecretString::from(body.password.unwrap_or_default());
    let attempt = Attempt {
        actor: actor(&http, None),
        client_id: Some(first_party::FIRST_PARTY_CLIENT_ID.to_owned()),
    };
    let verified = verify_credentials(&state, &login, password, &attempt)
        .await
        .map_err(credential_error)?;
    if verified.security.mfa_enabled {
        let (crypto, user_id) = (state.crypto.clone(), verified.user.id.clone());
        let challenge = LoginChallenge {
            remember_me: body.remember_me,
            ..Default::default()
        };
        let token = state
            .store
            .run(move |conn| mfa::new_login_challenge(conn, &crypto, &user_id, &challenge))
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa_required",
            "Multi-factor authentication required",
        )
        .with_field("mfa_token", token.expose()));
    }
    let issued = first_party::start_session(
        &state,
        &verified.user.id,
        &["pwd"],
        ACR_PASSWORD,
        body.remember_me,
        &attempt,
    )
    .await?;
    crate::accounts::devices::note_sign_in(&state, &verified.user, &ClientInfo::of(&http)).await?;
    tracing::info!(target: "latchkey::security", event = "login", user_id = %verified.user.id, session_id = %issued.session_id, "API login");
    Ok(no_store(HttpResponse::Ok()).json(login_json(&issued, false)))
}

/// A response builder with `Cache-Control: no-store` (bodies carrying tokens).
pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder.insert_header(("Cache-Control", "no-store"));
    builder
}

/// `POST /auth/refresh`: `{"refresh_token"}` rotates it; with only a bearer access token
/// (seed 003), a new access token is issued while its session still has a live refresh token.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

/// `POST /api/v1/auth/refresh`.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_REFRESH,
    tag = "auth",
    description = "With `refresh_token`, rotates it: a new access token and a new refresh token (a rotated token used again revokes its whole family). With an empty body and a bearer access token instead (seed 003), a new access token while the token's session still has a live refresh token.",
    request_body(content = Option<RefreshRequest>, description = "Optional: without it, the bearer token is used"),
    responses(
        (status = 200, description = "New tokens (`refresh_token` only when one was presented)", body = schema::Refreshed),
        (status = 400, description = "Neither a refresh token nor a token of a session", body = crate::api::openapi::ApiErrorBody),
        (status = 401, description = "`invalid_token`: the refresh token is unknown, used, expired or revoked, or the session has none left", body = crate::api::openapi::ApiErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn refresh(
    state: web::Data<AppState>,
    http: HttpRequest,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = {
        let id = FIRST_PARTY_CLIENT_ID;
        state
            .store
            .run(move |conn| find_client(conn, id))
            .await?
            .ok_or_else(ApiError::internal)?
    };
    if let Some(refresh_token) = present(&body.refresh_token) {
        let params = Params::from_pairs(&[("refresh_token", refresh_token)]);
        let by = actor(&http, None);
        return match crate::oauth::token::refresh_token::refresh(&state, &client, &params, by).await
        {
            Ok(tokens) => Ok({
                state.metrics.token_issued("refresh_token");
                no_store(HttpResponse::Ok())
            }
            .json(json!({
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
                "refresh_expires_in": tokens.refresh_expires_in,
            }))),
            Err(error) if error.code() == ErrorCode::InvalidGrant => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                error.description().to_owned(),
            )),
            Err(error) if error.code() == ErrorCode::TemporarilyUnavailable => {
                Err(ApiError::unavailable())
            }
            Err(error) => Err(ApiError::bad_request(error.description().to_owned())),
        };
    }
    // Seed 003: only a bearer token.
    let caller = Authenticated::extract(&http).await?;
    reissue(&state, &caller).await
}

impl Authenticated {
    async fn extract(http: &HttpRequest) -> Result<Self, ApiError> {
        use actix_web::FromRequest;
        Authenticated::from_request(http, &mut actix_web::dev::Payload::None).await
    }
}

/// A new access token for the grant of a still-valid first-party one, while the grant has a
/// live refresh token (the session is still open). Another client's token is never renewed
/// here: that would turn a leaked short-lived token into one that never ends.
async fn reissue(state: &AppState, caller: &Authenticated) -> Result<HttpResponse, ApiError> {
    let claims = &caller.active.claims;
    if claims.client_id != crate::accounts::first_party::FIRST_PARTY_CLIENT_ID {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Only tokens of Latchkey's own sign-in are renewed with a bearer token: use the refresh token",
        ));
    }
    let grant_id = claims
        .gid
        .clone()
        .ok_or_else(|| ApiError::bad_request("refresh_token is required"))?;
    let found = state
        .store
        .run(move |conn| {
            let grant = grants::find_grant(conn, &grant_id)?;
            if !grants::has_live_refresh_token(conn, &grant.id, now())? {
                return Ok(None);
            }
            let client = find_client(conn, &grant.client_id)?.ok_or(StoreError::NotFound)?;
            let subject = load_subject(conn, &grant.user_id)?;
            Ok(Some((grant, client, subject)))
        })
        .await?;
    let (grant, client, subject) = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The session has no live refresh token: log in again",
        )
    })?;
    let scope = Scope::parse(&claims.scope).unwrap_or_default();
    let authentication = Authentication {
        auth_time: grant.auth_time,
        acr: grant.acr.clone(),
        amr: from_json("grants.amr", &grant.amr)?,
        session_id: grant.session_id.clone(),
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
    state.metrics.token_issued("refresh_token");
    Ok(no_store(HttpResponse::Ok()).json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.settings.lifetimes.access_token,
    })))
}

/// `POST /auth/logout`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    #[serde(default)]
    all_devices: bool,
    /// Seed 001 sends the refresh token too: its family is revoked as well.
    refresh_token: Option<String>,
}

/// `POST /api/v1/auth/logout`: ends the caller's session, or all of them (`logout` in the audit
/// log, and `session_revoked` for each session ended, in one transaction).
#[utoipa::path(
    post,
    path = crate::paths::AUTH_LOGOUT,
    tag = "auth",
    request_body(content = Option<LogoutRequest>, description = "Optional"),
    responses(
        (status = 200, description = "The session (or, with `all_devices`, every session) ended", body = crate::api::openapi::MessageBody),
    ),
    security(("bearer" = [])),
)]
pub async fn logout(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    OptionalJson(body): OptionalJson<LogoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = caller.user_id()?.to_owned();
    let claims = caller.active.claims.clone();
    let all = body.all_devices;
    let presented_refresh = present(&body.refresh_token).map(|t| state.crypto.hash_token(t).0);
    let crypto = state.crypto.clone();
    let by = caller.actor(&http);
    let ended = state
        .store
        .write(move |conn| {
            let at = now();
            let revocation = Revocation {
                actor: &by,
                reason: if all {
                    "logout from all devices"
                } else {
                    "logout"
                },
                at,
            };
            if let Some(hash) = presented_refresh
                && let Ok(row) = grants::find_refresh_token(conn, &hash)
            {
                let grant = grants::find_grant(conn, &row.grant_id)?;
                if grant.user_id == user_id {
                    grants::revoke_grant(conn, &grant.id, "logout", at)?;
                }
            }
            let ended = if all {
                end_other_sessions(conn, &crypto, &user_id, None, None, &revocation)?
            } else {
                match (&claims.sid, &claims.gid) {
                    (Some(sid), _) => end_session(conn, &crypto, sid, false, &revocation)?,
                    (None, Some(gid)) => {
                        grants::revoke_grant(conn, gid, "logout", at)?;
                        Default::default()
                    }
                    (None, None) => Default::default(),
                }
            };
            audit::record(
                conn,
                &by,
                AuditEvent::new("logout", "sessions", claims.sid.as_deref()).info(json!({
                    "client_id": claims.client_id,
                    "all_devices": all,
                    "sessions_ended": ended.sessions.len(),
                })),
            )?;
            Ok(ended)
        })
        .await?;
    tracing::info!(target: "latchkey::security", event = "logout", sessions = ended.sessions.len(), grants = ended.grants.len(), "logout");
    Ok(HttpResponse::Ok().json(json!({ "message": "Successfully logged out" })))
}

/// `POST /api/v1/auth/verify`: whether the bearer token is valid, and whose it is.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_VERIFY,
    tag = "auth",
    responses(
        (status = 200, description = "The token is valid: whose it is, its scope and expiry", body = schema::Verified),
    ),
    security(("bearer" = [])),
)]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let claims = &caller.active.claims;
    let user = match claims.has_user() {
        true => {
            let id = claims.sub.clone();
            let profile = state
                .store
                .run(move |conn| profile::load(conn, &id))
                .await?;
            json!({
                "id": profile.user.id,
                "username": profile.user.username,
                "roles": claims.roles,
                "permissions": claims.permissions,
            })
        }
        false => {
            json!({ "id": claims.sub, "client_id": claims.client_id, "permissions": claims.permissions })
        }
    };
    Ok(HttpResponse::Ok().json(json!({
        "valid": true,
        "user": user,
        "scope": claims.scope,
        "expires_at": Timestamp(claims.exp),
    })))
}

/// `GET /api/v1/auth/me` in seed 001's shape.
#[utoipa::path(
    get,
    path = crate::paths::AUTH_ME,
    tag = "profile",
    responses(
        (status = 200, description = "The caller (`profile:read`)", body = schema::AuthMe),
    ),
    security(("bearer" = ["profile:read"])),
)]
pub async fn me(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:read")?;
    let id = caller.user_id()?.to_owned();
    let profile = state
        .store
        .run(move |conn| profile::load(conn, &id))
        .await?;
    let user = &profile.user;
    Ok(HttpResponse::Ok().json(json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": profile.roles.first(),
        "roles": profile.roles,
        "status": user.status,
        "is_active": user.status == "active",
        "email_verified": user.email_verified,
        "last_login": user.last_login_at.map(Timestamp),
        "created_at": Timestamp(user.created_at),
        "permissions": profile.permissions,
        "mfa_enabled": profile.mfa_enabled,
    })))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login, refresh, logout, verify, me))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document: the handlers build them
/// with `json!`, and the schemathesis run of `scripts/test` holds the two together.
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use serde_json::Value;
    use utoipa::ToSchema;

    /// Seed 000's profile (`/users/profile`).
    #[derive(ToSchema)]
    pub struct Profile {
        pub id: String,
        pub username: String,
        pub email: String,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        pub roles: Vec<String>,
        /// The effective permissions (of the roles and direct ones).
        pub permissions: Vec<String>,
        /// `active`, `inactive`, `suspended`, ...
        pub status: String,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub last_login: Option<Timestamp>,
        pub email_verified: bool,
        pub mfa_enabled: bool,
        #[schema(value_type = Object)]
        pub preferences: Value,
    }

    /// A new account.
    #[derive(ToSchema)]
    pub struct Registered {
        #[serde(flatten)]
        pub profile: Profile,
        pub message: String,
    }

    /// The user of a login response.
    #[derive(ToSchema)]
    pub struct LoginUser {
        pub id: String,
        pub username: String,
        pub email: String,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        pub roles: Vec<String>,
        pub permissions: Vec<String>,
        pub last_login: Option<Timestamp>,
        pub mfa_enabled: bool,
    }

    /// Seed 000's login response.
    #[derive(ToSchema)]
    pub struct LoginResponse {
        pub access_token: String,
        pub refresh_token: String,
        /// `Bearer`.
        pub token_type: String,
        /// Seconds the access token lives (900 by default).
        pub expires_in: u64,
        /// Seconds the refresh token lives.
        pub refresh_expires_in: u64,
        pub user: LoginUser,
    }

    /// New tokens of a refresh.
    #[derive(ToSchema)]
    pub struct Refreshed {
        pub access_token: String,
        /// Present when a refresh token was rotated.
        pub refresh_token: Option<String>,
        /// `Bearer`.
        pub token_type: String,
        pub expires_in: u64,
        pub refresh_expires_in: Option<u64>,
    }

    /// Whose a verified token is: a user (`username`, `roles`) or a client (`client_id`).
    #[derive(ToSchema)]
    pub struct TokenOwner {
        pub id: String,
        pub username: Option<String>,
        pub roles: Option<Vec<String>>,
        pub client_id: Option<String>,
        pub permissions: Vec<String>,
    }

    /// The answer of `/auth/verify`.
    #[derive(ToSchema)]
    pub struct Verified {
        /// Always `true` (an invalid token is a 401).
        pub valid: bool,
        pub user: TokenOwner,
        pub scope: String,
        pub expires_at: Timestamp,
    }

    /// Seed 001's `/auth/me`.
    #[derive(ToSchema)]
    pub struct AuthMe {
        pub id: String,
        pub username: String,
        pub email: String,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        /// The first role.
        pub role: Option<String>,
        pub roles: Vec<String>,
        pub status: String,
        pub is_active: bool,
        pub email_verified: bool,
        pub last_login: Option<Timestamp>,
        pub created_at: Timestamp,
        pub permissions: Vec<String>,
        pub mfa_enabled: bool,
    }
}
