//! The harness configuration (`--config <file>`).

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// The JSON configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer; discovery is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Accept `http://` where the suite insists on https (local runs only).
    #[serde(default)]
    pub allow_http: bool,
    /// The redirect URI registered for every client (it never has to exist).
    pub redirect_uri: String,
    /// The post-logout redirect URI registered for `client`, `client_backchannel` and
    /// `client_frontchannel` (it never has to exist); the logout plans are skipped without it.
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
    /// The test user.
    pub user: User,
    /// The main client (client_secret_basic).
    pub client: ClientConfig,
    /// A second client (client_secret_basic), for `oidcc-refresh-token`.
    pub client2: ClientConfig,
    /// A client registered for client_secret_post.
    pub client_post: ClientConfig,
    /// A client (client_secret_basic) registered with `backchannel_logout_uri`, for the
    /// Back-Channel Logout plan; skipped without it.
    #[serde(default)]
    pub client_backchannel: Option<ClientConfig>,
    /// Where the harness listens for the OP's back-channel logout requests
    /// (`127.0.0.1:<port>`).
    #[serde(default)]
    pub backchannel_listen: Option<String>,
    /// The `backchannel_logout_uri` registered for `client_backchannel` (default:
    /// `http://<backchannel_listen>/backchannel_logout`); its path is the one the listener serves.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Seconds `oidcc-backchannel-rp-initiated-logout` waits for the back-channel request
    /// (default 10).
    #[serde(default)]
    pub backchannel_wait_secs: Option<u64>,
    /// A client (client_secret_basic) registered with `frontchannel_logout_uri`, for the
    /// Front-Channel Logout plan; skipped without it.
    #[serde(default)]
    pub client_frontchannel: Option<ClientConfig>,
    /// The `frontchannel_logout_uri` registered for `client_frontchannel` (it never has to
    /// exist: the harness reads the OP's iframes instead of loading them).
    #[serde(default)]
    pub frontchannel_logout_uri: Option<String>,
    /// A command (program and arguments) that rotates the OP's signing keys, for
    /// `oidcc-server-rotate-keys`; the module is skipped without it.
    #[serde(default)]
    pub rotate_keys_command: Option<Vec<String>>,
    /// `ui_locales` sent by `oidcc-ui-locales` (the suite's default is `se`).
    #[serde(default)]
    pub ui_locales: Option<String>,
    /// `claims_locales` sent by `oidcc-claims-locales` (default `se`).
    #[serde(default)]
    pub claims_locales: Option<String>,
    /// `acr_values` sent by `oidcc-ensure-request-with-acr-values-succeeds` (default: every
    /// value of discovery's `acr_values_supported`, else `1 2`).
    #[serde(default)]
    pub acr_values: Option<String>,
    /// Seconds `oidcc-codereuse-30seconds` waits (the suite waits 30).
    #[serde(default)]
    pub codereuse_wait_secs: Option<u64>,
}

/// The person who logs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    pub password: String,
    /// Sent as `login_hint` by `oidcc-login-hint` (default: the username).
    #[serde(default)]
    pub login_hint: Option<String>,
}

/// A statically registered client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: String,
}

impl Config {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: Config = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))?;
        url::Url::parse(&config.issuer).context("`issuer` is not a URL")?;
        url::Url::parse(&config.redirect_uri).context("`redirect_uri` is not a URL")?;
        if let Some(uri) = &config.post_logout_redirect_uri {
            url::Url::parse(uri).context("`post_logout_redirect_uri` is not a URL")?;
        }
        if let Some(uri) = &config.frontchannel_logout_uri {
            url::Url::parse(uri).context("`frontchannel_logout_uri` is not a URL")?;
        }
        if let Some(listen) = &config.backchannel_listen {
            listen
                .parse::<std::net::SocketAddr>()
                .context("`backchannel_listen` is not an address and port")?;
        }
        if config.backchannel_logout_uri.is_some() && config.backchannel_listen.is_none() {
            anyhow::bail!("`backchannel_logout_uri` needs `backchannel_listen`");
        }
        if let Some(uri) = &config.backchannel_logout_uri {
            url::Url::parse(uri).context("`backchannel_logout_uri` is not a URL")?;
        }
        if let Some(cmd) = &config.rotate_keys_command {
            anyhow::ensure!(!cmd.is_empty(), "`rotate_keys_command` is empty");
        }
        Ok(config)
    }

    /// The back-channel logout URI registered for `client_backchannel`.
    pub fn backchannel_logout_uri(&self) -> Option<String> {
        match (&self.backchannel_logout_uri, &self.backchannel_listen) {
            (Some(uri), _) => Some(uri.clone()),
            (None, Some(listen)) => Some(format!("http://{listen}/backchannel_logout")),
            (None, None) => None,
        }
    }

    /// The discovery URL.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}
