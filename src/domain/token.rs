//! Bearer secrets: plain for one line, stored only as a hash.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// A bearer secret (client secret, refresh token, code, ...) in plain text. It exists between
/// its generation and the response that shows it once; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken(String);

impl PlainToken {
    /// 256 bits from the operating system's CSPRNG, base64url, after a prefix that says what
    /// the token is (`lk_rt_` for a refresh token, ...), so a leaked one is recognisable.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut text = String::with_capacity(prefix.len() + 43);
        text.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut text);
        Self(text)
    }

    /// A token as presented by a client, to be hashed and looked up.
    pub fn presented(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret text: only for the response that hands it out, or for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken(***)")
    }
}

/// The keyed hash of a [`PlainToken`], the only form a bearer secret is stored in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_carry_256_bits_and_hide_in_debug() {
        let a = PlainToken::generate("lk_t_");
        let b = PlainToken::generate("lk_t_");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("lk_t_"));
        assert_eq!(a.expose().len(), 5 + 43);
        assert_eq!(format!("{a:?}"), "PlainToken(***)");
    }
}
