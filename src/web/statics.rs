//! Static assets compiled into the binary: no CDN, no files to deploy beside it.

use actix_web::{HttpResponse, web};

/// Every asset: path under `/static/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "css/latchkey.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/css/latchkey.css"),
    ),
    (
        "js/form-post.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/js/form-post.js"),
    ),
];

/// `GET /static/{path}`.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(name, _, _)| *name == path.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Cache-Control", "public, max-age=3600"))
            .body(*bytes),
        None => {
            use actix_web::ResponseError;
            crate::api::error::ApiError::not_found("No such asset").error_response()
        }
    }
}
