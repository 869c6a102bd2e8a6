//! Permissions: `resource:action` strings, and `*` for all.

use std::collections::BTreeSet;
use std::fmt;

use super::Invalid;

/// One permission: `*`, or `resource:action` with lower-case letters, digits, `_` and `-` on
/// each side (`users:read`, `profile:write`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Permission(String);

/// The permission that grants every other.
pub const ALL: &str = "*";

impl Permission {
    /// Parses a permission name.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw == ALL {
            return Ok(Self(ALL.to_owned()));
        }
        let valid_part = |part: &str| {
            !part.is_empty()
                && part.len() <= 64
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        match raw.split_once(':') {
            Some((resource, action)) if valid_part(resource) && valid_part(action) => {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(Invalid::new(format!(
                "`{raw}` is not a permission of the form resource:action (or *)"
            ))),
        }
    }

    /// The permission's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `*`.
    pub fn is_all(&self) -> bool {
        self.0 == ALL
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of permissions, answering whether one is granted (`*` grants all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<String>);

impl PermissionSet {
    /// Builds a set from permission names.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// Whether `permission` is granted.
    pub fn grants(&self, permission: &str) -> bool {
        self.0.contains(ALL) || self.0.contains(permission)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// A token's permissions: those the user holds (through roles or directly), cut down to the
/// scope granted to the client. The scope token `*` (only first-party clients may be granted
/// it) keeps everything the user holds; otherwise each `resource:action` scope the user holds
/// is kept, and nothing else.
pub fn effective_permissions(held: &[String], scope: &super::Scope) -> Vec<String> {
    if scope.contains(ALL) {
        return held.to_vec();
    }
    let set = PermissionSet::new(held.iter().cloned());
    let mut granted: Vec<String> = scope
        .iter()
        .filter(|token| *token != ALL && Permission::parse(token).is_ok() && set.grants(token))
        .map(str::to_owned)
        .collect();
    granted.sort();
    granted
}

/// What a token may still do: its permissions, narrowed to those its user holds now. A token
/// carries the permissions of the moment it was issued; an administrator demoted since must
/// not keep using them (`*` in the token stands for everything the user holds now).
pub fn still_held(token: &[String], held_now: &[String]) -> Vec<String> {
    if token.iter().any(|p| p == ALL) {
        return held_now.to_vec();
    }
    let held = PermissionSet::new(held_now.iter().cloned());
    token.iter().filter(|p| held.grants(p)).cloned().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_permissions_are_narrowed_to_what_the_user_holds_now() {
        let token = vec!["users:read".to_owned(), "users:write".to_owned()];
        assert_eq!(
            still_held(&token, &["users:read".to_owned()]),
            vec!["users:read"]
        );
        assert_eq!(still_held(&token, &["*".to_owned()]), token);
        let star = vec!["*".to_owned()];
        assert_eq!(
            still_held(&star, &["users:read".to_owned()]),
            vec!["users:read"]
        );
        assert!(still_held(&star, &[]).is_empty());
    }

    use super::*;

    #[test]
    fn permissions_are_cut_to_the_granted_scope() {
        let held = vec!["profile:read".to_owned(), "users:read".to_owned()];
        let scope = super::super::Scope::parse("openid users:read users:delete").unwrap();
        assert_eq!(effective_permissions(&held, &scope), vec!["users:read"]);
        let admin = vec!["*".to_owned()];
        assert_eq!(
            effective_permissions(&admin, &scope),
            vec!["users:delete", "users:read"]
        );
        let everything = super::super::Scope::parse("openid *").unwrap();
        assert_eq!(effective_permissions(&held, &everything), held);
        let oidc_only = super::super::Scope::parse("openid profile").unwrap();
        assert!(effective_permissions(&admin, &oidc_only).is_empty());
    }

    #[test]
    fn parses_resource_action_and_star() {
        assert!(Permission::parse("users:read").is_ok());
        assert!(Permission::parse("*").unwrap().is_all());
        for bad in [
            "users",
            "users:",
            ":read",
            "Users:Read",
            "users:read:all",
            "a b:c",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn star_grants_everything() {
        assert!(PermissionSet::new(["*"]).grants("users:delete"));
        let set = PermissionSet::new(["profile:read"]);
        assert!(set.grants("profile:read"));
        assert!(!set.grants("profile:write"));
    }
}
