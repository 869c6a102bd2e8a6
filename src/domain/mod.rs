//! Pure values that parse their input at the door: no I/O, no actix, no diesel.
//!
//! Anything that reaches a capability function has been through one of these parsers, so the
//! functions below the handlers never re-check a format.

mod client;
mod email;
mod oauth;
mod permission;
mod scope;
pub mod text;
mod time;
mod token;
mod user_query;
mod username;

pub use client::{
    ApplicationType, AuthMethod, ClientId, GrantType, RedirectUri, ResponseType, SigningAlg,
};
pub use email::Email;
pub use oauth::{ACR_MFA, ACR_PASSWORD, ClaimsRequest, CodeChallenge, Prompt, ResponseMode};
pub use permission::{Permission, PermissionSet, effective_permissions, still_held};
pub use scope::Scope;
pub use time::{Timestamp, now};
pub use token::{PlainToken, TokenHash};
pub use user_query::{
    Condition, FieldType, FilterOp, Operand, QueryError, SortField, SortKey, UserField, equals,
    parse_fields, parse_filters, parse_sort,
};
pub use username::Username;

/// Why a value was refused, in words fit for a `details` entry of a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Reads a member that may be absent (`None`), `null` (`Some(None)`: clear it) or set
/// (`Some(Some(value))`), as PATCH bodies need; serde alone reads `null` as absent. Use with
/// `#[serde(default, deserialize_with = "crate::domain::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
