//! Every endpoint path, in one place.
//!
//! The router and the discovery document both read these constants, so a path is never
//! spelled twice and discovery can never advertise a path the router does not serve.

/// OpenID Connect Discovery 1.0 document.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 authorization server metadata.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// The authorization endpoint (GET and POST).
pub const AUTHORIZE: &str = "/oauth/authorize";
/// Where the authorization flow resumes after a login, an account choice or a consent.
pub const AUTHORIZE_RESUME: &str = "/oauth/authorize/resume";
/// The token endpoint.
pub const TOKEN: &str = "/oauth/token";
/// RFC 7009 token revocation.
pub const REVOKE: &str = "/oauth/revoke";
/// RFC 7662 token introspection.
pub const INTROSPECT: &str = "/oauth/introspect";
/// The UserInfo endpoint (GET and POST).
pub const USERINFO: &str = "/oauth/userinfo";
/// Where seed 000's aliases of the protocol endpoints live: they answer in the protocol's
/// forms (HTML error pages, OAuth errors), not the JSON API's.
pub const API_OAUTH: &str = "/api/v1/oauth/";
/// Seed 000's alias of the authorization endpoint.
pub const API_AUTHORIZE: &str = "/api/v1/oauth/authorize";
/// Seed 000's alias of the token endpoint.
pub const API_TOKEN: &str = "/api/v1/oauth/token";
/// Seed 000's alias of the revocation endpoint.
pub const API_REVOKE: &str = "/api/v1/oauth/revoke";
/// The login page of an authorization request.
pub const LOGIN: &str = "/login";
/// The consent page of an authorization request.
pub const CONSENT: &str = "/consent";
/// The "signed in as …" page for `prompt=select_account`.
pub const SELECT_ACCOUNT: &str = "/select-account";
/// Static assets compiled into the binary.
pub const STATIC: &str = "/static/{path:.*}";
/// The JWK Set with the public halves of the signing keys.
pub const JWKS: &str = "/oauth/jwks";

/// Prometheus metrics (on the main listener with `metrics_token`, or on `metrics_bind`).
pub const METRICS: &str = "/metrics";
/// Liveness probe for load balancers (seed 001).
pub const HEALTH: &str = "/health";
/// Health with the database check, its response time and the pool state (seed 001).
pub const HEALTH_DETAILED: &str = "/health/detailed";
/// Base of the JSON API.
pub const API_V1: &str = "/api/v1";
/// Seed 000's health endpoint, under the API base.
pub const SYSTEM_HEALTH: &str = "/api/v1/system/health";
/// Seed 000's public system information.
pub const SYSTEM_INFO: &str = "/api/v1/system/info";

/// The signed-in person's account page (two-step verification, recovery codes).
pub const ACCOUNT: &str = "/account";
/// The page an email verification link opens.
pub const ACCOUNT_VERIFY_EMAIL: &str = "/account/verify-email";
/// The page a password reset link opens.
pub const ACCOUNT_RESET_PASSWORD: &str = "/account/reset-password";
/// The second-factor step of a browser login.
pub const LOGIN_MFA: &str = "/login/mfa";

/// `POST` registration.
pub const AUTH_REGISTER: &str = "/api/v1/auth/register";
/// `POST` login (username or email).
pub const AUTH_LOGIN: &str = "/api/v1/auth/login";
/// `POST` refresh.
pub const AUTH_REFRESH: &str = "/api/v1/auth/refresh";
/// `POST` logout.
pub const AUTH_LOGOUT: &str = "/api/v1/auth/logout";
/// `POST` token check.
pub const AUTH_VERIFY: &str = "/api/v1/auth/verify";
/// `GET` the caller (seed 001).
pub const AUTH_ME: &str = "/api/v1/auth/me";
/// `POST` password change (seed 001).
pub const AUTH_CHANGE_PASSWORD: &str = "/api/v1/auth/change-password";
/// `POST` start a password reset.
pub const AUTH_FORGOT_PASSWORD: &str = "/api/v1/auth/forgot-password";
/// `POST` check a reset token.
pub const AUTH_VERIFY_RESET_TOKEN: &str = "/api/v1/auth/verify-reset-token";
/// `POST` set a password with a reset token.
pub const AUTH_RESET_PASSWORD: &str = "/api/v1/auth/reset-password";
/// `POST` confirm an address.
pub const AUTH_VERIFY_EMAIL: &str = "/api/v1/auth/verify-email";
/// `POST` send the verification mail again.
pub const AUTH_RESEND_VERIFICATION: &str = "/api/v1/auth/resend-verification";
/// `POST` start a TOTP setup.
pub const MFA_SETUP: &str = "/api/v1/auth/mfa/setup";
/// `POST` confirm a TOTP setup.
pub const MFA_VERIFY_SETUP: &str = "/api/v1/auth/mfa/verify-setup";
/// `POST` the second factor of a login.
pub const MFA_VERIFY: &str = "/api/v1/auth/mfa/verify";
/// `POST` turn MFA off.
pub const MFA_DISABLE: &str = "/api/v1/auth/mfa/disable";
/// `POST` new recovery codes.
pub const MFA_RECOVERY_CODES: &str = "/api/v1/auth/mfa/recovery-codes";
/// `GET`/`PATCH` seed 002's profile.
pub const ME: &str = "/api/v1/me";
/// `GET`/`PUT` seed 000's profile.
pub const USERS_PROFILE: &str = "/api/v1/users/profile";
/// `POST` password change (seed 000).
pub const USERS_CHANGE_PASSWORD: &str = "/api/v1/users/change-password";
/// `POST` email change.
pub const USERS_CHANGE_EMAIL: &str = "/api/v1/users/change-email";
/// `GET` the caller's sessions; `DELETE` all but the current one.
pub const SESSIONS: &str = "/api/v1/sessions";
/// `DELETE` one of the caller's sessions.
pub const SESSION: &str = "/api/v1/sessions/{id}";
/// RP-initiated logout (`end_session_endpoint`), GET and POST.
pub const LOGOUT: &str = "/oauth/logout";
/// The answer of the logout confirmation page.
pub const LOGOUT_CONFIRM: &str = "/oauth/logout/confirm";

/// The users resource (seeds 001 and 003), gated by `users:*` permissions. Its sub-paths
/// (`/{id}`, `/{id}/lock`, …) are served under both this base and [`ADMIN_USERS`].
pub const USERS: &str = "/api/v1/users";
/// Seed 000's users resource for administrators: the same handlers as [`USERS`].
pub const ADMIN_USERS: &str = "/api/v1/admin/users";
/// `GET` seed 003's JSON-filtered user search.
pub const USERS_SEARCH: &str = "/api/v1/users/search";
/// `POST` bulk create (seed 003), `DELETE` bulk delete (seed 004).
pub const USERS_BULK: &str = "/api/v1/users/bulk";
/// `POST` bulk actions (seed 001).
pub const USERS_BULK_ACTIONS: &str = "/api/v1/users/bulk-actions";
/// `GET` users as CSV or XLSX (seed 004).
pub const USERS_EXPORT: &str = "/api/v1/users/export";
/// `GET` the caller's rate-limit standing (seed 000).
pub const USERS_QUOTA: &str = "/api/v1/users/quota";
/// `PUT` the direct permissions of a user (seed 001).
pub const ADMIN_USER_PERMISSIONS: &str = "/api/v1/admin/users/{id}/permissions";
/// Roles: list and create.
pub const ADMIN_ROLES: &str = "/api/v1/admin/roles";
/// One role: get, update, delete.
pub const ADMIN_ROLE: &str = "/api/v1/admin/roles/{id}";
/// The permission catalogue with its categories.
pub const ADMIN_PERMISSIONS: &str = "/api/v1/admin/permissions";
/// OAuth clients: list and create.
pub const ADMIN_CLIENTS: &str = "/api/v1/admin/clients";
/// One OAuth client: get, update, delete.
pub const ADMIN_CLIENT: &str = "/api/v1/admin/clients/{id}";
/// `POST` a new secret for a confidential client (the old one stops working).
pub const ADMIN_CLIENT_ROTATE_SECRET: &str = "/api/v1/admin/clients/{id}/rotate-secret";
/// API keys of service accounts: list and create.
pub const ADMIN_API_KEYS: &str = "/api/v1/admin/api-keys";
/// One API key: get, revoke (`DELETE`).
pub const ADMIN_API_KEY: &str = "/api/v1/admin/api-keys/{id}";
/// `POST` seed 003's exchange of an API key for an access token.
pub const AUTH_TOKEN: &str = "/api/v1/auth/token";
/// Webhooks (seed 003); sub-paths `/{id}`, `/{id}/test`, `/{id}/deliveries`.
pub const WEBHOOKS: &str = "/api/v1/webhooks";
/// Webhooks (seed 000): the same handlers as [`WEBHOOKS`].
pub const ADMIN_WEBHOOKS: &str = "/api/v1/admin/webhooks";
/// `GET` the audit log (seed 001).
pub const AUDIT_LOGS: &str = "/api/v1/audit/logs";
/// `GET` the audit log as CSV, JSON or XLSX.
pub const AUDIT_LOGS_EXPORT: &str = "/api/v1/audit/logs/export";
/// `GET` overview statistics (seed 001).
pub const STATS_OVERVIEW: &str = "/api/v1/stats/overview";
/// `GET` user statistics per day (seed 001).
pub const STATS_USERS: &str = "/api/v1/stats/users";
/// `GET` user analytics (seed 003).
pub const ANALYTICS_USERS: &str = "/api/v1/analytics/users";
