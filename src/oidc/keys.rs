//! Signing keys: generation, the next → active → retired lifecycle, and the in-memory set.
//!
//! Each algorithm has one `active` key that signs and one `next` key that is already published,
//! so relying parties hold a key before the first token it signs. A rotation retires the active
//! key (published until every token it signed has expired), activates the next and publishes a
//! new next. The database decides: rotations are guarded updates, so instances that race agree
//! on one outcome, and every instance reloads its in-memory set when the rows change.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, PS256, RS256};
use rand::RngCore;
use serde::Serialize;

use crate::crypto::Crypto;
use crate::domain::{SigningAlg, Timestamp, now};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::store::keys::{self as rows, ACTIVE, NEXT, RETIRED, SigningKeyRow};
use crate::store::{AnyConnection, Store, StoreError, write_transaction};

/// RSA modulus size for RS256 and PS256 keys.
const RSA_BITS: u32 = 2048;

/// A verifier for `alg` from a public JWK (ours or a client's).
pub fn verifier_for(alg: SigningAlg, jwk: &Jwk) -> anyhow::Result<Box<dyn JwsVerifier>> {
    Ok(match alg {
        SigningAlg::Es256 => Box::new(ES256.verifier_from_jwk(jwk)?),
        SigningAlg::Rs256 => Box::new(RS256.verifier_from_jwk(jwk)?),
        SigningAlg::Ps256 => Box::new(PS256.verifier_from_jwk(jwk)?),
        SigningAlg::EdDsa => Box::new(EdDSA.verifier_from_jwk(jwk)?),
    })
}

/// Why a compact JWS was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts with a JSON header and payload.
    #[error("the token is malformed")]
    Malformed,
    /// The header names no published key, or an algorithm other than the key's.
    #[error("the token was not signed by a known key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    BadSignature,
}

/// A compact JWS whose signature verified: its header and payload bytes.
#[derive(Debug)]
pub struct VerifiedJws {
    /// The protected header.
    pub header: serde_json::Value,
    /// The decoded payload.
    pub payload: Vec<u8>,
}

/// Splits a compact JWS and decodes its header, without verifying anything.
pub fn decode_compact(token: &str) -> Result<(serde_json::Value, &str, &str, &str), JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwsError::Malformed)?;
    let header_json: serde_json::Value =
        serde_json::from_slice(&header_bytes).map_err(|_| JwsError::Malformed)?;
    if !header_json.is_object() {
        return Err(JwsError::Malformed);
    }
    Ok((header_json, header, payload, signature))
}

/// Verifies a compact JWS with `verifier`, whose algorithm must be the header's.
pub fn verify_with(
    token: &str,
    alg: SigningAlg,
    verifier: &dyn JwsVerifier,
) -> Result<VerifiedJws, JwsError> {
    let (header, header_b64, payload_b64, signature_b64) = decode_compact(token)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some(alg.as_str()) {
        return Err(JwsError::UnknownKey);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwsError::Malformed)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    verifier
        .verify(&token.as_bytes()[..signing_input_len], &signature)
        .map_err(|_| JwsError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| JwsError::Malformed)?;
    Ok(VerifiedJws { header, payload })
}

/// A freshly generated key pair, before it is stored.
struct GeneratedKey {
    kid: String,
    alg: SigningAlg,
    public_jwk: Jwk,
    private_der: Vec<u8>,
}

fn generate(alg: SigningAlg) -> anyhow::Result<GeneratedKey> {
    use josekit::jwk::KeyPair;
    let pair: Box<dyn KeyPair> = match alg {
        SigningAlg::Es256 => Box::new(ES256.generate_key_pair()?),
        SigningAlg::Rs256 => Box::new(RS256.generate_key_pair(RSA_BITS)?),
        SigningAlg::Ps256 => Box::new(PS256.generate_key_pair(RSA_BITS)?),
        SigningAlg::EdDsa => Box::new(EdDSA.generate_key_pair(EdCurve::Ed25519)?),
    };
    let mut id = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let kid = URL_SAFE_NO_PAD.encode(id);
    let mut public_jwk = pair.to_jwk_public_key();
    public_jwk.set_key_id(&kid);
    public_jwk.set_algorithm(alg.as_str());
    public_jwk.set_key_use("sig");
    Ok(GeneratedKey {
        kid,
        alg,
        public_jwk,
        private_der: pair.to_der_private_key(),
    })
}

impl GeneratedKey {
    fn into_row(self, crypto: &Crypto, status: &str, at: i64) -> SigningKeyRow {
        SigningKeyRow {
            private_key: crypto.seal(&self.private_der, &self.kid),
            public_jwk: self.public_jwk.to_string(),
            kid: self.kid,
            alg: self.alg.as_str().to_owned(),
            status: status.to_owned(),
            created_at: at,
            activated_at: (status == ACTIVE).then_some(at),
            retired_at: None,
            expires_at: None,
        }
    }
}

/// One key as `latchkey keys list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub created_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    /// When a retired key leaves the JWK Set.
    pub expires_at: Option<Timestamp>,
}

impl From<&SigningKeyRow> for KeySummary {
    fn from(row: &SigningKeyRow) -> Self {
        Self {
            kid: row.kid.clone(),
            alg: row.alg.clone(),
            status: row.status.clone(),
            created_at: Timestamp(row.created_at),
            activated_at: row.activated_at.map(Timestamp),
            retired_at: row.retired_at.map(Timestamp),
            expires_at: row.expires_at.map(Timestamp),
        }
    }
}

/// Creates whatever is missing so that every algorithm has an active and a next key.
/// Keys are generated before the transaction, so the write lock is held only for inserts.
pub fn ensure_keys(conn: &mut AnyConnection, crypto: &Crypto) -> anyhow::Result<()> {
    let existing = rows::all(conn)?;
    let has = |alg: SigningAlg, status: &str| {
        existing
            .iter()
            .any(|r| r.alg == alg.as_str() && r.status == status)
    };
    let mut missing = Vec::new();
    for &alg in SigningAlg::ALL {
        for status in [ACTIVE, NEXT] {
            if !has(alg, status) {
                missing.push((generate(alg)?, status));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let at = now();
    write_transaction(conn, |conn| {
        for (key, status) in missing {
            // Another process may have filled the gap meanwhile: re-check inside the lock.
            if rows::with_status(conn, key.alg.as_str(), status)?.is_empty() {
                rows::insert(conn, &key.into_row(crypto, status, at))?;
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(())
}

/// Why a rotation of one algorithm did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The next key now signs; the old active key is retired.
    Rotated {
        retired: String,
        activated: String,
        next: String,
    },
    /// The active key is younger than the rotation period.
    NotDue,
    /// Another process rotated this algorithm at the same moment.
    LostRace,
}

/// Rotates `alg` now (`force`) or when its active key is older than `period_secs`.
/// `retire_for_secs` is how long the retired key stays published. A rotation is written to the
/// audit log (`key_rotated`, by the system, `via` the schedule) in its transaction.
pub fn rotate(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    alg: SigningAlg,
    force: bool,
    period_secs: u64,
    retire_for_secs: u64,
) -> anyhow::Result<RotationOutcome> {
    let policy = RotationPolicy {
        force,
        period_secs,
        retire_for_secs,
        via: "schedule",
    };
    rotate_via(conn, crypto, alg, &policy)
}

/// When and why a rotation happens.
#[derive(Debug, Clone, Copy)]
struct RotationPolicy {
    /// Rotate even if the active key is younger than the period.
    force: bool,
    period_secs: u64,
    /// How long the retired key stays published.
    retire_for_secs: u64,
    /// What started it, for the audit log (`schedule`, `cli`).
    via: &'static str,
}

fn rotate_via(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    alg: SigningAlg,
    policy: &RotationPolicy,
) -> anyhow::Result<RotationOutcome> {
    let RotationPolicy {
        force,
        period_secs,
        retire_for_secs,
        via,
    } = *policy;
    let active = rows::with_status(conn, alg.as_str(), ACTIVE)?;
    let at = now();
    let due = |row: &SigningKeyRow| {
        force || row.activated_at.unwrap_or(row.created_at) + period_secs as i64 <= at
    };
    if !active.iter().any(due) && !active.is_empty() {
        return Ok(RotationOutcome::NotDue);
    }
    let successor = generate(alg)?;
    let successor_kid = successor.kid.clone();
    let outcome = write_transaction(conn, |conn| {
        let active = rows::with_status(conn, alg.as_str(), ACTIVE)?;
        let next = rows::with_status(conn, alg.as_str(), NEXT)?;
        let (Some(current), Some(next)) = (active.first(), next.first()) else {
            // `ensure_keys` keeps both present; without them there is nothing to rotate.
            return Ok(RotationOutcome::LostRace);
        };
        if !due(current) {
            return Ok(RotationOutcome::NotDue);
        }
        let expires = at + retire_for_secs as i64;
        if !rows::retire_if_active(conn, &current.kid, at, expires)? {
            return Ok(RotationOutcome::LostRace);
        }
        if !rows::activate_if_next(conn, &next.kid, at)? {
            return Err(StoreError::Conflict {
                constraint: "signing_keys next key changed during rotation".into(),
            });
        }
        let outcome = RotationOutcome::Rotated {
            retired: current.kid.clone(),
            activated: next.kid.clone(),
            next: successor.kid.clone(),
        };
        rows::insert(conn, &successor.into_row(crypto, NEXT, at))?;
        audit::record(
            conn,
            &Actor::system(),
            AuditEvent::new("key_rotated", "keys", Some(&next.kid)).info(serde_json::json!({
                "alg": alg.as_str(),
                "retired": [current.kid],
                "next": successor_kid,
                "via": via,
            })),
        )?;
        Ok::<_, StoreError>(outcome)
    });
    match outcome {
        Ok(outcome) => Ok(outcome),
        // A racing process inserted its successor first (one next key per algorithm).
        Err(StoreError::Conflict { .. }) => Ok(RotationOutcome::LostRace),
        Err(other) => Err(other.into()),
    }
}

/// The key that signs for one algorithm, ready to use.
pub struct ActiveKey {
    kid: String,
    alg: SigningAlg,
    /// When the key started signing (unix seconds).
    activated_at: i64,
    signer: Box<dyn JwsSigner>,
    public_jwk: openidconnect::core::CoreJsonWebKey,
}

impl std::fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl ActiveKey {
    /// The key id put in the JWS header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public key, in `openidconnect`'s terms (ID tokens are built with its types).
    pub fn public_jwk(&self) -> &openidconnect::core::CoreJsonWebKey {
        &self.public_jwk
    }

    /// Signs `signing_input` (`base64url(header).base64url(payload)`).
    pub fn sign(&self, signing_input: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.signer.sign(signing_input).context("sign")
    }

    /// A compact JWS of `claims` with header `{"alg","kid","typ"}`.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            kid: &'a str,
            typ: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            kid: &self.kid,
            typ,
        })?;
        let payload = serde_json::to_vec(claims)?;
        let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 200);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }
}

/// The keys one instance holds in memory: parsed once per change, never per request.
pub struct KeySet {
    active: HashMap<SigningAlg, ActiveKey>,
    verifiers: HashMap<String, (SigningAlg, Box<dyn JwsVerifier>)>,
    jwks: Bytes,
    fingerprint: Vec<(String, String)>,
    /// Tokens this set has verified, so that one presented again skips the signature check.
    remembered: RememberedTokens,
}

/// The most bytes of tokens and payloads [`KeySet::verify_remembered`] keeps (about 4,000
/// typical access tokens).
const REMEMBERED_TOKEN_BYTES: u64 = 4 << 20;

/// The longest token [`KeySet::verify_remembered`] keeps; longer ones are verified every time.
const REMEMBERED_TOKEN_MAX_LEN: usize = 8 << 10;

/// Weighs a remembered token by the bytes it holds.
#[derive(Clone)]
struct TokenBytes;

impl quick_cache::Weighter<Box<str>, Arc<VerifiedJws>> for TokenBytes {
    fn weight(&self, token: &Box<str>, verified: &Arc<VerifiedJws>) -> u64 {
        (token.len() + verified.payload.len()) as u64
    }
}

/// Verified tokens by their exact text, bounded by [`REMEMBERED_TOKEN_BYTES`].
type RememberedTokens = quick_cache::sync::Cache<Box<str>, Arc<VerifiedJws>, TokenBytes>;

impl KeySet {
    /// Parses the stored rows: verifiers for every published key, signers for active ones.
    fn load(rows: &[SigningKeyRow], crypto: &Crypto) -> anyhow::Result<Self> {
        let mut active = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut published = Vec::new();
        let mut fingerprint = Vec::new();
        // The signing keys first, then their successors, then retired ones.
        let rank = |status: &str| match status {
            ACTIVE => 0,
            NEXT => 1,
            _ => 2,
        };
        let mut ordered: Vec<&SigningKeyRow> = rows.iter().collect();
        ordered.sort_by(|a, b| {
            (rank(&a.status), &a.alg, &a.kid).cmp(&(rank(&b.status), &b.alg, &b.kid))
        });
        for row in ordered {
            let alg: SigningAlg = row
                .alg
                .parse()
                .map_err(|e| anyhow::anyhow!("signing key {}: {e}", row.kid))?;
            let jwk = Jwk::from_bytes(row.public_jwk.as_bytes())
                .with_context(|| format!("signing key {}: public JWK", row.kid))?;
            let verifier = verifier_for(alg, &jwk)?;
            verifiers.insert(row.kid.clone(), (alg, verifier));
            fingerprint.push((row.kid.clone(), row.status.clone()));
            if row.status == ACTIVE {
                let der = crypto.open(&row.private_key, &row.kid)?;
                let signer: Box<dyn JwsSigner> = match alg {
                    SigningAlg::Es256 => Box::new(ES256.signer_from_der(&der)?),
                    SigningAlg::Rs256 => Box::new(RS256.signer_from_der(&der)?),
                    SigningAlg::Ps256 => Box::new(PS256.signer_from_der(&der)?),
                    SigningAlg::EdDsa => Box::new(EdDSA.signer_from_der(&der)?),
                };
                active.insert(
                    alg,
                    ActiveKey {
                        kid: row.kid.clone(),
                        alg,
                        activated_at: row.activated_at.unwrap_or(row.created_at),
                        signer,
                        public_jwk: serde_json::from_str(&row.public_jwk)
                            .with_context(|| format!("signing key {}: JWK", row.kid))?,
                    },
                );
            }
            if matches!(row.status.as_str(), ACTIVE | NEXT | RETIRED) {
                published.push(serde_json::from_str::<serde_json::Value>(&row.public_jwk)?);
            }
        }
        fingerprint.sort();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": published }))?;
        Ok(Self {
            active,
            verifiers,
            jwks: Bytes::from(jwks),
            fingerprint,
            remembered: RememberedTokens::with_weighter(1024, REMEMBERED_TOKEN_BYTES, TokenBytes),
        })
    }

    /// When each active key started signing, by algorithm (for the key-age metric).
    pub fn active_ages(&self) -> Vec<(&'static str, i64)> {
        self.active
            .values()
            .map(|key| (key.alg.as_str(), key.activated_at))
            .collect()
    }

    /// The signing key for `alg`.
    pub fn active(&self, alg: SigningAlg) -> Option<&ActiveKey> {
        self.active.get(&alg)
    }

    /// The verifier of a published key, with its algorithm.
    pub fn verifier(&self, kid: &str) -> Option<(SigningAlg, &dyn JwsVerifier)> {
        self.verifiers.get(kid).map(|(alg, v)| (*alg, v.as_ref()))
    }

    /// Verifies a compact JWS signed by one of our published keys (found by `kid`).
    pub fn verify(&self, token: &str) -> Result<VerifiedJws, JwsError> {
        let (header, ..) = decode_compact(token)?;
        let kid = header
            .get("kid")
            .and_then(|k| k.as_str())
            .ok_or(JwsError::UnknownKey)?;
        let (alg, verifier) = self.verifier(kid).ok_or(JwsError::UnknownKey)?;
        verify_with(token, alg, verifier)
    }

    /// [`KeySet::verify`] for tokens that come back: access tokens, presented at UserInfo, at
    /// introspection and to the JSON API on every call. A token whose signature this set
    /// verified before is recognised by its exact text and not verified again (an ES256
    /// verification costs about 60 µs of CPU, more than the rest of such a request). The
    /// memory lives in this set, so a new set (a key rotated or retired) starts afresh;
    /// expiry and revocation are for the caller to check on every use.
    pub fn verify_remembered(&self, token: &str) -> Result<Arc<VerifiedJws>, JwsError> {
        if let Some(verified) = self.remembered.get(token) {
            return Ok(verified);
        }
        let verified = Arc::new(self.verify(token)?);
        if token.len() <= REMEMBERED_TOKEN_MAX_LEN {
            self.remembered.insert(token.into(), verified.clone());
        }
        Ok(verified)
    }

    /// How many keys the JWK Set publishes.
    pub fn published_count(&self) -> usize {
        self.verifiers.len()
    }

    /// The JWK Set document, serialised once per key change.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }
}

/// Holds the current [`KeySet`] and keeps it in step with the database.
pub struct KeyManager {
    store: Store,
    crypto: Arc<Crypto>,
    current: ArcSwap<KeySet>,
    rotation_period_secs: u64,
    retire_for_secs: u64,
}

impl KeyManager {
    /// Loads the stored keys (which [`ensure_keys`] has completed).
    pub async fn start(
        store: Store,
        crypto: Arc<Crypto>,
        rotation_period_secs: u64,
        retire_for_secs: u64,
    ) -> anyhow::Result<Self> {
        let set = {
            let crypto = crypto.clone();
            store
                .run(move |conn| Ok(KeySet::load(&rows::all(conn)?, &crypto)?))
                .await
                .context("load the signing keys")?
        };
        Ok(Self {
            store,
            crypto,
            current: ArcSwap::from_pointee(set),
            rotation_period_secs,
            retire_for_secs,
        })
    }

    /// The keys in use now. Cheap: an atomic load of a shared pointer.
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// Reloads the set when the stored keys changed (another instance rotated, or the CLI did).
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let fingerprint = self.store.run(rows::fingerprint).await?;
        if fingerprint == self.current.load().fingerprint {
            return Ok(false);
        }
        let crypto = self.crypto.clone();
        let set = self
            .store
            .run(move |conn| Ok(KeySet::load(&rows::all(conn)?, &crypto)?))
            .await?;
        self.current.store(Arc::new(set));
        tracing::info!("signing keys reloaded");
        Ok(true)
    }

    /// Rotates the algorithms whose active key is older than the rotation period, removes
    /// retired keys whose tokens have all expired, and reloads.
    pub async fn rotate_due(&self) -> anyhow::Result<()> {
        let crypto = self.crypto.clone();
        let (period, retire_for) = (self.rotation_period_secs, self.retire_for_secs);
        let (outcomes, removed) = self
            .store
            .run(move |conn| {
                ensure_keys(conn, &crypto)?;
                let mut outcomes = Vec::new();
                for &alg in SigningAlg::ALL {
                    outcomes.push((alg, rotate(conn, &crypto, alg, false, period, retire_for)?));
                }
                let removed = write_transaction(conn, |c| rows::delete_expired(c, now()))?;
                Ok((outcomes, removed))
            })
            .await?;
        for (alg, outcome) in outcomes {
            if let RotationOutcome::Rotated {
                retired, activated, ..
            } = outcome
            {
                tracing::info!(alg = %alg, %retired, %activated, "signing key rotated");
            }
        }
        for kid in removed {
            tracing::info!(%kid, "retired signing key removed from the JWK Set");
        }
        self.refresh().await?;
        Ok(())
    }

    /// Runs until the process stops: reloads on change every `interval`, and checks for due
    /// rotations every minute.
    pub async fn maintain(
        self: Arc<Self>,
        interval: std::time::Duration,
        heartbeat: crate::workers::Heartbeat,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rotation_check = std::time::Duration::from_secs(60);
        let mut last_rotation_check = std::time::Instant::now();
        loop {
            ticker.tick().await;
            if last_rotation_check.elapsed() >= rotation_check {
                last_rotation_check = std::time::Instant::now();
                if let Err(error) = self.rotate_due().await {
                    tracing::warn!(error = %format!("{error:#}"), "key rotation check failed");
                }
            } else if let Err(error) = self.refresh().await {
                tracing::warn!(error = %format!("{error:#}"), "signing key refresh failed");
            }
            heartbeat.beat();
        }
    }
}

/// Rotates every algorithm now, for `latchkey keys rotate` (each rotation `via` the CLI in the
/// audit log). Returns what happened per algorithm.
pub fn rotate_all_now(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    period_secs: u64,
    retire_for_secs: u64,
) -> anyhow::Result<Vec<(SigningAlg, RotationOutcome)>> {
    ensure_keys(conn, crypto)?;
    let policy = RotationPolicy {
        force: true,
        period_secs,
        retire_for_secs,
        via: "cli",
    };
    SigningAlg::ALL
        .iter()
        .map(|&alg| Ok((alg, rotate_via(conn, crypto, alg, &policy)?)))
        .collect()
}

/// Every stored key, for `latchkey keys list`.
pub fn summaries(conn: &mut AnyConnection) -> Result<Vec<KeySummary>, StoreError> {
    Ok(rows::all(conn)?.iter().map(KeySummary::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyEncryptionKey;

    fn key_set(crypto: &Crypto) -> KeySet {
        let row = generate(SigningAlg::Es256)
            .unwrap()
            .into_row(crypto, ACTIVE, now());
        KeySet::load(&[row], crypto).unwrap()
    }

    #[test]
    fn a_remembered_token_is_known_by_its_exact_text_and_only_to_its_key_set() {
        let crypto =
            Crypto::new(&KeyEncryptionKey::decode(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap());
        let keys = key_set(&crypto);
        let token = keys
            .active(SigningAlg::Es256)
            .unwrap()
            .sign_jwt("at+jwt", &serde_json::json!({ "sub": "someone" }))
            .unwrap();
        let first = keys.verify_remembered(&token).unwrap();
        let again = keys.verify_remembered(&token).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second presentation is remembered"
        );
        assert_eq!(again.payload, br#"{"sub":"someone"}"#);

        // One character changed in the signature: verified afresh, and refused.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            keys.verify_remembered(&tampered).unwrap_err(),
            JwsError::BadSignature
        );

        // Another key set (a rotation) remembers nothing, and does not know the old key.
        let rotated = key_set(&crypto);
        assert_eq!(
            rotated.verify_remembered(&token).unwrap_err(),
            JwsError::UnknownKey
        );
    }
}
