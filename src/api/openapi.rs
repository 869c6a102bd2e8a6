//! The OpenAPI 3.1 document of the JSON API (`/api/v1`) and of the protocol endpoints, built
//! from the handlers' `#[utoipa::path]` annotations, and served at `/openapi.json`.
//!
//! Each handler module declares its operations (and the shapes of its bodies) next to its
//! routes, in a `Doc` struct; [`document`] merges them here, once, on the first request. What
//! every operation shares is added in one pass rather than repeated on each handler: the JSON API's
//! error responses (401/403 for bearer-protected operations, 400/413/415/422 for bodies and
//! queries, 429 under the rate limits, 500 and 503 everywhere), unique operation ids, and the
//! alias paths that serve the same handlers (`/api/v1/admin/users/...`, `/api/v1/webhooks/...`,
//! `/api/v1/oauth/...`). `tests/api/openapi.rs` holds the router and this document to each other.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::api::error::ApiError;
use crate::domain::Timestamp;
use crate::paths;

/// The JSON API's error form (`ApiError` in `src/api/error.rs`), as clients receive it.
#[derive(ToSchema)]
#[schema(as = ApiError)]
#[allow(dead_code)] // documentation only: `ApiError::body` builds this object
pub struct ApiErrorBody {
    /// A snake_case code: `invalid_request`, `validation_error`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `account_locked`, `mfa_required`, `too_many_requests`, ...
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// The HTTP status, repeated.
    pub code: u16,
    /// More about the error: for a 422, a list of `{field, message}`; for malformed JSON,
    /// `{line, column, reason}`; for an unhealthy dependency, the checks.
    #[schema(schema_with = any_value)]
    pub details: Option<Value>,
    /// The id of the request (also in the `X-Request-Id` header).
    pub request_id: String,
    /// Seconds until a locked account or a rate limit lets the caller try again (423, 429).
    pub retry_after: Option<i64>,
    /// The token of the second factor to send to `/api/v1/auth/mfa/verify` (403 `mfa_required`).
    pub mfa_token: Option<String>,
}

/// One entry of a 422's `details`.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: mirrors `api::error::FieldError`
pub struct FieldErrorBody {
    /// The field at fault (a dotted path for nested members, `body` for the whole body).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The error form of the token, revocation, introspection and UserInfo endpoints
/// (RFC 6749 §5.2).
#[derive(ToSchema)]
#[schema(as = OAuthError)]
#[allow(dead_code)] // documentation only: `OAuthError::error_response` builds this object
pub struct OAuthErrorBody {
    /// The registered code: `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_token`,
    /// `insufficient_scope`, `unsupported_token_type`, `server_error`,
    /// `temporarily_unavailable`.
    pub error: String,
    /// What went wrong, for developers.
    pub error_description: String,
}

/// A response that only says what was done.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handlers answer `json!({"message": ...})`
pub struct MessageBody {
    /// What was done.
    pub message: String,
}

/// The `pagination` member of every list: by position (`page`, `offset`, `total`, `pages`)
/// or, with `cursor`, by key (`next_cursor`, `total_estimate`).
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: built by `api::pagination`
pub struct Pagination {
    /// The page size.
    pub limit: i64,
    /// Whether more items follow.
    pub has_more: bool,
    /// The page number (offset paging).
    pub page: Option<i64>,
    /// Items skipped (offset paging).
    pub offset: Option<i64>,
    /// Items in the whole list (offset paging).
    pub total: Option<i64>,
    /// Pages in the whole list (offset paging).
    pub pages: Option<i64>,
    /// The `cursor` of the next page, `null` on the last one (cursor paging).
    pub next_cursor: Option<String>,
    /// Items in the whole list (cursor paging).
    pub total_estimate: Option<i64>,
}

/// The paging parameters every list accepts (`limit` above 100 is refused, not clamped).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: mirrors `api::pagination::PageQuery`
pub struct PagingParams {
    /// The page, from 1 (not with `offset` or `cursor`).
    #[param(minimum = 1)]
    pub page: Option<i64>,
    /// The page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// A synonym of `limit` (seed 001); when both are given they must agree.
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
    /// Items to skip (not with `page` or `cursor`).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Pages by key: empty for the first page, then the `next_cursor` of the previous one.
    pub cursor: Option<String>,
}

/// A schema that any JSON value matches (for members whose shape depends on the case).
pub fn any_value() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .build()
}

/// Times are RFC 3339 in UTC.
impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples([json!("2025-08-17T10:30:00Z")])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// The operations and schemas declared here rather than in a handler module.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey",
        description = "An OAuth 2.0 authorization server and OpenID Connect provider.\n\n\
The JSON API lives under `/api/v1`; its resources are protected by access tokens that this \
server issued (the `bearer` scheme), with `resource:action` permissions. The protocol endpoints \
(`/oauth/*`, `/.well-known/*`) follow their RFCs, and discovery publishes their exact paths.\n\n\
Errors of the JSON API have one form (`ApiError`); errors of the protocol endpoints have the \
OAuth form (`OAuthError`). Every response carries `X-Request-Id`; responses of the JSON API \
carry the `X-RateLimit-*` headers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ApiErrorBody, FieldErrorBody, OAuthErrorBody, MessageBody, Pagination)),
    tags(
        (name = "auth", description = "Registration, login, tokens and account recovery of the JSON API"),
        (name = "mfa", description = "Two-step verification (TOTP and recovery codes)"),
        (name = "profile", description = "The caller's own profile, password and address"),
        (name = "sessions", description = "The caller's sessions"),
        (name = "users", description = "Users, for administrators (`users:*`)"),
        (name = "roles", description = "Roles and the permission catalogue (`roles:*`)"),
        (name = "clients", description = "OAuth clients (`clients:*`)"),
        (name = "api-keys", description = "API keys of service accounts (`api_keys:*`)"),
        (name = "webhooks", description = "Webhooks and their deliveries (`webhooks:*`)"),
        (name = "audit", description = "The audit log (`audit:read`)"),
        (name = "stats", description = "Statistics and analytics (`stats:read`)"),
        (name = "system", description = "Health, information and metrics"),
        (name = "oauth", description = "OAuth 2.0 protocol endpoints"),
        (name = "oidc", description = "OpenID Connect endpoints"),
    ),
)]
struct Common;

/// The document, with `issuer` as its server: every operation of every module, the shared
/// error responses, the alias paths and unique operation ids.
pub fn document(issuer: &str) -> Value {
    let mut api = Common::openapi();
    for part in [
        crate::api::auth::Doc::openapi(),
        crate::api::recovery::Doc::openapi(),
        crate::api::mfa::Doc::openapi(),
        crate::api::profile::Doc::openapi(),
        crate::api::sessions::Doc::openapi(),
        crate::api::quota::Doc::openapi(),
        crate::api::users::Doc::openapi(),
        crate::api::roles::Doc::openapi(),
        crate::api::clients::Doc::openapi(),
        crate::api::api_keys::Doc::openapi(),
        crate::api::webhooks::Doc::openapi(),
        crate::api::reports::Doc::openapi(),
        crate::api::health::Doc::openapi(),
        crate::api::system::Doc::openapi(),
        crate::metrics::Doc::openapi(),
        crate::oauth::Doc::openapi(),
        crate::oidc::Doc::openapi(),
    ] {
        api.merge(part);
    }
    let mut doc = serde_json::to_value(&api).expect("the document serialises");
    doc["servers"] = json!([{ "url": issuer, "description": "This server (its issuer)" }]);
    doc["components"]["securitySchemes"] = security_schemes();
    let paths = doc["paths"].as_object_mut().expect("paths is an object");
    add_aliases(paths);
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if let Some(operation) = operation.as_object_mut() {
                operation.insert(
                    "operationId".into(),
                    Value::String(operation_id(method, path)),
                );
                add_common_responses(path, operation);
            }
        }
    }
    doc
}

/// The document as served, built by its first request rather than at start: building it
/// runs every module's schema code and peaks at about 5 MiB of heap, which an instance that is
/// never asked for its document should not pay in idle memory.
#[derive(Default)]
pub struct ServedDocument(OnceLock<Bytes>);

impl ServedDocument {
    /// The JSON bytes, built off the executor the first time.
    async fn json(&self, issuer: &str) -> Result<Bytes, ApiError> {
        if let Some(json) = self.0.get() {
            return Ok(json.clone());
        }
        let issuer = issuer.to_owned();
        let json = actix_web::web::block(move || serde_json::to_vec(&document(&issuer)))
            .await
            .map_err(|e| anyhow::anyhow!("building the OpenAPI document: {e}"))?
            .map_err(|e| anyhow::anyhow!("serialising the OpenAPI document: {e}"))?;
        Ok(self.0.get_or_init(|| Bytes::from(json)).clone())
    }
}

/// `GET /openapi.json`.
pub async fn openapi_json(
    state: actix_web::web::Data<crate::startup::AppState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let json = state.openapi.json(&state.settings.issuer).await?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(json))
}

fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token of this issuer (a JWT, RFC 9068): from \
    `POST /api/v1/auth/login`, `POST /api/v1/auth/token` (API keys) or the token endpoint. \
    Revoked tokens stop working at once. Each operation names the permissions it needs.",
        },
        "client_secret_basic": {
            "type": "http",
            "scheme": "basic",
            "description": "Client authentication at the token, revocation and introspection \
    endpoints with the client id and secret, each form-urlencoded (RFC 6749 §2.3.1). The same \
    endpoints also accept `client_secret_post` (the credentials as body parameters), \
    `private_key_jwt` (`client_assertion` and `client_assertion_type`) and, for public clients, \
    `none` (only `client_id`).",
        },
        "metrics_token": {
            "type": "http",
            "scheme": "bearer",
            "description": "The `metrics.token` of the configuration.",
        },
    })
}

/// Paths served by the handlers of another documented path: `(documented, alias, methods)`,
/// methods `None` meaning all of them.
fn aliases() -> Vec<(String, String, Option<&'static [&'static str]>)> {
    let mut list: Vec<(String, String, Option<&'static [&'static str]>)> = vec![
        (
            paths::USERS.into(),
            paths::USERS_SEARCH.into(),
            Some(&["get"]),
        ),
        (
            paths::AUTH_CHANGE_PASSWORD.into(),
            paths::USERS_CHANGE_PASSWORD.into(),
            None,
        ),
        (
            paths::OPENID_CONFIGURATION.into(),
            paths::OAUTH_AUTHORIZATION_SERVER.into(),
            None,
        ),
        (paths::AUTHORIZE.into(), paths::API_AUTHORIZE.into(), None),
        (paths::TOKEN.into(), paths::API_TOKEN.into(), None),
        (paths::REVOKE.into(), paths::API_REVOKE.into(), None),
    ];
    for tail in [
        "",
        "/{id}",
        "/{id}/lock",
        "/{id}/unlock",
        "/{id}/preferences",
        "/{id}/activity",
    ] {
        list.push((
            format!("{}{tail}", paths::USERS),
            format!("{}{tail}", paths::ADMIN_USERS),
            None,
        ));
    }
    for tail in ["", "/{id}", "/{id}/test", "/{id}/deliveries"] {
        list.push((
            format!("{}{tail}", paths::WEBHOOKS),
            format!("{}{tail}", paths::ADMIN_WEBHOOKS),
            None,
        ));
    }
    list
}

fn add_aliases(paths: &mut Map<String, Value>) {
    for (from, to, methods) in aliases() {
        let Some(Value::Object(item)) = paths.get(&from).cloned() else {
            panic!("the alias source {from} is not documented");
        };
        let item: Map<String, Value> = item
            .into_iter()
            .filter(|(method, _)| methods.is_none_or(|m| m.contains(&method.as_str())))
            .collect();
        match paths.get_mut(&to) {
            Some(Value::Object(existing)) => existing.extend(item),
            _ => {
                paths.insert(to, Value::Object(item));
            }
        }
    }
}

/// `get /api/v1/users/{id}` → `get_api_v1_users_id`: unique, and stable across builds.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !word.is_empty() {
            id.push('_');
            id.push_str(word);
        }
    }
    id
}

fn error_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } }
        }
    })
}

/// Adds the responses an operation can give whatever its handler does, where its annotation
/// did not describe them more precisely.
fn add_common_responses(path: &str, operation: &mut Map<String, Value>) {
    let api = path.starts_with(paths::API_V1) && !is_protocol(path)
        || path.starts_with("/health")
        || path == paths::METRICS;
    let rate_limited = path.starts_with("/api/v1/");
    let bearer = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    let has_body = operation.contains_key("requestBody");
    let has_query = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
    let json_body = operation
        .get("requestBody")
        .and_then(|b| b["content"].as_object())
        .is_some_and(|c| c.contains_key("application/json"));
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    let mut add = |status: &str, value: Value| {
        responses.entry(status).or_insert(value);
    };
    if api {
        if bearer {
            add(
                "401",
                error_response(
                    "No access token, or one that is invalid, expired or revoked \
(with a `WWW-Authenticate: Bearer` challenge)",
                    "ApiError",
                ),
            );
            add(
                "403",
                error_response(
                    "The token lacks a permission this operation needs, or is not a user's",
                    "ApiError",
                ),
            );
        }
        if has_query || has_body {
            add(
                "400",
                error_response(
                    "A malformed query string or body (`invalid_request`, `invalid_json`)",
                    "ApiError",
                ),
            );
        }
        if json_body {
            add(
                "413",
                error_response("The body is larger than the limit", "ApiError"),
            );
            add(
                "415",
                error_response("The body is not `application/json`", "ApiError"),
            );
        }
        if has_body || has_query {
            add(
                "422",
                error_response(
                    "A member is missing, unknown or invalid (`details` names each field)",
                    "ApiError",
                ),
            );
        }
        add(
            "500",
            error_response("An internal error (quote the request id)", "ApiError"),
        );
        add(
            "503",
            error_response(
                "The database is unreachable; retry after `Retry-After`",
                "ApiError",
            ),
        );
    } else if is_protocol(path) && operation_is_json_protocol(path) {
        add("500", error_response("`server_error`", "OAuthError"));
        add(
            "503",
            error_response("`temporarily_unavailable`", "OAuthError"),
        );
    }
    if rate_limited {
        add(
            "429",
            error_response(
                "A rate limit was reached (`retry_after` in the body and `Retry-After`)",
                "ApiError",
            ),
        );
    }
}

/// The protocol endpoints (also under their `/api/v1/oauth` aliases).
fn is_protocol(path: &str) -> bool {
    path.starts_with("/oauth")
        || path.starts_with("/api/v1/oauth")
        || path.starts_with("/.well-known")
}

/// The protocol endpoints that answer errors in the OAuth JSON form (the authorization and
/// logout endpoints answer with pages and redirects; discovery and the JWK Set cannot fail).
fn operation_is_json_protocol(path: &str) -> bool {
    [
        paths::TOKEN,
        paths::API_TOKEN,
        paths::REVOKE,
        paths::API_REVOKE,
        paths::INTROSPECT,
        paths::USERINFO,
    ]
    .contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_path_slugs() {
        assert_eq!(
            operation_id("get", "/api/v1/users/{id}/lock"),
            "get_api_v1_users_id_lock"
        );
        assert_eq!(
            operation_id("get", "/.well-known/openid-configuration"),
            "get_well_known_openid_configuration"
        );
    }
}
