//! The client for outbound requests (client `jwks_uri` documents, webhooks, back-channel
//! logout notices): short timeouts, no redirects, no proxy, built by its first use.
//!
//! Whoever registers a webhook or a client names the URL this server will call, so unless
//! `outbound.allow_private_networks` is set, no outbound request may reach this machine or a
//! private network (server-side request forgery). Two checks make that hold: the URL's host is
//! refused at registration and again before every request when it is such a name or address
//! literal, and names are resolved by a resolver that drops every non-public address, so a
//! name that points inward (or is re-pointed after registration) connects nowhere.
//!
//! Building the client loads the system's trusted certificates, about 1 MiB of heap for the
//! ~150 roots of a Debian bundle: an instance that never calls out should not hold them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Why an outbound target is refused; its text names the reason without echoing the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    /// The URL does not parse, or is not http(s) with a host.
    #[error("the URL is not an http or https URL with a host")]
    NotHttp,
    /// The host is this machine or a private network.
    #[error(
        "the host is this machine or a private network address, which outbound requests may not reach (outbound.allow_private_networks)"
    )]
    Private,
}

/// The outbound HTTP client, made on first use and shared after.
#[derive(Default)]
pub struct OutboundHttp {
    client: OnceLock<reqwest::Client>,
    allow_private_networks: bool,
}

impl OutboundHttp {
    /// A client that may reach private networks only if `allow_private_networks`.
    pub fn new(allow_private_networks: bool) -> Self {
        Self {
            client: OnceLock::new(),
            allow_private_networks,
        }
    }

    /// The client for a request to `url`, once the URL's host passes [`check_target`]; fails
    /// if it does not, or if the TLS backend cannot be set up.
    pub fn client_for(&self, url: &str) -> anyhow::Result<&reqwest::Client> {
        check_target(url, self.allow_private_networks)?;
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = build(self.allow_private_networks)?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// Whether outbound requests may go to `url`: http(s) with a host that, unless private
/// networks are allowed, is neither a local name (`localhost`, `*.localhost`, `.local`,
/// `.internal`, `.home.arpa`, `.localdomain`) nor a non-public address literal (in any of its
/// spellings, `http://2130706433/` included: the URL parser reads them all as addresses).
pub fn check_target(url: &str, allow_private_networks: bool) -> Result<(), TargetRefused> {
    let parsed = url::Url::parse(url).map_err(|_| TargetRefused::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetRefused::NotHttp);
    }
    let host = parsed.host().ok_or(TargetRefused::NotHttp)?;
    if allow_private_networks {
        return Ok(());
    }
    let public = match host {
        url::Host::Ipv4(ip) => is_public(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_public(IpAddr::V6(ip)),
        url::Host::Domain(name) => !is_local_name(name),
    };
    if public {
        Ok(())
    } else {
        Err(TargetRefused::Private)
    }
}

/// Names that resolve to this machine or a local network by convention (RFC 6761, 6762, 8375).
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [
            ".localhost",
            ".local",
            ".internal",
            ".home.arpa",
            ".localdomain",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Whether an address is on the public internet: not loopback, private, shared, link-local,
/// unspecified, broadcast, multicast, documentation, benchmarking or reserved; an IPv6 address
/// that carries an IPv4 one (mapped, NAT64) is judged by it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // 64:ff9b::/96, the NAT64 prefix, carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || segments[0] == 0x2001 && segments[1] == 0xdb8)
}

/// A resolver that keeps only public addresses: a name that resolves only inward fails with
/// [`ResolvedOnlyPrivate`], which [`describe`] recognises.
struct PublicOnly;

/// The error of a name that resolves to no public address.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves only to private addresses")]
pub struct ResolvedOnlyPrivate;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(ResolvedOnlyPrivate) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A short, URL-free description of a failed outbound request, naming a refused private
/// target as such.
pub fn describe(error: &reqwest::Error, peer: &str) -> String {
    use std::error::Error as _;
    let private = std::iter::successors(error.source(), |e| (*e).source())
        .any(|e| e.downcast_ref::<ResolvedOnlyPrivate>().is_some());
    if private {
        format!(
            "the {peer}'s host resolves only to private addresses, which outbound requests may not reach"
        )
    } else if error.is_timeout() {
        format!("the {peer} did not answer in time")
    } else if error.is_connect() {
        format!("the {peer} could not be reached")
    } else {
        format!("the request to the {peer} failed")
    }
}

/// No redirects: a redirect could point a fetch somewhere the registration did not name. No
/// proxy from the environment: it would decide where requests go instead of the checks above.
fn build(allow_private_networks: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")));
    if !allow_private_networks {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_local_target_is_refused() {
        for url in [
            "http://127.0.0.1/x",
            "http://127.1.2.3:8080/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://[64:ff9b::a00:1]/x",
            "http://[fd00::1]/x",
            "http://[fe80::1]/x",
            "http://10.1.2.3/x",
            "http://172.16.0.1/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
            "http://localhost/x",
            "http://LocalHost./x",
            "http://app.localhost/x",
            "http://printer.local/x",
            "http://db.internal/x",
            "http://nas.home.arpa/x",
        ] {
            assert_eq!(
                check_target(url, false),
                Err(TargetRefused::Private),
                "{url}"
            );
            assert_eq!(check_target(url, true), Ok(()), "{url}");
        }
    }

    #[test]
    fn public_targets_pass_and_other_schemes_do_not() {
        for url in [
            "https://hooks.example.com/x",
            "http://93.184.216.34/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert_eq!(check_target(url, false), Ok(()), "{url}");
        }
        for url in ["ftp://example.com/x", "file:///etc/passwd", "not a url"] {
            assert_eq!(
                check_target(url, true),
                Err(TargetRefused::NotHttp),
                "{url}"
            );
        }
    }
}
