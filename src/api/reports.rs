//! The audit log, statistics and exports.

use actix_web::web;

/// The routes of the reporting API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let _ = cfg;
}
