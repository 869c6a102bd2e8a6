//! OAuth scopes (RFC 6749 §3.3).

use std::fmt;

use super::Invalid;

/// A scope: distinct scope-tokens in the order given, space-separated on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(Vec<String>);

impl Scope {
    /// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by spaces.
    /// Duplicates are dropped; an empty string is an empty scope.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut tokens: Vec<String> = Vec::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(Invalid::new(format!(
                    "`{token}` is not a valid scope token"
                )));
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Self(tokens))
    }

    /// Whether the scope holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether the scope is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens of `self` that `allowed` also holds, in `self`'s order.
    pub fn intersect(&self, allowed: &Scope) -> Scope {
        Scope(
            self.0
                .iter()
                .filter(|t| allowed.contains(t))
                .cloned()
                .collect(),
        )
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }

    /// The tokens.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dedupes_and_refuses_bad_characters() {
        let s = Scope::parse("openid  profile openid").unwrap();
        assert_eq!(s.to_string(), "openid profile");
        assert!(Scope::parse("open\"id").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn intersects_in_request_order() {
        let asked = Scope::parse("email openid admin").unwrap();
        let allowed = Scope::parse("openid profile email").unwrap();
        assert_eq!(asked.intersect(&allowed).to_string(), "email openid");
        assert!(!asked.is_subset_of(&allowed));
    }
}
