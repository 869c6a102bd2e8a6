//! Integration tests: each starts a real Latchkey over a fresh database and talks HTTP to it.

mod accounts;
mod browser;
mod browser_support;
mod cli;
mod discovery;
mod errors;
mod flows;
mod health;
mod helpers;
mod keys;
mod logout;
mod mail;
mod oauth_errors;
mod oauth_flows;
mod oidc_rp;
mod smtp_sink;
mod tokens;
