//! The client for outbound requests (client `jwks_uri` documents, webhooks, back-channel
//! logout notices): short timeouts, no redirects, built by its first use.
//!
//! Building it loads the system's trusted certificates, about 1 MiB of heap for the ~150 roots
//! of a Debian bundle: an instance that never calls out should not hold them.

use std::sync::OnceLock;
use std::time::Duration;

/// The outbound HTTP client, made on first use and shared after.
#[derive(Default)]
pub struct OutboundHttp(OnceLock<reqwest::Client>);

impl OutboundHttp {
    /// The client; fails only if the TLS backend cannot be set up.
    pub fn client(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.0.get() {
            return Ok(client);
        }
        let client = build()?;
        Ok(self.0.get_or_init(|| client))
    }
}

/// No redirects: a redirect could point a fetch somewhere the registration did not name.
fn build() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
