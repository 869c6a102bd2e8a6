//! Settings of what protects Latchkey on the internet: rate limits, the proxies whose
//! `X-Forwarded-For` is believed, and who may read the metrics.

use std::net::{IpAddr, SocketAddr};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One limit: at most `limit` requests per `window_secs`, counted in fixed windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    pub limit: u32,
    pub window_secs: u64,
}

impl LimitRule {
    const fn new(limit: u32, window_secs: u64) -> Self {
        Self { limit, window_secs }
    }
}

/// Where the counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterStore {
    /// In memory on SQLite (one instance), in the database on PostgreSQL (shared by all).
    Auto,
    /// In this process's memory.
    Memory,
    /// In the database, shared by every instance.
    Database,
}

/// The rate limits of the contract (seed 004's table), each configurable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Whether limits are enforced at all.
    pub enabled: bool,
    /// Where the counters live.
    pub store: CounterStore,
    /// `POST /api/v1/auth/register`, per IP.
    pub register: LimitRule,
    /// `POST /api/v1/auth/login` and the login page, per IP and username.
    pub login: LimitRule,
    /// The same logins per IP alone, whatever login they name.
    pub login_address: LimitRule,
    /// `POST /api/v1/auth/reset-password` and the reset page, per IP.
    pub reset_password: LimitRule,
    /// `POST /api/v1/auth/forgot-password`, per IP.
    pub forgot_password: LimitRule,
    /// `POST /api/v1/auth/refresh`, per IP.
    pub refresh: LimitRule,
    /// The rest of the JSON API, per token subject (else per IP).
    pub api: LimitRule,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            store: CounterStore::Auto,
            register: LimitRule::new(100, 300),
            login: LimitRule::new(15, 300),
            login_address: LimitRule::new(100, 300),
            reset_password: LimitRule::new(10, 300),
            forgot_password: LimitRule::new(3, 3600),
            refresh: LimitRule::new(10, 60),
            api: LimitRule::new(1000, 3600),
        }
    }
}

impl RateLimitSettings {
    /// Checks every rule: a limit and a window of at least one.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (name, rule) in [
            ("register", self.register),
            ("login", self.login),
            ("login_address", self.login_address),
            ("reset_password", self.reset_password),
            ("forgot_password", self.forgot_password),
            ("refresh", self.refresh),
            ("api", self.api),
        ] {
            if rule.limit == 0 {
                return Err(ConfigError::new(
                    &format!("rate_limits.{name}.limit"),
                    "must be at least 1 (set rate_limits.enabled = false to turn limits off)",
                ));
            }
            if !(1..=86_400).contains(&rule.window_secs) {
                return Err(ConfigError::new(
                    &format!("rate_limits.{name}.window_secs"),
                    "must be 1 to 86400 seconds",
                ));
            }
        }
        Ok(())
    }
}

/// An address or a network (`10.0.0.0/8`) of trusted reverse proxies.
pub type ProxyNet = ipnet::IpNet;

/// Parses `trusted_proxies`: addresses or CIDR networks.
pub(super) fn parse_proxies(raw: &[String]) -> Result<Vec<ProxyNet>, ConfigError> {
    raw.iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<ProxyNet>()
                .or_else(|_| text.parse::<IpAddr>().map(ProxyNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "trusted_proxies",
                        format!("`{text}` is not an IP address or a CIDR network"),
                    )
                })
        })
        .collect()
}

/// Who may read `/metrics`.
#[derive(Clone, Default)]
pub struct MetricsSettings {
    /// A separate listener serving only `/metrics` (for example on a private interface).
    pub bind: Option<SocketAddr>,
    /// A bearer token that opens `/metrics` on the main listener.
    pub token: Option<SecretString>,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_addresses_or_networks() {
        let parsed =
            parse_proxies(&["10.0.0.0/8".into(), "127.0.0.1".into(), "::1".into()]).unwrap();
        assert!(parsed[0].contains(&"10.1.2.3".parse::<IpAddr>().unwrap()));
        assert!(parsed[1].contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
        assert!(parse_proxies(&["proxy.example".into()]).is_err());
    }

    #[test]
    fn zero_limits_and_windows_are_refused() {
        let mut settings = RateLimitSettings::default();
        assert!(settings.validate().is_ok());
        settings.login.limit = 0;
        assert_eq!(
            settings.validate().unwrap_err().field,
            "rate_limits.login.limit"
        );
    }
}
