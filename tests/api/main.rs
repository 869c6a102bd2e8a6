//! Integration tests: each starts a real Latchkey over a fresh database and talks HTTP to it.

mod accounts;
mod admin_clients;
mod admin_roles;
mod admin_support;
mod admin_users;
mod audit_events;
mod browser;
mod browser_support;
mod cli;
mod discovery;
mod errors;
mod flows;
mod hardening;
mod health;
mod helpers;
mod keys;
mod limits;
mod logout;
mod mail;
mod oauth_errors;
mod oauth_flows;
mod oidc_rp;
mod reports;
mod smtp_sink;
mod tokens;
mod webhooks;
