//! Sessions: the browser's single sign-on session (a server-side row behind an HttpOnly
//! cookie) and, later, session listing and revocation.

pub mod browser;
pub mod revoke;
