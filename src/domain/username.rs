//! Usernames.

use std::fmt;

use super::Invalid;

/// A login name: 3 to 64 characters of letters, digits and `. _ - @ +` (so an email address is
/// a valid username, as seed 000 uses), lower-cased so uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Parses and normalises a username.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        // Checked after lowercasing, so that what is stored parses to itself (`İ` lowercases
        // to `i` and a combining dot, which is not a letter).
        let text = raw.trim().to_lowercase();
        let len = text.chars().count();
        if !(3..=64).contains(&len) {
            return Err(Invalid::new("must be 3 to 64 characters"));
        }
        if !text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
        {
            return Err(Invalid::new(
                "may contain only letters, digits and . _ - @ +",
            ));
        }
        Ok(Self(text))
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this username is an address other than `email`. A login is looked up by
    /// username or address, so a username that is someone else's address would let its holder
    /// stand in for them at the login form: an address may be a username only for its owner.
    pub fn is_address_other_than(&self, email: &super::Email) -> bool {
        self.0.contains('@') && !self.0.eq_ignore_ascii_case(email.as_str())
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_emails_and_refuses_spaces() {
        assert_eq!(Username::parse("Jane.Doe").unwrap().as_str(), "jane.doe");
        assert!(Username::parse("user@example.com").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("jane doe").is_err());
        assert!(Username::parse("jane<script>").is_err());
    }

    #[test]
    fn an_address_is_a_username_only_for_its_owner() {
        let own = super::super::Email::parse("Nina@example.com").unwrap();
        assert!(
            !Username::parse("nina@example.com")
                .unwrap()
                .is_address_other_than(&own)
        );
        assert!(
            Username::parse("frank@example.com")
                .unwrap()
                .is_address_other_than(&own)
        );
        assert!(!Username::parse("nina").unwrap().is_address_other_than(&own));
    }
}
