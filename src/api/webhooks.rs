//! `/admin/webhooks` and `/webhooks`.

use actix_web::web;

/// The routes of the webhook API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let _ = cfg;
}
