//! `/docs`: Swagger UI over `/openapi.json`, served entirely from the binary (the assets are
//! vendored through crates.io by `utoipa-swagger-ui`), so no request leaves for a CDN. The page
//! has no inline script or style: it runs under the default Content-Security-Policy of
//! [`crate::http::headers`] (`script-src 'self'`, `style-src 'self'`), its initializer being a
//! separate same-origin file, and the validator badge (which would call swagger.io) is off.

use std::sync::Arc;

use actix_web::{HttpResponse, ResponseError, web};
use utoipa_swagger_ui::Config;

use crate::api::error::ApiError;

/// The OpenAPI document.
pub const OPENAPI_JSON: &str = "/openapi.json";
/// The documentation page.
pub const DOCS: &str = "/docs";
/// The page's scripts, styles and icons.
pub const DOCS_ASSET: &str = "/docs/{file}";

/// The page: Swagger UI's own `index.html`, with absolute asset paths so that `/docs` works
/// without a trailing slash.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Latchkey API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"#;

/// The files the page loads; nothing else of the distribution is served.
const ASSETS: &[&str] = &[
    "swagger-ui.css",
    "index.css",
    "favicon-32x32.png",
    "favicon-16x16.png",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
];

fn config() -> Arc<Config<'static>> {
    Arc::new(
        Config::new([OPENAPI_JSON])
            .use_base_layout()
            // The default validator is swagger.io's: the page must call nothing but this server.
            .validator_url("none")
            .deep_linking(true)
            .persist_authorization(true)
            .filter(true)
            .doc_expansion("none"),
    )
}

/// `GET /docs`.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(PAGE)
}

/// `GET /docs/{file}`.
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    let file = file.into_inner();
    if !ASSETS.contains(&file.as_str()) {
        return ApiError::not_found("No such file").error_response();
    }
    match utoipa_swagger_ui::serve(&file, config()) {
        Ok(Some(found)) => HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header(("Cache-Control", "public, max-age=3600"))
            .body(found.bytes.into_owned()),
        Ok(None) => ApiError::not_found("No such file").error_response(),
        Err(error) => {
            tracing::error!(%error, file, "Swagger UI asset");
            ApiError::internal().error_response()
        }
    }
}
