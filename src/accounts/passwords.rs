//! Password hashing: argon2id at the OWASP parameters (the crate's defaults), always off the
//! async executor and with a bound on concurrent hashes (each takes 19 MiB).

use std::sync::Arc;

use anyhow::Context;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords on the blocking pool, at most `max_concurrent` at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// A hasher allowing `max_concurrent` hashes at once (memory: 19 MiB each).
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher closed")?;
        tokio::task::spawn_blocking(move || hash_blocking(password.expose_secret()))
            .await
            .context("password hashing task")?
    }
}

impl Passwords {
    /// Checks a password against a stored hash. With no hash (an unknown account, or one
    /// without a password) a dummy hash is verified instead, so the answer takes as long
    /// either way and timing reveals nothing.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> anyhow::Result<bool> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher closed")?;
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) => verify_blocking(password.expose_secret(), &hash),
            None => {
                verify_blocking(password.expose_secret(), dummy_hash());
                false
            }
        })
        .await
        .context("password verification task")
    }
}

/// A hash of a random password with the same parameters as real ones, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(generate_password().expose_secret()).expect("argon2 hashes a random password")
    })
}

/// Hashes a password on the current thread (CLI and bootstrap, which are not on the executor).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Whether a PHC hash was made with today's algorithm and parameters (if not, it is replaced
/// at the next successful login).
pub fn has_current_parameters(hash: &str) -> bool {
    let params = argon2::Params::default();
    let prefix = format!(
        "$argon2id$v=19$m={},t={},p={}$",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    );
    hash.starts_with(&prefix)
}

/// A random password for accounts whose password nobody chose (the bootstrap admin):
/// 24 characters from an alphabet without look-alikes, about 140 bits.
pub fn generate_password() -> SecretString {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let password: String = (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    SecretString::from(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weaker_hashes_are_recognised() {
        assert!(has_current_parameters(&hash_blocking("x").unwrap()));
        assert!(!has_current_parameters(
            "$argon2id$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA"
        ));
        assert!(!has_current_parameters(
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
        ));
    }

    #[test]
    fn hashes_with_owasp_argon2id_parameters() {
        let hash = hash_blocking("correct horse battery staple").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("correct horse battery staple", &hash));
        assert!(!verify_blocking("wrong", &hash));
    }
}
