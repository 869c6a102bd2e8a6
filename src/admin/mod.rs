//! Administration: users, roles and permissions, OAuth clients, API keys — an API protected by
//! Latchkey's own access tokens, with the permission catalogue it checks against.

pub mod permissions;
