//! OAuth client metadata values.

use std::fmt;
use std::str::FromStr;

use super::Invalid;

/// A client identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// A new random identifier: 128 bits, base64url.
    pub fn generate() -> Self {
        use base64::Engine;
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// An identifier as presented (RFC 6749 Appendix A.1: visible ASCII), at most 255 chars.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
            return Err(Invalid::new("is not a valid client_id"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Invalid::new(format!(
                        "`{other}` is not one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// How a client authenticates at the token endpoint (RFC 7591 §2).
    AuthMethod {
        /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
        ClientSecretBasic => "client_secret_basic",
        /// The id and secret in the form body.
        ClientSecretPost => "client_secret_post",
        /// A JWT signed with the client's own key (RFC 7523).
        PrivateKeyJwt => "private_key_jwt",
        /// A public client: no authentication (PKCE protects its codes).
        None => "none",
    }
}

impl AuthMethod {
    /// Whether the method uses a server-issued shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

string_enum! {
    /// OAuth grant types a client may use.
    GrantType {
        /// RFC 6749 §4.1.
        AuthorizationCode => "authorization_code",
        /// RFC 6749 §4.2 and the OpenID Connect implicit flow.
        Implicit => "implicit",
        /// RFC 6749 §6.
        RefreshToken => "refresh_token",
        /// RFC 6749 §4.4.
        ClientCredentials => "client_credentials",
    }
}

string_enum! {
    /// OpenID Connect application type: decides the loopback redirect rule (RFC 8252 §7.3).
    ApplicationType {
        /// A web application with fixed redirect URIs.
        Web => "web",
        /// A native application, which may redirect to a loopback address on any port.
        Native => "native",
    }
}

string_enum! {
    /// JWS algorithms Latchkey signs with.
    SigningAlg {
        /// ECDSA P-256 with SHA-256: the default for access tokens.
        Es256 => "ES256",
        /// RSASSA-PKCS1-v1_5 with SHA-256: the OpenID default for ID tokens.
        Rs256 => "RS256",
        /// RSASSA-PSS with SHA-256.
        Ps256 => "PS256",
        /// Ed25519.
        EdDsa => "EdDSA",
    }
}

/// An OAuth / OpenID Connect `response_type`: a set of `code`, `id_token` and `token`,
/// kept in canonical order (the parameter's values are order-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseType {
    /// `code`: an authorization code.
    pub code: bool,
    /// `id_token`: an ID token in the front channel.
    pub id_token: bool,
    /// `token`: an access token in the front channel.
    pub token: bool,
}

impl ResponseType {
    /// The six combinations OpenID Connect defines, in the order discovery lists them.
    pub const SUPPORTED: [&'static str; 6] = [
        "code",
        "id_token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
    ];

    /// Parses a space-separated response type; `token` alone (the OAuth implicit grant
    /// without OpenID) is refused: it cannot carry a nonce-bound ID token.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut value = Self {
            code: false,
            id_token: false,
            token: false,
        };
        for part in raw.split(' ').filter(|p| !p.is_empty()) {
            let slot = match part {
                "code" => &mut value.code,
                "id_token" => &mut value.id_token,
                "token" => &mut value.token,
                other => return Err(Invalid::new(format!("`{other}` is not a response type"))),
            };
            if *slot {
                return Err(Invalid::new(format!("`{part}` is repeated")));
            }
            *slot = true;
        }
        if !value.code && !value.id_token {
            return Err(Invalid::new(
                "must include code or id_token (token alone is not supported)",
            ));
        }
        Ok(value)
    }

    /// Whether tokens travel in the front channel (implicit or hybrid): then a nonce is
    /// required and the default response mode is the fragment.
    pub fn is_front_channel(self) -> bool {
        self.id_token || self.token
    }

    /// The grant type that allows this response type (`implicit` for any front-channel one).
    pub fn required_grants(self) -> Vec<GrantType> {
        let mut grants = Vec::new();
        if self.code {
            grants.push(GrantType::AuthorizationCode);
        }
        if self.is_front_channel() {
            grants.push(GrantType::Implicit);
        }
        grants
    }
}

impl fmt::Display for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.code, "code"),
            (self.id_token, "id_token"),
            (self.token, "token"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&parts.join(" "))
    }
}

/// A registered redirect URI, kept exactly as registered: RFC 9700 §4.1.3 wants exact string
/// comparison, so the text is never normalised.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// An absolute URI without a fragment (RFC 6749 §3.1.2) or user information, of at most
    /// 2000 characters; script-capable schemes are refused.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.len() > 2000 {
            return Err(Invalid::new("must be at most 2000 characters"));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| Invalid::new(format!("`{raw}` is not an absolute URI ({e})")))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(Invalid::new(format!("`{raw}` must not contain a fragment")));
        }
        if matches!(
            url.scheme(),
            "javascript" | "data" | "file" | "vbscript" | "about" | "blob"
        ) {
            return Err(Invalid::new(format!("`{raw}` uses a forbidden scheme")));
        }
        if matches!(url.scheme(), "http" | "https") && url.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new(format!("`{raw}` has no host")));
        }
        // `https://rp.example@evil.example/` goes to evil.example: credentials in a redirect
        // URI only ever serve to disguise its host.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::new(format!(
                "`{raw}` must not contain user information"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a presented redirect URI matches this registered one: exact string equality,
    /// except that for native clients a loopback IP literal matches on any port
    /// (RFC 8252 §7.3; `localhost` is not given that latitude, §8.3).
    pub fn matches(&self, presented: &str, application_type: ApplicationType) -> bool {
        if self.0 == presented {
            return true;
        }
        if application_type != ApplicationType::Native {
            return false;
        }
        // Only the port may differ, and everything else is compared as text (RFC 9700 §4.1.3):
        // no case folding, no path normalisation, no other spelling of the address. The
        // presented URI must also be one a browser can follow.
        match (split_loopback(&self.0), split_loopback(presented)) {
            (Some(registered), Some(presented_parts)) => {
                registered == presented_parts && url::Url::parse(presented).is_ok()
            }
            _ => false,
        }
    }

    /// Whether the URI points at the machine that opens it: `localhost`, a `*.localhost` name
    /// (RFC 6761 §6.3) or a loopback or unspecified IP literal.
    pub fn is_this_machine(&self) -> bool {
        match url::Url::parse(&self.0)
            .ok()
            .and_then(|url| url.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            None => false,
        }
    }

    /// The origin (`scheme://host[:port]`), for CORS.
    pub fn origin(&self) -> Option<String> {
        let url = url::Url::parse(&self.0).ok()?;
        match url.origin() {
            url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
            url::Origin::Opaque(_) => None,
        }
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `http` URI whose host is a loopback IP literal, split around its port: the text up to the
/// end of the host and the text after the port. `None` for anything else (another scheme or
/// host, userinfo, a port that is not 1 to 65535 in plain digits).
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    let after_scheme = uri.strip_prefix("http://")?;
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let close = bracketed.find(']')?;
            (&authority[..close + 2], &bracketed[close + 1..])
        }
        None => match authority.find(':') {
            Some(colon) => (&authority[..colon], &authority[colon..]),
            None => (authority, ""),
        },
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if !literal
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        return None;
    }
    if let Some(digits) = port.strip_prefix(':') {
        // A port is 1 to 65535, written without leading zeros: anything else is another
        // spelling, or no port a listener could hold.
        let valid = !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return None;
        }
    } else if !port.is_empty() {
        return None;
    }
    let host_end = "http://".len() + host.len();
    Some((&uri[..host_end], &after_scheme[authority_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        assert!(RedirectUri::parse("https://app.example.com/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/oauth2redirect").is_ok());
        assert!(RedirectUri::parse("https://app.example.com/cb#x").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
        assert!(RedirectUri::parse("javascript:alert(1)").is_err());
    }

    #[test]
    fn exact_match_for_web_clients() {
        let r = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(r.matches("https://app.example.com/cb", ApplicationType::Web));
        assert!(!r.matches("https://app.example.com/cb/", ApplicationType::Web));
        assert!(!r.matches("https://APP.example.com/cb", ApplicationType::Web));
        assert!(!r.matches("https://app.example.com/cb?x=1", ApplicationType::Web));
    }

    #[test]
    fn loopback_any_port_only_for_native_ip_literals() {
        let r = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(r.matches("http://127.0.0.1:51004/callback", ApplicationType::Native));
        assert!(!r.matches("http://127.0.0.1:51004/callback", ApplicationType::Web));
        assert!(!r.matches("http://127.0.0.1:51004/other", ApplicationType::Native));
        let v6 = RedirectUri::parse("http://[::1]:8000/cb").unwrap();
        assert!(v6.matches("http://[::1]:9/cb", ApplicationType::Native));
        let named = RedirectUri::parse("http://localhost/callback").unwrap();
        assert!(!named.matches("http://localhost:51004/callback", ApplicationType::Native));
        for port in ["0", "65536", "70000", "00080", "080", "+80", ""] {
            let presented = format!("http://127.0.0.1:{port}/callback");
            assert!(
                !r.matches(&presented, ApplicationType::Native),
                "{presented}"
            );
        }
        assert!(r.matches("http://127.0.0.1:65535/callback", ApplicationType::Native));
    }

    #[test]
    fn this_machine_is_localhost_its_subdomains_and_loopback_literals() {
        for uri in [
            "https://localhost/cb",
            "https://LOCALHOST:8443/cb",
            "https://app.localhost/cb",
            "https://127.0.0.1/cb",
            "https://127.1.2.3/cb",
            "https://[::1]/cb",
            "https://0.0.0.0/cb",
            "https://[::ffff:127.0.0.1]/cb",
        ] {
            assert!(RedirectUri::parse(uri).unwrap().is_this_machine(), "{uri}");
        }
        for uri in [
            "https://rp.example/cb",
            "https://localhost.example/cb",
            "com.example.app:/cb",
        ] {
            assert!(!RedirectUri::parse(uri).unwrap().is_this_machine(), "{uri}");
        }
    }

    #[test]
    fn response_types_are_order_insensitive() {
        let rt = ResponseType::parse("token id_token code").unwrap();
        assert_eq!(rt.to_string(), "code id_token token");
        assert!(ResponseType::parse("token").is_err());
        assert!(ResponseType::parse("code code").is_err());
        assert!(ResponseType::parse("code foo").is_err());
        for s in ResponseType::SUPPORTED {
            assert_eq!(ResponseType::parse(s).unwrap().to_string(), s);
        }
    }
}
