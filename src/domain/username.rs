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
}
