//! Secrets at rest: AES-256-GCM sealing under the key-encryption key, and keyed hashes of
//! bearer tokens.
//!
//! Private signing keys (and later TOTP and webhook secrets) are sealed; high-entropy bearer
//! secrets (client secrets, refresh tokens, codes) are stored as an HMAC-SHA256 under a key
//! derived from the same key-encryption key, so a stolen database alone yields nothing usable.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::{DatabaseUrl, Settings};
use crate::domain::TokenHash;

/// The 32-byte key that encrypts secrets at rest. `Debug` never shows it.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

impl Drop for KeyEncryptionKey {
    fn drop(&mut self) {
        self.0 = [0; 32];
    }
}

impl KeyEncryptionKey {
    /// Decodes a base64 (standard or URL-safe, padded or not) 32-byte key. The error never
    /// contains the input.
    pub fn decode(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| {
                "must be base64 (e.g. the output of `openssl rand -base64 32`)".to_owned()
            })?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("must decode to 32 bytes, not {}", b.len()))?;
        Ok(Self(key))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    fn encode(&self) -> String {
        STANDARD.encode(self.0)
    }
}

/// Finds the key-encryption key: from configuration, else (SQLite only) from the key file
/// beside the database, creating it on first start with a warning. Several PostgreSQL
/// instances must share one key, so there it must be configured.
pub fn load_or_create_kek(settings: &Settings) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(configured) = &settings.key_encryption_key {
        return KeyEncryptionKey::decode(configured.expose_secret()).map_err(|problem| {
            anyhow::anyhow!("invalid configuration: `key_encryption_key`: {problem}")
        });
    }
    let DatabaseUrl::Sqlite(db_path) = &settings.database_url else {
        anyhow::bail!(
            "invalid configuration: `key_encryption_key`: required with PostgreSQL, where every \
             instance must use the same key (set LATCHKEY_KEY_ENCRYPTION_KEY to 32 random bytes \
             in base64, e.g. `openssl rand -base64 32`)"
        );
    };
    let path = kek_path_for(db_path);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read the key file {}: {e}", path.display()))?;
        return KeyEncryptionKey::decode(&text).map_err(|problem| {
            anyhow::anyhow!("the key file {} is invalid: {problem}", path.display())
        });
    }
    let key = KeyEncryptionKey::generate();
    write_private_file(&path, key.encode().as_bytes())?;
    tracing::warn!(
        path = %path.display(),
        "no key_encryption_key configured: generated one into a file beside the database. \
         Back it up with the database; without it the signing keys cannot be read."
    );
    Ok(key)
}

/// `latchkey.db` → `latchkey.db.kek`.
pub fn kek_path_for(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".kek");
    db_path.with_file_name(name)
}

fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create the key file {}: {e}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// A sealed value could not be opened: the key is wrong or the data was altered.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt {0}: wrong key_encryption_key, or the stored value was altered")]
pub struct OpenError(pub String);

/// Seals and opens secrets, and hashes bearer tokens. Cheap to share behind an `Arc`.
pub struct Crypto {
    cipher: Aes256Gcm,
    token_mac: Hmac<Sha256>,
    csrf_mac: Hmac<Sha256>,
}

impl fmt::Debug for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Crypto(***)")
    }
}

/// Format tag of sealed values, so the scheme can change later without guessing.
const SEALED_PREFIX: &str = "v1.";

impl Crypto {
    /// Derives the sealing, token-hashing and CSRF keys from the key-encryption key
    /// (HKDF-SHA256 with distinct labels, so no use can stand in for another).
    pub fn new(kek: &KeyEncryptionKey) -> Self {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"latchkey"), &kek.0);
        let derive = |label: &[u8]| {
            let mut key = [0u8; 32];
            hkdf.expand(label, &mut key)
                .expect("32 bytes is a valid HKDF length");
            key
        };
        let (mut seal_key, mut token_key, mut csrf_key) = (
            derive(b"seal v1"),
            derive(b"token hash v1"),
            derive(b"csrf v1"),
        );
        let mac = |key: &[u8; 32]| {
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key size")
        };
        let crypto = Self {
            cipher: Aes256Gcm::new_from_slice(&seal_key).expect("32-byte key"),
            token_mac: mac(&token_key),
            csrf_mac: mac(&csrf_key),
        };
        for key in [&mut seal_key, &mut token_key, &mut csrf_key] {
            key.fill(0);
        }
        crypto
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the row's id) so a sealed value cannot
    /// be moved to another row. Output: `v1.` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = Vec::with_capacity(12 + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts a value sealed with [`Crypto::seal`] under the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, OpenError> {
        let fail = || OpenError(context.to_owned());
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(fail)?;
        let bytes = STANDARD.decode(body).map_err(|_| fail())?;
        if bytes.len() < 12 + 16 {
            return Err(fail());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail())
    }

    /// The keyed hash under which a bearer secret is stored and looked up.
    pub fn hash_token(&self, token: &str) -> TokenHash {
        let mut mac = self.token_mac.clone();
        mac.update(token.as_bytes());
        TokenHash(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

impl Crypto {
    /// The CSRF form token belonging to a CSRF cookie value (a signed double-submit token:
    /// forging it needs the server's key, reading it needs the page).
    pub fn csrf_token(&self, cookie_value: &str) -> String {
        let mut mac = self.csrf_mac.clone();
        mac.update(cookie_value.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_is_bound_to_context() {
        let crypto = Crypto::new(&KeyEncryptionKey::generate());
        let sealed = crypto.seal(b"private key bytes", "kid-1");
        assert!(!sealed.contains("private"));
        assert_eq!(crypto.open(&sealed, "kid-1").unwrap(), b"private key bytes");
        assert!(crypto.open(&sealed, "kid-2").is_err());
        let other = Crypto::new(&KeyEncryptionKey::generate());
        assert!(other.open(&sealed, "kid-1").is_err());
    }

    #[test]
    fn token_hash_is_keyed_and_stable() {
        let kek = KeyEncryptionKey::generate();
        let a = Crypto::new(&kek);
        let b = Crypto::new(&kek);
        assert_eq!(a.hash_token("t"), b.hash_token("t"));
        assert_ne!(a.hash_token("t"), a.hash_token("u"));
        assert_ne!(
            a.hash_token("t"),
            Crypto::new(&KeyEncryptionKey::generate()).hash_token("t")
        );
    }

    #[test]
    fn kek_decoding_never_echoes_input() {
        let err = KeyEncryptionKey::decode("c2VjcmV0LXZhbHVl").unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
        assert!(KeyEncryptionKey::decode(&STANDARD.encode([7u8; 32])).is_ok());
    }
}
