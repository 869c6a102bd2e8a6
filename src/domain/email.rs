//! Email addresses.

use std::fmt;

use super::Invalid;

/// A syntactically valid email address, lower-cased so that uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// RFC 5321 limits the address to 254 octets; the syntax check is `email_address`'s.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        // Checked after lowercasing, so that what is stored parses to itself.
        let text = raw.trim().to_lowercase();
        if text.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if text.len() > 254 {
            return Err(Invalid::new("must be at most 254 characters"));
        }
        if !email_address::EmailAddress::is_valid(&text) || !text.contains('@') {
            return Err(Invalid::new("is not a valid email address"));
        }
        Ok(Self(text))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_refuses_garbage() {
        assert_eq!(
            Email::parse(" Jane@Example.COM ").unwrap().as_str(),
            "jane@example.com"
        );
        assert!(Email::parse("admin@localhost").is_ok());
        for bad in ["", "jane", "jane@", "@example.com", "ja ne@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
