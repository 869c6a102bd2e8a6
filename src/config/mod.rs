//! Typed settings: defaults, then an optional `latchkey.toml`, then `LATCHKEY_*` variables.
//!
//! Everything is validated once, at start. An invalid value stops the process with a message
//! naming the field and the problem; secret values are never echoed in those messages.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

mod protection;

pub use protection::{CounterStore, LimitRule, MetricsSettings, ProxyNet, RateLimitSettings};

/// The file read when neither `--config` nor `LATCHKEY_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "latchkey.toml";

/// Names of settings whose values are secrets: errors about them never show the value.
const SECRET_FIELDS: &[&str] = &[
    "key_encryption_key",
    "bootstrap_admin_password",
    "database_url",
    "smtp.password",
    "metrics_token",
];

/// A configuration problem, naming the field at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{field}`: {problem}")]
pub struct ConfigError {
    /// The setting's name as written in `latchkey.toml` (`LATCHKEY_<NAME>` in the environment).
    pub field: String,
    /// What is wrong with it, without the value when the value is secret.
    pub problem: String,
}

impl ConfigError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when the output is a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// SQLite's `synchronous` pragma: `full` makes every acknowledged commit survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// fsync on every commit (the default: an acknowledged write survives a crash).
    Full,
    /// fsync at WAL checkpoints only: faster, but a power loss may drop the latest commits.
    Normal,
}

impl SqliteSynchronous {
    /// The pragma's value.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a local relay).
    None,
    /// Upgrade with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// `[smtp]` as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSmtp {
    host: Option<String>,
    port: Option<u16>,
    tls: SmtpTls,
    username: Option<String>,
    password: Option<String>,
    from: String,
    timeout_secs: u64,
}

impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            from: "Latchkey <no-reply@localhost>".into(),
            timeout_secs: 10,
        }
    }
}

/// Outgoing mail: SMTP when a host is configured, else files in a directory.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The SMTP relay, when configured.
    pub smtp: Option<SmtpSettings>,
    /// Where mail goes without SMTP (one `.eml` file per message).
    pub directory: PathBuf,
    /// The `From` mailbox (`Name <address>`).
    pub from: String,
}

/// An SMTP relay.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub timeout: std::time::Duration,
}

/// Account rules: lockout, password policy, token lifetimes.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// Failed passwords for one login from one address (or wrong second-factor codes of one
    /// account) that lock that address out of that login (or the account's second factor)…
    pub lockout_threshold: u32,
    /// …within this many seconds…
    pub lockout_window_secs: u64,
    /// …for this many seconds.
    pub lockout_duration_secs: u64,
    /// Failed passwords for one login from all addresses within the window after which a
    /// password alone no longer signs in from an address the account has not signed in from
    /// (a second factor still does): the answer to a spray from many addresses.
    pub lockout_spray_threshold: u32,
    /// Minimum zxcvbn score (0–4) of a new password; 0 turns the check off.
    pub password_min_strength: u8,
    /// Lifetime of password reset links.
    pub reset_token_ttl_secs: u64,
    /// Lifetime of email verification links.
    pub verification_token_ttl_secs: u64,
    /// Lifetime of the set-a-password link in the welcome mail of an account an
    /// administrator created without a password.
    pub welcome_token_ttl_secs: u64,
    /// Refresh token lifetime of an API login with `remember_me`.
    pub remember_me_refresh_ttl_secs: u64,
    /// The issuer name shown in authenticator apps.
    pub totp_issuer: String,
}

/// Delivery of outbox messages.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// How often each instance looks for due messages.
    pub poll_interval: std::time::Duration,
    /// First retry delay; each failure doubles it.
    pub backoff_base_secs: u64,
    /// Longest delay between two attempts.
    pub backoff_max_secs: u64,
    /// Attempts after which a message is marked failed.
    pub max_attempts: u32,
}

/// The settings as they are written in the file and the environment, before validation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    issuer: String,
    bind: String,
    database_url: String,
    pool_size: u32,
    database_timeout_secs: u64,
    sqlite_synchronous: SqliteSynchronous,
    workers: usize,
    max_body_bytes: usize,
    access_token_ttl_secs: u64,
    refresh_token_ttl_secs: u64,
    refresh_token_absolute_ttl_secs: u64,
    code_ttl_secs: u64,
    id_token_ttl_secs: u64,
    session_ttl_secs: u64,
    refresh_reuse_grace_secs: u64,
    access_token_signing_alg: String,
    key_rotation_period_secs: u64,
    key_refresh_interval_secs: u64,
    log_format: LogFormat,
    log_level: String,
    key_encryption_key: Option<String>,
    bootstrap_admin_password: Option<String>,
    bootstrap_admin_email: String,
    smtp: RawSmtp,
    mail_dir: Option<String>,
    lockout_threshold: u32,
    lockout_window_secs: u64,
    lockout_duration_secs: u64,
    lockout_spray_threshold: u32,
    password_min_strength: u8,
    reset_token_ttl_secs: u64,
    verification_token_ttl_secs: u64,
    welcome_token_ttl_secs: u64,
    remember_me_refresh_ttl_secs: u64,
    totp_issuer: String,
    outbox_poll_interval_ms: u64,
    outbox_backoff_base_secs: u64,
    outbox_backoff_max_secs: u64,
    outbox_max_attempts: u32,
    rate_limits: RateLimitSettings,
    trusted_proxies: Vec<String>,
    metrics_bind: Option<String>,
    metrics_token: Option<String>,
    outbound: OutboundSettings,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            bind: "127.0.0.1:8080".into(),
            database_url: "latchkey.db".into(),
            pool_size: 10,
            database_timeout_secs: 5,
            sqlite_synchronous: SqliteSynchronous::Full,
            workers: 0,
            max_body_bytes: 256 * 1024,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 604_800,
            refresh_token_absolute_ttl_secs: 2_592_000,
            code_ttl_secs: 60,
            id_token_ttl_secs: 3600,
            session_ttl_secs: 604_800,
            refresh_reuse_grace_secs: 10,
            access_token_signing_alg: "ES256".into(),
            key_rotation_period_secs: 90 * 24 * 3600,
            key_refresh_interval_secs: 5,
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            key_encryption_key: None,
            bootstrap_admin_password: None,
            bootstrap_admin_email: "admin@localhost".into(),
            smtp: RawSmtp::default(),
            mail_dir: None,
            lockout_threshold: 5,
            lockout_window_secs: 900,
            lockout_duration_secs: 900,
            lockout_spray_threshold: 50,
            password_min_strength: 3,
            reset_token_ttl_secs: 3600,
            verification_token_ttl_secs: 86_400,
            welcome_token_ttl_secs: 259_200,
            remember_me_refresh_ttl_secs: 2_592_000,
            totp_issuer: "Latchkey".into(),
            outbox_poll_interval_ms: 1000,
            outbox_backoff_base_secs: 5,
            outbox_backoff_max_secs: 3600,
            outbox_max_attempts: 20,
            rate_limits: RateLimitSettings::default(),
            trusted_proxies: Vec::new(),
            metrics_bind: None,
            metrics_token: None,
            outbound: OutboundSettings::default(),
        }
    }
}

/// Where the data lives, parsed from `database_url`.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// An SQLite file, created on first start.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (may hold a password: never print it whole).
    Postgres(SecretString),
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sqlite(a), Self::Sqlite(b)) => a == b,
            (Self::Postgres(a), Self::Postgres(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl DatabaseUrl {
    /// Reads `postgres://…`/`postgresql://…` as PostgreSQL; `sqlite://path`, `sqlite:path` or a
    /// bare path as an SQLite file.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let field = "database_url";
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::new(field, "must not be empty"));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| {
                ConfigError::new(field, format!("not a valid PostgreSQL URL ({e})"))
            })?;
            return Ok(Self::Postgres(SecretString::from(raw.to_owned())));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .unwrap_or(raw);
        if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
            return Err(ConfigError::new(
                field,
                "an in-memory SQLite database cannot be shared by the connection pool; give a file path",
            ));
        }
        if raw.contains("://") && !raw.starts_with("sqlite://") {
            return Err(ConfigError::new(
                field,
                "unsupported scheme: use a file path, sqlite://PATH or postgres://…",
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// The URL with any password masked, for logs and health output.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => match Url::parse(url.expose_secret()) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    url.to_string()
                }
                Err(_) => "postgres://***".into(),
            },
        }
    }

    /// The backend's short name.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The validated settings every part of the server reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier: the base of every published URL (no trailing slash).
    pub issuer: String,
    /// Address the HTTP server listens on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The database.
    pub database_url: DatabaseUrl,
    /// Maximum connections in the pool.
    pub pool_size: u32,
    /// How long a request waits for a database connection before answering 503.
    pub database_timeout: std::time::Duration,
    /// SQLite durability level.
    pub sqlite_synchronous: SqliteSynchronous,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest accepted request body in bytes (413 beyond it).
    pub max_body_bytes: usize,
    /// Token and code lifetimes.
    pub lifetimes: Lifetimes,
    /// The algorithm access tokens are signed with (ES256 by default).
    pub access_token_signing_alg: crate::domain::SigningAlg,
    /// How long a rotated refresh token may be presented again (a concurrent retry) and get
    /// the same successor instead of revoking its family.
    pub refresh_reuse_grace_secs: u64,
    /// How long a signing key signs before it is replaced.
    pub key_rotation_period_secs: u64,
    /// How often each instance checks the database for key changes.
    pub key_refresh_interval: std::time::Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// `tracing` filter directive (e.g. `info`, `latchkey=debug`).
    pub log_level: String,
    /// The key that encrypts private signing keys at rest (32 bytes, base64).
    pub key_encryption_key: Option<SecretString>,
    /// Password of the bootstrap `admin` account; generated and printed once when absent.
    pub bootstrap_admin_password: Option<SecretString>,
    /// Email address of the bootstrap `admin` account.
    pub bootstrap_admin_email: String,
    /// Outgoing mail.
    pub mail: MailSettings,
    /// Account rules.
    pub accounts: AccountSettings,
    /// Outbox delivery.
    pub outbox: OutboxSettings,
    /// Rate limits.
    pub rate_limits: RateLimitSettings,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ProxyNet>,
    /// Access to `/metrics`.
    pub metrics: MetricsSettings,
    /// Where outbound requests (webhooks, client keys, back-channel logout) may go.
    pub outbound: OutboundSettings,
}

/// Where outbound requests may go (`[outbound]`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Whether webhook URLs, client `jwks_uri`s and back-channel logout URIs may name
    /// loopback, link-local or private addresses (on-premise receivers, tests). Off by
    /// default: such targets are refused at registration and on every address a name
    /// resolves to when a request connects.
    pub allow_private_networks: bool,
}

/// Lifetimes of the things Latchkey issues, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access tokens (RFC 9068 JWTs).
    pub access_token: u64,
    /// Refresh tokens, from their issue (each rotation starts a new period).
    pub refresh_token: u64,
    /// The whole family of refresh tokens of one grant, from the grant.
    pub refresh_family: u64,
    /// Authorization codes.
    pub code: u64,
    /// ID tokens.
    pub id_token: u64,
    /// Browser sessions (single sign-on).
    pub session: u64,
}

impl Lifetimes {
    /// The longest time a signed token stays valid: how long a retired key stays published.
    pub fn longest_signed_token(&self) -> u64 {
        self.access_token.max(self.id_token)
    }
}

impl Settings {
    /// Loads the settings from the named file (or `latchkey.toml` when present) and the
    /// environment, and validates them.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        match config_file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::new(
                        "config",
                        format!("configuration file {} does not exist", path.display()),
                    ));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        figment = figment.merge(
            Env::prefixed("LATCHKEY_")
                .ignore(&["config", "test_database_url"])
                .split("__"),
        );
        Self::from_figment(figment)
    }

    /// The defaults, validated: the starting point of tests that then change a few fields.
    pub fn defaults() -> Self {
        Self::from_figment(Figment::from(Serialized::defaults(RawSettings::default())))
            .expect("the built-in defaults are valid")
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = figment.extract().map_err(describe_figment_error)?;
        raw.validate()
    }

    /// The issuer as a parsed URL.
    pub fn issuer_url(&self) -> Url {
        Url::parse(&self.issuer).expect("the issuer was validated at load")
    }

    /// Whether the issuer is served over https (then cookies are `Secure` and HSTS is sent).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// An absolute URL under the issuer for one of the paths of [`crate::paths`].
    pub fn url_for(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.issuer.len() + path.len());
        url.push_str(&self.issuer);
        url.push_str(path);
        url
    }
}

impl RawSettings {
    fn validate(self) -> Result<Settings, ConfigError> {
        let issuer = parse_issuer(&self.issuer)?;
        let bind = SocketAddr::from_str(self.bind.trim()).map_err(|_| {
            ConfigError::new(
                "bind",
                format!("`{}` is not an address like 127.0.0.1:8080", self.bind),
            )
        })?;
        let database_url = DatabaseUrl::parse(&self.database_url)?;
        let mail = self.mail_settings(&database_url)?;
        positive("pool_size", self.pool_size as u64)?;
        positive("database_timeout_secs", self.database_timeout_secs)?;
        positive("access_token_ttl_secs", self.access_token_ttl_secs)?;
        positive("refresh_token_ttl_secs", self.refresh_token_ttl_secs)?;
        if self.refresh_token_absolute_ttl_secs < self.refresh_token_ttl_secs {
            return Err(ConfigError::new(
                "refresh_token_absolute_ttl_secs",
                "must be at least refresh_token_ttl_secs",
            ));
        }
        positive("code_ttl_secs", self.code_ttl_secs)?;
        positive("id_token_ttl_secs", self.id_token_ttl_secs)?;
        positive("session_ttl_secs", self.session_ttl_secs)?;
        if self.refresh_reuse_grace_secs > 60 {
            return Err(ConfigError::new(
                "refresh_reuse_grace_secs",
                "must be at most 60 seconds: a longer window weakens refresh-token reuse detection",
            ));
        }
        let access_token_signing_alg =
            self.access_token_signing_alg
                .parse()
                .map_err(|e: crate::domain::Invalid| {
                    ConfigError::new("access_token_signing_alg", e.0)
                })?;
        positive("key_refresh_interval_secs", self.key_refresh_interval_secs)?;
        if self.code_ttl_secs > 600 {
            return Err(ConfigError::new(
                "code_ttl_secs",
                "authorization codes must be short-lived: at most 600 seconds (RFC 6749 §4.1.2)",
            ));
        }
        if self.key_rotation_period_secs < 3600 {
            return Err(ConfigError::new(
                "key_rotation_period_secs",
                "must be at least 3600 seconds, so a new key is published well before it signs",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::new("max_body_bytes", "must be at least 1024"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| {
            ConfigError::new("log_level", format!("not a valid filter directive ({e})"))
        })?;
        let key_encryption_key = match self.key_encryption_key {
            Some(kek) => {
                crate::crypto::KeyEncryptionKey::decode(&kek)
                    .map_err(|problem| ConfigError::new("key_encryption_key", problem))?;
                Some(SecretString::from(kek))
            }
            None => None,
        };
        if let Some(password) = &self.bootstrap_admin_password
            && password.chars().count() < 8
        {
            return Err(ConfigError::new(
                "bootstrap_admin_password",
                "must be at least 8 characters",
            ));
        }
        if !(0..=4).contains(&self.password_min_strength) {
            return Err(ConfigError::new(
                "password_min_strength",
                "must be between 0 and 4",
            ));
        }
        positive("lockout_threshold", self.lockout_threshold as u64)?;
        positive("lockout_window_secs", self.lockout_window_secs)?;
        positive("lockout_duration_secs", self.lockout_duration_secs)?;
        if self.lockout_spray_threshold < self.lockout_threshold {
            return Err(ConfigError::new(
                "lockout_spray_threshold",
                "must be at least lockout_threshold",
            ));
        }
        positive("reset_token_ttl_secs", self.reset_token_ttl_secs)?;
        positive("welcome_token_ttl_secs", self.welcome_token_ttl_secs)?;
        positive(
            "verification_token_ttl_secs",
            self.verification_token_ttl_secs,
        )?;
        positive(
            "remember_me_refresh_ttl_secs",
            self.remember_me_refresh_ttl_secs,
        )?;
        positive("outbox_poll_interval_ms", self.outbox_poll_interval_ms)?;
        positive("outbox_backoff_base_secs", self.outbox_backoff_base_secs)?;
        positive("outbox_max_attempts", self.outbox_max_attempts as u64)?;
        if self.outbox_backoff_max_secs < self.outbox_backoff_base_secs {
            return Err(ConfigError::new(
                "outbox_backoff_max_secs",
                "must be at least outbox_backoff_base_secs",
            ));
        }
        self.rate_limits.validate()?;
        let trusted_proxies = protection::parse_proxies(&self.trusted_proxies)?;
        let metrics_bind = self
            .metrics_bind
            .as_deref()
            .map(|raw| {
                SocketAddr::from_str(raw.trim()).map_err(|_| {
                    ConfigError::new(
                        "metrics_bind",
                        format!("`{raw}` is not an address like 127.0.0.1:9100"),
                    )
                })
            })
            .transpose()?;
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::new(
                "metrics_token",
                "must be at least 16 characters",
            ));
        }
        if crate::domain::Email::parse(&self.bootstrap_admin_email).is_err() {
            return Err(ConfigError::new(
                "bootstrap_admin_email",
                "is not an email address",
            ));
        }
        Ok(Settings {
            issuer,
            bind,
            database_url,
            pool_size: self.pool_size,
            database_timeout: std::time::Duration::from_secs(self.database_timeout_secs),
            sqlite_synchronous: self.sqlite_synchronous,
            workers: self.workers,
            max_body_bytes: self.max_body_bytes,
            lifetimes: Lifetimes {
                access_token: self.access_token_ttl_secs,
                refresh_token: self.refresh_token_ttl_secs,
                refresh_family: self.refresh_token_absolute_ttl_secs,
                code: self.code_ttl_secs,
                id_token: self.id_token_ttl_secs,
                session: self.session_ttl_secs,
            },
            access_token_signing_alg,
            refresh_reuse_grace_secs: self.refresh_reuse_grace_secs,
            key_rotation_period_secs: self.key_rotation_period_secs,
            key_refresh_interval: std::time::Duration::from_secs(self.key_refresh_interval_secs),
            log_format: self.log_format,
            log_level: self.log_level,
            key_encryption_key,
            bootstrap_admin_password: self.bootstrap_admin_password.map(SecretString::from),
            bootstrap_admin_email: self.bootstrap_admin_email,
            mail,
            accounts: AccountSettings {
                lockout_threshold: self.lockout_threshold,
                lockout_window_secs: self.lockout_window_secs,
                lockout_duration_secs: self.lockout_duration_secs,
                lockout_spray_threshold: self.lockout_spray_threshold,
                password_min_strength: self.password_min_strength,
                reset_token_ttl_secs: self.reset_token_ttl_secs,
                verification_token_ttl_secs: self.verification_token_ttl_secs,
                welcome_token_ttl_secs: self.welcome_token_ttl_secs,
                remember_me_refresh_ttl_secs: self.remember_me_refresh_ttl_secs,
                totp_issuer: self.totp_issuer,
            },
            outbox: OutboxSettings {
                poll_interval: std::time::Duration::from_millis(self.outbox_poll_interval_ms),
                backoff_base_secs: self.outbox_backoff_base_secs,
                backoff_max_secs: self.outbox_backoff_max_secs,
                max_attempts: self.outbox_max_attempts,
            },
            rate_limits: self.rate_limits,
            trusted_proxies,
            metrics: MetricsSettings {
                bind: metrics_bind,
                token: self.metrics_token.map(SecretString::from),
            },
            outbound: self.outbound,
        })
    }

    /// Mail: SMTP when `smtp.host` is set; otherwise a directory (default: `mail` beside the
    /// SQLite database, or in the working directory).
    fn mail_settings(&self, database_url: &DatabaseUrl) -> Result<MailSettings, ConfigError> {
        if lettre::message::Mailbox::from_str(&self.smtp.from).is_err() {
            return Err(ConfigError::new(
                "smtp.from",
                "must be a mailbox such as `Latchkey <no-reply@example.com>`",
            ));
        }
        let directory = match (&self.mail_dir, database_url) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, DatabaseUrl::Sqlite(db)) => db
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| p.join("mail"))
                .unwrap_or_else(|| PathBuf::from("mail")),
            (None, DatabaseUrl::Postgres(_)) => PathBuf::from("mail"),
        };
        let smtp = match &self.smtp.host {
            None => None,
            Some(host) if host.trim().is_empty() => None,
            Some(host) => {
                positive("smtp.timeout_secs", self.smtp.timeout_secs)?;
                if self.smtp.username.is_some() != self.smtp.password.is_some() {
                    return Err(ConfigError::new(
                        "smtp.username",
                        "give both smtp.username and smtp.password, or neither",
                    ));
                }
                Some(SmtpSettings {
                    host: host.trim().to_owned(),
                    port: self.smtp.port.unwrap_or(match self.smtp.tls {
                        SmtpTls::None => 25,
                        SmtpTls::Starttls => 587,
                        SmtpTls::Tls => 465,
                    }),
                    tls: self.smtp.tls,
                    username: self.smtp.username.clone(),
                    password: self.smtp.password.clone().map(SecretString::from),
                    timeout: std::time::Duration::from_secs(self.smtp.timeout_secs),
                })
            }
        };
        Ok(MailSettings {
            smtp,
            directory,
            from: self.smtp.from.clone(),
        })
    }
}

/// OpenID Connect Discovery §3: the issuer is a URL with a scheme and host, and no query or
/// fragment. A trailing slash is dropped so that `issuer + path` never doubles it.
fn parse_issuer(raw: &str) -> Result<String, ConfigError> {
    let field = "issuer";
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError::new(field, format!("`{raw}` is not a URL ({e})")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ConfigError::new(
            field,
            "must use https (or http for local use)",
        ));
    }
    if url.host_str().is_none() {
        return Err(ConfigError::new(field, "must have a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            field,
            "must not have a query or a fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(field, "must not contain user information"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn positive(field: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::new(field, "must be greater than 0"))
    } else {
        Ok(())
    }
}

/// Turns figment's error into one naming the field; the value is left out for secrets.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    let field = if error.path.is_empty() {
        "config".to_owned()
    } else {
        error.path.join(".")
    };
    let secret = SECRET_FIELDS
        .iter()
        .any(|name| field.eq_ignore_ascii_case(name));
    let problem = match &error.kind {
        figment::error::Kind::UnknownField(name, _) => {
            return ConfigError::new(name, "unknown setting (check its spelling)");
        }
        figment::error::Kind::InvalidType(_, expected) if secret => {
            format!("invalid value: expected {expected}")
        }
        _ if secret => "invalid value".to_owned(),
        kind => kind.to_string(),
    };
    let source = error
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    ConfigError::new(&field, format!("{problem}{source}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_issue() {
        let s = Settings::defaults();
        assert_eq!(s.issuer, "http://127.0.0.1:8080");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, DatabaseUrl::Sqlite("latchkey.db".into()));
        assert_eq!(s.lifetimes.access_token, 900);
        assert_eq!(s.lifetimes.refresh_token, 604_800);
        assert_eq!(s.lifetimes.code, 60);
        assert_eq!(s.lifetimes.id_token, 3600);
    }

    #[test]
    fn issuer_with_query_is_refused_naming_the_field() {
        let err = parse_issuer("https://id.example.com/?x=1").unwrap_err();
        assert_eq!(err.field, "issuer");
        assert!(err.problem.contains("query"));
    }

    #[test]
    fn issuer_trailing_slash_is_dropped() {
        assert_eq!(
            parse_issuer("https://id.example.com/tenant/").unwrap(),
            "https://id.example.com/tenant"
        );
    }

    #[test]
    fn postgres_password_is_masked() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db:5432/latchkey").unwrap();
        let shown = format!("{url:?} {}", url.redacted());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn memory_sqlite_is_refused() {
        assert!(DatabaseUrl::parse(":memory:").is_err());
        assert!(DatabaseUrl::parse("sqlite://:memory:").is_err());
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/latchkey.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/latchkey.db".into())
        );
    }
}
