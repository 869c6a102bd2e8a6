//! Latchkey: an OAuth 2.0 authorization server and OpenID Connect provider.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod events;
pub mod http;
pub mod limits;
pub mod maintenance;
#[cfg(target_os = "linux")]
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod paths;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod workers;
