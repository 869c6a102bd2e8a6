//! `/admin/webhooks` (seed 000) and `/webhooks` (seed 003): the same handlers under both
//! bases. Reading needs `webhooks:read`, everything else `webhooks:write`. The secret is shown
//! in the response that creates or changes it, and never again.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{Cursor, PageQuery, Paging, cursor_json, offset_json};
use crate::api::{Shown, created};
use crate::domain::PlainToken;
use crate::events::webhooks::{
    self, EventList, NewWebhook, SecretChange, Webhook, WebhookUpdate, WebhookUrl,
};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;

const READ: &[&str] = &["webhooks:read"];
const WRITE: &[&str] = &["webhooks:write"];
/// Page size when the query names none.
const DEFAULT_LIMIT: i64 = 20;

/// The routes of the webhook API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for base in [paths::WEBHOOKS, paths::ADMIN_WEBHOOKS] {
        cfg.service(
            endpoint(base)
                .get_as(READ, list)
                .post_as(WRITE, create)
                .finish(),
        )
        .service(
            endpoint(&format!("{base}/{{id}}"))
                .get_as(READ, get)
                .put_as(WRITE, update)
                .patch_as(WRITE, update)
                .delete_as(WRITE, delete)
                .finish(),
        )
        .service(
            endpoint(&format!("{base}/{{id}}/test"))
                .post_as(WRITE, test)
                .finish(),
        )
        .service(
            endpoint(&format!("{base}/{{id}}/deliveries"))
                .get_as(READ, deliveries)
                .finish(),
        );
    }
}

/// `POST` body: seed 000's and seed 003's members, plus a description.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// Where deliveries are posted (http or https).
    url: String,
    /// The events to deliver (`user.created`, ..., or `*`).
    events: Vec<String>,
    /// A signing secret to use instead of a generated one.
    #[schema(value_type = Option<String>)]
    secret: Option<SecretString>,
    /// Deliver (the default) or not.
    active: Option<bool>,
    description: Option<String>,
}

/// `PATCH`/`PUT` body: every member optional; an empty `description` clears it; a new secret
/// is either chosen (`secret`) or generated (`rotate_secret: true`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    url: Option<String>,
    events: Option<Vec<String>>,
    active: Option<bool>,
    /// An empty one clears it.
    description: Option<String>,
    /// A new signing secret (not with `rotate_secret`).
    #[schema(value_type = Option<String>)]
    secret: Option<SecretString>,
    /// Generate a new signing secret.
    rotate_secret: Option<bool>,
}

/// A webhook URL as registered: well-formed, and a target outbound requests may reach.
fn webhook_url(raw: &str, allow_private: bool) -> Result<WebhookUrl, String> {
    let url = WebhookUrl::parse(raw)?;
    crate::http::outbound::check_target(raw, allow_private).map_err(|e| e.to_string())?;
    Ok(url)
}

/// Collects the field errors of one body, so a 422 names every field at fault at once.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.0.push(FieldError::new(field, message)))
            .ok()
    }

    fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

impl CreateRequest {
    fn parse(self, allow_private: bool) -> Result<NewWebhook, Vec<FieldError>> {
        let mut checks = Checks::default();
        let url = checks.check("url", webhook_url(&self.url, allow_private));
        let events = checks.check("events", EventList::parse(self.events));
        let secret = match &self.secret {
            Some(secret) => checks
                .check("secret", webhooks::parse_secret(secret.expose_secret()))
                .map(Some),
            None => Some(None),
        };
        let description = match &self.description {
            Some(text) => checks.check("description", webhooks::parse_description(text)),
            None => Some(None),
        };
        // Each `None` is a failed check, reported in `checks`.
        let (Some(url), Some(events), Some(secret), Some(description)) =
            (url, events, secret, description)
        else {
            return Err(checks.0);
        };
        Ok(NewWebhook {
            url,
            events,
            secret,
            active: self.active.unwrap_or(true),
            description,
        })
    }
}

impl UpdateRequest {
    fn parse(self, allow_private: bool) -> Result<WebhookUpdate, Vec<FieldError>> {
        let mut checks = Checks::default();
        let mut update = WebhookUpdate {
            active: self.active,
            ..WebhookUpdate::default()
        };
        if let Some(url) = &self.url {
            update.url = checks.check("url", webhook_url(url, allow_private));
        }
        if let Some(events) = self.events {
            update.events = checks.check("events", EventList::parse(events));
        }
        if let Some(text) = &self.description {
            update.description = checks.check("description", webhooks::parse_description(text));
        }
        update.secret = match (&self.secret, self.rotate_secret) {
            (Some(_), Some(true)) => {
                checks.0.push(FieldError::new(
                    "rotate_secret",
                    "cannot be combined with secret",
                ));
                None
            }
            (Some(secret), _) => checks
                .check("secret", webhooks::parse_secret(secret.expose_secret()))
                .map(SecretChange::Set),
            (None, Some(true)) => Some(SecretChange::Rotate),
            (None, _) => None,
        };
        checks.finish()?;
        Ok(update)
    }
}

/// A webhook with its secret: only in the response that creates or changes the secret.
fn with_secret(webhook: &Webhook, secret: Option<&PlainToken>) -> Value {
    let mut body = serde_json::to_value(webhook).expect("plain data");
    if let Some(secret) = secret {
        body["secret"] = Value::String(secret.expose().to_owned());
    }
    body
}

/// A page request in the store's terms.
struct Window {
    /// The `(created_at, id)` of the last row already seen (cursor paging).
    position: Option<(i64, String)>,
    offset: i64,
    /// Rows to read: one more than the page in cursor paging, to know whether more follow.
    fetch: i64,
}

/// The store's terms of a page; `None` when a cursor's key is not one of these lists'.
fn window(paging: &Paging) -> Option<Window> {
    Some(match paging {
        Paging::Offset { offset, limit, .. } => Window {
            position: None,
            offset: *offset,
            fetch: *limit,
        },
        Paging::Cursor { after, limit } => Window {
            position: match after {
                None => None,
                Some(cursor) => Some((cursor.key.as_i64()?, cursor.id.clone())),
            },
            offset: 0,
            fetch: limit + 1,
        },
    })
}

fn bad_cursor() -> ApiError {
    ApiError::bad_request("cursor is not a cursor of this list").with_details(json!([
        FieldError::new("cursor", "is not a cursor of this list")
    ]))
}

/// Cuts a page read through [`window`] to size and renders its `pagination` member; `key`
/// gives the `(created_at, id)` of a row.
fn paginate<T>(
    paging: &Paging,
    rows: &mut Vec<T>,
    total: i64,
    key: impl Fn(&T) -> (i64, String),
) -> Value {
    match paging {
        Paging::Offset {
            offset,
            limit,
            page,
        } => offset_json(*offset, *limit, *page, total),
        Paging::Cursor { limit, .. } => {
            let more = rows.len() as i64 > *limit;
            rows.truncate(*limit as usize);
            let next = more
                .then(|| rows.last().map(&key))
                .flatten()
                .map(|(k, id)| Cursor { key: json!(k), id });
            cursor_json(*limit, next.as_ref(), total)
        }
    }
}

/// `GET`: the webhooks, oldest first, paged.
#[utoipa::path(
    get,
    path = crate::paths::WEBHOOKS,
    tag = "webhooks",
    description = "Also at `/api/v1/admin/webhooks` (seed 000).",
    params(crate::api::openapi::PagingParams),
    responses(
        (status = 200, description = "A page of webhooks, oldest first (never their secrets)", body = schema::WebhookList),
    ),
    security(("bearer" = ["webhooks:read"])),
)]
async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = query.paging(DEFAULT_LIMIT)?;
    let Window {
        position,
        offset,
        fetch,
    } = window(&paging).ok_or_else(bad_cursor)?;
    let (mut page, total) = state
        .store
        .run(move |conn| webhooks::list(conn, position, offset, fetch))
        .await?;
    let pagination = paginate(&paging, &mut page, total, |w: &Webhook| {
        (w.created_at.0, w.id.clone())
    });
    Ok(HttpResponse::Ok().json(json!({"webhooks": page, "pagination": pagination})))
}

/// `POST`: creates a webhook; 201 with the secret, shown this once.
#[utoipa::path(
    post,
    path = crate::paths::WEBHOOKS,
    tag = "webhooks",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The webhook with its signing secret, shown only now (its URL in `Location`)", body = schema::WebhookWithSecret),
        (status = 422, description = "A bad URL, event, secret or description", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["webhooks:write"])),
)]
async fn create(
    auth: Authenticated,
    http: HttpRequest,
    state: web::Data<AppState>,
    body: Result<ApiJson<CreateRequest>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let allow_private = state.settings.outbound.allow_private_networks;
    let new = body?.0.parse(allow_private).map_err(ApiError::validation)?;
    let actor = auth.actor(&http);
    let crypto = state.crypto.clone();
    let (webhook, secret) = state
        .store
        .run(move |conn| webhooks::create(conn, &crypto, &actor, new))
        .await?;
    let collection = http.path().trim_end_matches('/');
    let body = with_secret(&webhook, Some(&secret));
    Ok(created(collection, &webhook.id, &body, Shown::SecretOnce))
}

/// `GET /{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook id")),
    responses(
        (status = 200, description = "The webhook", body = schema::WebhookView),
        (status = 404, description = "No webhook has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["webhooks:read"])),
)]
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let webhook = state
        .store
        .run(move |conn| webhooks::get(conn, &id))
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Ok().json(webhook))
}

/// `PATCH /{id}` and `PUT /{id}`: changes the members given; a changed secret is shown once.
#[utoipa::path(
    method(put, patch),
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook id")),
    request_body = UpdateRequest,
    responses(
        (status = 200, description = "The changed webhook; `secret` only when it changed", body = schema::WebhookWithSecret),
        (status = 404, description = "No webhook has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A bad member, or `secret` with `rotate_secret`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["webhooks:write"])),
)]
async fn update(
    auth: Authenticated,
    http: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Result<ApiJson<UpdateRequest>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let allow_private = state.settings.outbound.allow_private_networks;
    let changes = body?.0.parse(allow_private).map_err(ApiError::validation)?;
    let (id, actor, crypto) = (id.into_inner(), auth.actor(&http), state.crypto.clone());
    let (webhook, secret) = state
        .store
        .run(move |conn| webhooks::update(conn, &crypto, &actor, &id, changes))
        .await
        .map_err(not_found)?;
    let mut response = HttpResponse::Ok();
    if secret.is_some() {
        response.insert_header((CACHE_CONTROL, "no-store"));
    }
    Ok(response.json(with_secret(&webhook, secret.as_ref())))
}

/// `DELETE /{id}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No webhook has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["webhooks:write"])),
)]
async fn delete(
    auth: Authenticated,
    http: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, actor) = (id.into_inner(), auth.actor(&http));
    state
        .store
        .run(move |conn| webhooks::delete(conn, &actor, &id))
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /{id}/test`: queues a `webhook.test` delivery; 202 with its id.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook id")),
    responses(
        (status = 202, description = "A `webhook.test` delivery is queued", body = schema::TestQueued),
        (status = 404, description = "No webhook has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["webhooks:write"])),
)]
async fn test(
    auth: Authenticated,
    http: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, actor, crypto) = (id.into_inner(), auth.actor(&http), state.crypto.clone());
    let delivery = state
        .store
        .run(move |conn| webhooks::queue_test(conn, &crypto, &actor, &id))
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Accepted().json(json!({
        "delivery_id": delivery,
        "event": webhooks::TEST_EVENT,
        "status": "pending",
    })))
}

/// `GET /{id}/deliveries`: the webhook's deliveries, newest first, paged.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook id"), crate::api::openapi::PagingParams),
    responses(
        (status = 200, description = "A page of the webhook's deliveries, newest first", body = schema::DeliveryList),
        (status = 404, description = "No webhook has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["webhooks:read"])),
)]
async fn deliveries(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = query.paging(DEFAULT_LIMIT)?;
    let Window {
        position,
        offset,
        fetch,
    } = window(&paging).ok_or_else(bad_cursor)?;
    let (id, crypto) = (id.into_inner(), state.crypto.clone());
    let (mut page, total) = state
        .store
        .run(move |conn| webhooks::deliveries(conn, &crypto, &id, position, offset, fetch))
        .await
        .map_err(not_found)?;
    let pagination = paginate(&paging, &mut page, total, |d: &webhooks::Delivery| {
        (d.created_at.0, d.id.clone())
    });
    Ok(HttpResponse::Ok().json(json!({"deliveries": page, "pagination": pagination})))
}

/// The 404 of an unknown webhook id.
fn not_found(error: crate::store::StoreError) -> ApiError {
    match error {
        crate::store::StoreError::NotFound => ApiError::not_found("No webhook has this id"),
        other => other.into(),
    }
}

/// This module's operations, for the OpenAPI document (also served under
/// `/api/v1/admin/webhooks`, which the document adds).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, update, delete, test, deliveries))]
pub struct Doc;

/// The shapes of this module's bodies for the OpenAPI document (mirroring
/// `events::webhooks::{Webhook, Delivery}`).
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// A webhook (never its secret).
    #[derive(ToSchema)]
    pub struct WebhookView {
        pub id: String,
        pub url: String,
        pub events: Vec<String>,
        pub active: bool,
        pub description: Option<String>,
        /// Failed attempts since the last success.
        pub consecutive_failures: i32,
        /// Why it was disabled automatically.
        pub disabled_reason: Option<String>,
        /// The latest attempt.
        pub last_delivery: Option<Timestamp>,
        /// The latest successful attempt.
        pub last_success: Option<Timestamp>,
        pub created_by: Option<String>,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
    }

    /// A webhook with its secret, in the response that creates or changes the secret.
    #[derive(ToSchema)]
    pub struct WebhookWithSecret {
        #[serde(flatten)]
        pub webhook: WebhookView,
        /// The signing secret (`X-Latchkey-Signature: t=..., v1=HMAC-SHA256`).
        pub secret: Option<String>,
    }

    /// A page of webhooks.
    #[derive(ToSchema)]
    pub struct WebhookList {
        pub webhooks: Vec<WebhookView>,
        pub pagination: crate::api::openapi::Pagination,
    }

    /// A queued test delivery.
    #[derive(ToSchema)]
    pub struct TestQueued {
        pub delivery_id: String,
        /// `webhook.test`.
        pub event: String,
        /// `pending`.
        pub status: String,
    }

    /// Where a delivery stands.
    #[derive(ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum DeliveryStatus {
        Pending,
        Delivered,
        Failed,
    }

    /// One delivery of a webhook.
    #[derive(ToSchema)]
    pub struct DeliveryView {
        /// Also sent as the delivery's id header.
        pub id: String,
        /// The event (null when the payload cannot be read with this key).
        pub event: Option<String>,
        pub status: DeliveryStatus,
        pub attempts: i32,
        pub last_error: Option<String>,
        pub created_at: Timestamp,
        pub delivered_at: Option<Timestamp>,
        /// When it is tried next (only while pending).
        pub next_attempt_at: Option<Timestamp>,
    }

    /// A page of deliveries.
    #[derive(ToSchema)]
    pub struct DeliveryList {
        pub deliveries: Vec<DeliveryView>,
        pub pagination: crate::api::openapi::Pagination,
    }
}
