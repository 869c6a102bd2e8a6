//! Rate limits (the contract's table, seed 004's codes, seed 000's headers): fixed-window
//! counters per rule and client, kept in memory for a single instance on SQLite, or in the
//! database so that every instance on PostgreSQL counts the same requests.
//!
//! Limits are enforced by [`middleware::enforce`] before a handler runs, so a refused login
//! never reaches the password check and never counts as a failed attempt.

pub mod middleware;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{CounterStore, DatabaseUrl, LimitRule, RateLimitSettings};
use crate::crypto::Crypto;
use crate::domain::now;
use crate::store::{Store, StoreError, rate_limits};

/// The rules of the contract's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Registrations, per IP.
    Register,
    /// Logins (API and page), per IP and username.
    Login,
    /// Logins (API and page) from one IP, whatever login they name: the ceiling over
    /// [`Limit::Login`], which a fresh login in every request would otherwise escape.
    LoginAddress,
    /// Setting a password with a reset token, per IP.
    ResetPassword,
    /// Asking for a reset mail, per IP.
    ForgotPassword,
    /// Refreshing tokens, per IP.
    Refresh,
    /// The rest of the JSON API, per token subject or IP.
    Api,
}

impl Limit {
    /// The rule's name (its section in the settings).
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::LoginAddress => "login_address",
            Self::ResetPassword => "reset_password",
            Self::ForgotPassword => "forgot_password",
            Self::Refresh => "refresh",
            Self::Api => "api",
        }
    }

    /// The configured rule.
    pub fn rule(self, settings: &RateLimitSettings) -> LimitRule {
        match self {
            Self::Register => settings.register,
            Self::Login => settings.login,
            Self::LoginAddress => settings.login_address,
            Self::ResetPassword => settings.reset_password,
            Self::ForgotPassword => settings.forgot_password,
            Self::Refresh => settings.refresh,
            Self::Api => settings.api,
        }
    }

    /// The error code of a 429 (seed 004's codes, in the contract's snake case).
    pub fn error_code(self) -> &'static str {
        match self {
            Self::Register => "too_many_attempts",
            Self::Login | Self::LoginAddress => "too_many_login_attempts",
            Self::ResetPassword => "too_many_reset_attempts",
            Self::ForgotPassword => "too_many_reset_requests",
            Self::Refresh => "too_many_refresh_requests",
            Self::Api => "rate_limited",
        }
    }

    /// The message of a 429.
    pub fn message(self) -> &'static str {
        match self {
            Self::Register => "Too many registration attempts. Please try again in a few minutes.",
            Self::Login | Self::LoginAddress => {
                "Too many login attempts. Please try again in a few minutes."
            }
            Self::ResetPassword => {
                "Too many password reset attempts. Please try again in a few minutes."
            }
            Self::ForgotPassword => "Too many password reset requests. Please try again later.",
            Self::Refresh => "Too many token refreshes. Please slow down.",
            Self::Api => "Rate limit exceeded. Please try again later.",
        }
    }
}

/// Where a client stands against one rule after (or without) counting a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The rule.
    pub limit: u32,
    /// Requests used in the current window (this one included, when counted).
    pub used: u32,
    /// When the window ends (unix seconds).
    pub reset_at: i64,
    /// The window's length.
    pub window_secs: u64,
}

impl Standing {
    /// Whether the request counted is within the limit.
    pub fn allowed(&self) -> bool {
        self.used <= self.limit
    }

    /// Requests left in the window.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    /// Seconds until the window ends (at least one).
    pub fn retry_after(&self, at: i64) -> i64 {
        (self.reset_at - at).max(1)
    }
}

/// In-memory counters: bucket → (window start, hits, window end).
type MemoryCounters = Mutex<MemoryTable>;

/// The in-memory counters and when they are next swept.
#[derive(Default)]
struct MemoryTable {
    buckets: HashMap<String, (i64, u32, i64)>,
    /// The size at which ended windows are next swept: twice what a sweep left (at least
    /// [`MEMORY_SWEEP_AT`]), so that a table full of live windows (many clients at once) is
    /// not scanned again on every request.
    sweep_at: usize,
}

/// Entries kept in memory before ended windows are first swept.
const MEMORY_SWEEP_AT: usize = 50_000;

enum Counters {
    Memory(MemoryCounters),
    Database(Store),
}

/// Counts requests against the rules.
pub struct Limiter {
    settings: RateLimitSettings,
    counters: Counters,
    crypto: Arc<Crypto>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("enabled", &self.settings.enabled)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter over the store the settings choose.
    pub fn new(
        settings: &RateLimitSettings,
        database: &DatabaseUrl,
        store: Store,
        crypto: Arc<Crypto>,
    ) -> Self {
        let shared = match settings.store {
            CounterStore::Database => true,
            CounterStore::Memory => false,
            CounterStore::Auto => matches!(database, DatabaseUrl::Postgres(_)),
        };
        Self {
            settings: settings.clone(),
            counters: if shared {
                Counters::Database(store)
            } else {
                Counters::Memory(Mutex::default())
            },
            crypto,
        }
    }

    /// Whether limits are enforced.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The settings in force.
    pub fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    /// The bucket of a rule and client key: a keyed hash, so that counters never hold an
    /// address or a username.
    fn bucket(&self, limit: Limit, key: &str) -> String {
        self.crypto
            .hash_token(&format!("rate:{}:{key}", limit.name()))
            .0
    }

    fn window(&self, limit: Limit, at: i64) -> (LimitRule, i64, i64) {
        let rule = limit.rule(&self.settings);
        let window = rule.window_secs as i64;
        let start = at - at.rem_euclid(window);
        (rule, start, start + window)
    }

    /// Counts one request of `key` against `limit`.
    pub async fn hit(&self, limit: Limit, key: &str) -> Result<Standing, StoreError> {
        self.count(limit, key, true).await
    }

    /// Where `key` stands against `limit`, without counting.
    pub async fn peek(&self, limit: Limit, key: &str) -> Result<Standing, StoreError> {
        self.count(limit, key, false).await
    }

    async fn count(&self, limit: Limit, key: &str, add: bool) -> Result<Standing, StoreError> {
        let at = now();
        let (rule, start, end) = self.window(limit, at);
        let bucket = self.bucket(limit, key);
        let used = match &self.counters {
            Counters::Memory(map) => {
                let mut table = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if add && table.buckets.len() >= table.sweep_at.max(MEMORY_SWEEP_AT) {
                    table.buckets.retain(|_, (_, _, ends)| *ends > at);
                    table.sweep_at = table.buckets.len() * 2;
                }
                let entry = table.buckets.entry(bucket);
                if add {
                    let counter = entry.or_insert((start, 0, end));
                    if counter.0 != start {
                        *counter = (start, 0, end);
                    }
                    counter.1 = counter.1.saturating_add(1);
                    counter.1
                } else {
                    match entry {
                        std::collections::hash_map::Entry::Occupied(o) if o.get().0 == start => {
                            o.get().1
                        }
                        _ => 0,
                    }
                }
            }
            Counters::Database(store) => {
                let hits = store
                    .run(move |conn| {
                        if add {
                            rate_limits::hit(conn, &bucket, start, end)
                        } else {
                            rate_limits::peek(conn, &bucket, start)
                        }
                    })
                    .await?;
                u32::try_from(hits).unwrap_or(u32::MAX)
            }
        };
        Ok(Standing {
            limit: rule.limit,
            used,
            reset_at: end,
            window_secs: rule.window_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(settings: RateLimitSettings) -> Limiter {
        let kek = crate::crypto::KeyEncryptionKey::generate();
        Limiter {
            settings,
            counters: Counters::Memory(Mutex::default()),
            crypto: Arc::new(Crypto::new(&kek)),
        }
    }

    #[tokio::test]
    async fn requests_beyond_the_limit_are_refused_and_keys_are_counted_apart() {
        let settings = RateLimitSettings {
            login: LimitRule {
                limit: 2,
                window_secs: 300,
            },
            ..RateLimitSettings::default()
        };
        let limiter = limiter(settings);
        assert!(
            limiter
                .hit(Limit::Login, "ip|alice")
                .await
                .unwrap()
                .allowed()
        );
        let second = limiter.hit(Limit::Login, "ip|alice").await.unwrap();
        assert!(second.allowed());
        assert_eq!(second.remaining(), 0);
        let third = limiter.hit(Limit::Login, "ip|alice").await.unwrap();
        assert!(!third.allowed());
        assert!(third.retry_after(now()) <= 300);
        assert!(limiter.hit(Limit::Login, "ip|bob").await.unwrap().allowed());
        assert_eq!(
            limiter.peek(Limit::Login, "ip|alice").await.unwrap().used,
            3
        );
        assert_eq!(
            limiter
                .peek(Limit::Register, "ip|alice")
                .await
                .unwrap()
                .used,
            0
        );
    }
}
