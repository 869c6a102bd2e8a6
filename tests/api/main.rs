//! Integration tests: each starts a real Latchkey over a fresh database and talks HTTP to it.

mod cli;
mod discovery;
mod errors;
mod flows;
mod health;
mod helpers;
mod keys;
mod oidc_rp;
