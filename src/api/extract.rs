//! Extractors of the JSON API: the request body, and the caller behind a bearer token.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::api::error::{ApiError, FieldError};
use crate::http::{BodyError, media_type};
use crate::oauth::access_token::{self, ActiveToken, TokenError};
use crate::oauth::bearer::{self, BearerError};
use crate::startup::AppState;

/// A JSON request body parsed into `T`: 415 when it is not JSON, 413 when too large, 400 when
/// it is not well-formed, 422 (naming the field) when a member is missing, unknown or of the
/// wrong type. Request types use `deny_unknown_fields`, so a typo is reported, not ignored.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Parses a JSON body, reporting the path of the member at fault.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if crate::http::text::json_has_nul(body) {
        return Err(ApiError::bad_request(
            "The body holds a NUL character (\\u0000), which no field may",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|e| malformed(&e))?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(malformed(&inner));
            }
            let field = if path == "." { "body".to_owned() } else { path };
            Err(ApiError::validation(vec![FieldError::new(
                field,
                describe(&inner),
            )]))
        }
    }
}

/// serde's message without its "at line … column …" suffix.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_owned(),
        None => text,
    }
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "The request body is not valid JSON",
    )
    .with_details(
        json!({"line": error.line(), "column": error.column(), "reason": describe(error)}),
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let limit = request
                .app_data::<web::Data<AppState>>()
                .map(|s| s.settings.max_body_bytes)
                .unwrap_or(256 * 1024);
            if media_type(&request) != "application/json" {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "The request body must be application/json",
                ));
            }
            let body = crate::http::read_body(payload, limit)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge => ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("The request body is larger than the limit of {limit} bytes"),
                    ),
                    BodyError::Broken => {
                        ApiError::bad_request("The request body could not be read")
                    }
                })?;
            parse_json(&body).map(ApiJson)
        })
    }
}

/// A JSON body that may be absent (an empty body reads as the type's default).
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let body = crate::http::read_body(payload, 64 * 1024)
                .await
                .map_err(|_| ApiError::bad_request("The request body could not be read"))?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            if media_type(&request) != "application/json" {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "The request body must be application/json",
                ));
            }
            parse_json(&body).map(OptionalJson)
        })
    }
}

/// The caller of a protected resource, authenticated by an access token of this issuer: one
/// verification path for every resource (signature, expiry, revocation, account state).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The raw token (for handlers that act on it, such as logout).
    pub token: String,
    /// The verified token.
    pub active: ActiveToken,
}

impl Authenticated {
    /// The user id (the token's subject); 403 for client-credentials tokens, which have none.
    pub fn user_id(&self) -> Result<&str, ApiError> {
        if self.active.claims.has_user() {
            Ok(&self.active.claims.sub)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This resource needs a user's access token",
            ))
        }
    }

    /// Requires a permission (`*` grants all): 403 otherwise.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        let granted = &self.active.claims.permissions;
        if granted.iter().any(|p| p == "*" || p == permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("This action needs the {permission} permission"),
            ))
        }
    }
}

/// The actor of an audit entry for a request by `user_id` (or an anonymous one).
pub fn actor(http: &HttpRequest, user_id: Option<&str>) -> crate::events::audit::Actor {
    let info = crate::sessions::browser::ClientInfo::of(http);
    crate::events::audit::Actor {
        user_id: user_id.map(str::to_owned),
        email: None,
        ip_address: info.ip_address,
        user_agent: info.user_agent,
        request_id: Some(crate::telemetry::current_request_id()),
    }
}

impl Authenticated {
    /// The caller as the actor of an audit entry.
    pub fn actor(&self, http: &HttpRequest) -> crate::events::audit::Actor {
        actor(
            http,
            self.active
                .claims
                .has_user()
                .then_some(self.active.claims.sub.as_str()),
        )
    }
}

impl Authenticated {
    /// The caller of an admin action: who, with which permissions, from where.
    pub fn caller(&self, http: &HttpRequest) -> crate::admin::Caller {
        crate::admin::Caller {
            user_id: self
                .active
                .claims
                .has_user()
                .then(|| self.active.claims.sub.clone()),
            permissions: crate::domain::PermissionSet::new(
                self.active.claims.permissions.iter().cloned(),
            ),
            actor: self.actor(http),
        }
    }
}

/// The 401 of the API (RFC 6750 §3: with a `WWW-Authenticate` challenge).
pub fn unauthorized(code: Option<&str>, message: &str) -> ApiError {
    let challenge = match code {
        Some(code) => format!(
            r#"Bearer realm="latchkey", error="{code}", error_description="{}""#,
            crate::oauth::error::clean_description(message)
        ),
        None => r#"Bearer realm="latchkey""#.to_owned(),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_header(
        WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
    )
}

/// The middleware of [`crate::http::Endpoint`]'s guarded methods: authenticates the caller
/// and requires `permissions` before the handler's extractors run, so a caller without them
/// learns nothing from the validation of a query or body. The verified token is kept in the
/// request for the handler's [`Authenticated`].
pub async fn authorize(
    permissions: &'static [&'static str],
    mut request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<
    actix_web::dev::ServiceResponse<
        actix_web::body::EitherBody<actix_web::body::BoxBody, actix_web::body::BoxBody>,
    >,
    actix_web::Error,
> {
    use actix_web::ResponseError;
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let checked = match (request.extract::<Authenticated>().await, state) {
        (Ok(auth), Some(state)) => match current_permissions(&state, auth).await {
            Ok(auth) => permissions
                .iter()
                .try_for_each(|p| auth.require(p))
                .map(|()| auth),
            Err(error) => Err(error),
        },
        (Ok(_), None) => Err(ApiError::internal()),
        (Err(error), _) => Err(error),
    };
    match checked {
        Ok(auth) => {
            request.extensions_mut().insert(auth);
            Ok(next.call(request).await?.map_into_left_body())
        }
        Err(error) => Ok(request
            .into_response(error.error_response())
            .map_into_right_body()),
    }
}

/// Narrows a user token's permissions to those its user holds now (one read), so that a
/// demotion takes effect on the admin API at once rather than when the token expires.
pub async fn current_permissions(
    state: &AppState,
    mut auth: Authenticated,
) -> Result<Authenticated, ApiError> {
    if !auth.active.claims.has_user() {
        return Ok(auth);
    }
    let subject = auth.active.claims.sub.clone();
    let held = state
        .store
        .run(move |conn| crate::store::users::permissions(conn, &subject))
        .await?;
    auth.active.claims.permissions =
        crate::domain::still_held(&auth.active.claims.permissions, &held);
    Ok(auth)
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(checked) = request.extensions().get::<Authenticated>().cloned() {
            return Box::pin(async move { Ok(checked) });
        }
        let request = request.clone();
        Box::pin(async move {
            let state = request
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(ApiError::internal)?;
            let token = match bearer::from_header(&request) {
                Ok(Some(token)) => token,
                Ok(None) => return Err(unauthorized(None, "An access token is required")),
                Err(BearerError::Malformed | BearerError::Ambiguous | BearerError::Missing) => {
                    return Err(unauthorized(
                        Some("invalid_request"),
                        "The Authorization header must be: Bearer <token>",
                    ));
                }
            };
            let keys = state.keys.current();
            match access_token::check(&state.store, &keys, &state.settings.issuer, &token).await {
                Ok(active) => Ok(Authenticated { token, active }),
                Err(TokenError::Unavailable) => Err(ApiError::unavailable()),
                Err(error) => Err(unauthorized(Some("invalid_token"), &error.to_string())),
            }
        })
    }
}
