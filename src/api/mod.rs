//! The JSON API of the contract (`/api/v1`) and the health endpoints: thin handlers over the
//! capability modules.

pub mod api_keys;
pub mod auth;
pub mod clients;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod mfa;
pub mod openapi;
pub mod pagination;
pub mod profile;
pub mod quota;
pub mod recovery;
pub mod reports;
pub mod roles;
pub mod sessions;
pub mod system;
pub mod users;
pub mod webhooks;

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpResponse, web};

use crate::http::endpoint;
use crate::paths;

/// Whether a created resource's answer carries a secret shown only this once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Nothing secret: the answer may be cached like any other.
    Plain,
    /// A secret (client secret, API key, webhook secret): `Cache-Control: no-store`.
    SecretOnce,
}

/// The 201 of a create: `Location` is `collection/id`, the body the new resource.
pub fn created(
    collection: &str,
    id: &str,
    body: &impl serde::Serialize,
    shown: Shown,
) -> HttpResponse {
    let mut response = HttpResponse::Created();
    response.insert_header((LOCATION, format!("{collection}/{id}")));
    if shown == Shown::SecretOnce {
        response.insert_header((CACHE_CONTROL, "no-store"));
    }
    response.json(body)
}

/// The routes of the JSON API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    webhooks::configure(cfg);
    reports::configure(cfg);
    users::configure(cfg);
    roles::configure(cfg);
    clients::configure(cfg);
    api_keys::configure(cfg);
    cfg.service(endpoint(paths::USERS_QUOTA).get(quota::quota).finish());
    cfg.service(endpoint(paths::AUTH_REGISTER).post(auth::register).finish())
        .service(endpoint(paths::AUTH_LOGIN).post(auth::login).finish())
        .service(endpoint(paths::AUTH_REFRESH).post(auth::refresh).finish())
        .service(endpoint(paths::AUTH_LOGOUT).post(auth::logout).finish())
        .service(endpoint(paths::AUTH_VERIFY).post(auth::verify).finish())
        .service(endpoint(paths::AUTH_ME).get(auth::me).finish())
        .service(
            endpoint(paths::AUTH_FORGOT_PASSWORD)
                .post(recovery::forgot_password)
                .finish(),
        )
        .service(
            endpoint(paths::AUTH_VERIFY_RESET_TOKEN)
                .post(recovery::verify_reset_token)
                .finish(),
        )
        .service(
            endpoint(paths::AUTH_RESET_PASSWORD)
                .post(recovery::reset_password)
                .finish(),
        )
        .service(
            endpoint(paths::AUTH_VERIFY_EMAIL)
                .post(recovery::verify_email)
                .finish(),
        )
        .service(
            endpoint(paths::AUTH_RESEND_VERIFICATION)
                .post(recovery::resend_verification)
                .finish(),
        )
        .service(endpoint(paths::MFA_SETUP).post(mfa::setup).finish())
        .service(
            endpoint(paths::MFA_VERIFY_SETUP)
                .post(mfa::verify_setup)
                .finish(),
        )
        .service(endpoint(paths::MFA_VERIFY).post(mfa::verify).finish())
        .service(endpoint(paths::MFA_DISABLE).post(mfa::disable).finish())
        .service(
            endpoint(paths::MFA_RECOVERY_CODES)
                .post(mfa::regenerate_recovery_codes)
                .finish(),
        )
        .service(
            endpoint(paths::ME)
                .get(profile::get_me)
                .patch(profile::patch_me)
                .finish(),
        )
        .service(
            endpoint(paths::USERS_PROFILE)
                .get(profile::get_profile)
                .put(profile::put_profile)
                .finish(),
        )
        .service(
            endpoint(paths::AUTH_CHANGE_PASSWORD)
                .post(profile::change_password)
                .finish(),
        )
        .service(
            endpoint(paths::USERS_CHANGE_PASSWORD)
                .post(profile::change_password)
                .finish(),
        )
        .service(
            endpoint(paths::USERS_CHANGE_EMAIL)
                .post(recovery::change_email)
                .finish(),
        )
        .service(
            endpoint(paths::SESSIONS)
                .get(sessions::list)
                .delete(sessions::revoke_others)
                .finish(),
        )
        .service(endpoint(paths::SESSION).delete(sessions::revoke).finish());
}
