//! The password policy: 8 to 128 characters, and hard enough to guess (zxcvbn), with the
//! person's own username and email counted as known words.

/// Shortest accepted password.
pub const MIN_LENGTH: usize = 8;
/// Longest accepted password (argon2 would take more, but nobody types more).
pub const MAX_LENGTH: usize = 128;

/// Checks a new password; the error says why in words fit for a form.
pub fn check_new_password(
    password: &str,
    known_words: &[&str],
    min_strength: u8,
) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("must be at least {MIN_LENGTH} characters"));
    }
    if length > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    if min_strength == 0 {
        return Ok(());
    }
    let estimate = zxcvbn::zxcvbn(password, known_words);
    if u8::from(estimate.score()) >= min_strength {
        return Ok(());
    }
    let hint = estimate
        .feedback()
        .and_then(|f| {
            f.warning()
                .map(|w| w.to_string())
                .or_else(|| f.suggestions().first().map(|s| s.to_string()))
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "add more words or characters".to_owned());
    Err(format!("is too easy to guess: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_strength_are_enforced() {
        assert!(
            check_new_password("short", &[], 0)
                .unwrap_err()
                .contains("at least 8")
        );
        assert!(check_new_password(&"x".repeat(129), &[], 0).is_err());
        assert!(
            check_new_password("password123", &[], 3)
                .unwrap_err()
                .contains("too easy")
        );
        assert!(check_new_password("jane.doe.2024", &["jane.doe"], 3).is_err());
        assert!(check_new_password("correct horse battery staple", &[], 3).is_ok());
        assert!(
            check_new_password("password123", &[], 0).is_ok(),
            "strength check off"
        );
    }
}
