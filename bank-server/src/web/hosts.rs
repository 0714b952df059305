//! Which `Host` the bank answers to and which browser `Origin` may open a WebSocket: the
//! listening address, `localhost`, the `--public-url`'s host and the allow-listed origins, so
//! a page on a DNS-rebound name (`evil.example` resolving to the bank) gets nothing.

use core::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap, Uri};

/// The bank's URL as browsers reach it (`--public-url`), say behind a reverse proxy:
/// its host and port are allowed as `Host` and as `Origin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    secure: bool,
    host: String,
    port: u16,
    /// The URL as given, without a trailing `/`.
    text: String,
}

/// Why a `--public-url` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicUrlError {
    /// Not `http://` or `https://`.
    Scheme,
    /// No host, or one with user info or characters a host cannot have.
    Host,
    /// A port that is not a number from 1 to 65535.
    Port,
}

impl fmt::Display for PublicUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "the public URL must start with http:// or https://",
            Self::Host => "the public URL has no valid host",
            Self::Port => "the public URL's port must be a number from 1 to 65535",
        })
    }
}

impl std::error::Error for PublicUrlError {}

impl PublicUrl {
    /// Parses `http[s]://host[:port][/path]`.
    pub fn parse(text: &str) -> Result<Self, PublicUrlError> {
        let trimmed = text.trim_end_matches('/');
        let (secure, rest) = if let Some(rest) = strip_prefix_ci(trimmed, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(trimmed, "http://") {
            (false, rest)
        } else {
            return Err(PublicUrlError::Scheme);
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(PublicUrlError::Host);
        }
        let Authority { host, port } = Authority::parse(authority).ok_or(PublicUrlError::Host)?;
        let port = match port {
            Port::Given(0) | Port::Invalid => return Err(PublicUrlError::Port),
            Port::Given(p) => p,
            Port::Absent => default_port(secure),
        };
        Ok(Self {
            secure,
            host,
            port,
            text: trimmed.to_owned(),
        })
    }

    /// The URL as given (no trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it is `https://`.
    pub fn is_https(&self) -> bool {
        self.secure
    }

    fn matches(&self, authority: &Authority, default: u16) -> bool {
        authority.host == self.host
            && match authority.port {
                Port::Given(p) => p == self.port,
                Port::Absent => default == self.port || self.port == default_port(self.secure),
                Port::Invalid => false,
            }
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn default_port(secure: bool) -> u16 {
    if secure {
        443
    } else {
        80
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    Absent,
    Given(u16),
    Invalid,
}

/// A `host[:port]`, the host lowercased (an IPv6 literal without its brackets).
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Port,
}

impl Authority {
    fn parse(text: &str) -> Option<Self> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':')?)),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
        if host.is_empty() || !host.chars().all(valid) {
            return None;
        }
        let port = match port {
            None => Port::Absent,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_or(Port::Invalid, Port::Given)
            }
            Some(_) => Port::Invalid,
        };
        Some(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// The hosts the bank answers to (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct AllowedHosts {
    local: SocketAddr,
    tls: bool,
    public: Option<PublicUrl>,
    /// `--allow-origin` entries, as given (`*` among them allows any origin).
    origins: Vec<String>,
}

impl AllowedHosts {
    pub(crate) fn new(
        local: SocketAddr,
        tls: bool,
        public: Option<PublicUrl>,
        origins: Vec<String>,
    ) -> Self {
        Self {
            local,
            tls,
            public,
            origins,
        }
    }

    /// Whether the bank serves over TLS (its own scheme is `https`/`wss`).
    pub(crate) fn tls(&self) -> bool {
        self.tls
    }

    fn allows(&self, authority: &Authority, default: u16) -> bool {
        let port = match authority.port {
            Port::Given(p) => p,
            Port::Absent => default,
            Port::Invalid => return false,
        };
        let local = port == self.local.port()
            && (authority.host == "localhost"
                || authority
                    .host
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| self.local.ip().is_unspecified() || ip == self.local.ip()));
        let public = self
            .public
            .as_ref()
            .is_some_and(|p| p.matches(authority, default));
        let listed = self
            .origins
            .iter()
            .filter_map(|o| PublicUrl::parse(o).ok())
            .any(|o| o.matches(authority, default));
        local || public || listed
    }

    /// The request's authority (from the URI in HTTP/2, else `Host`) when the bank answers to
    /// it; `None` when it is missing, malformed or some other name.
    pub(crate) fn host<'a>(&self, uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
        let text = match uri.authority() {
            Some(a) => a.as_str(),
            None => headers.get(header::HOST)?.to_str().ok()?,
        };
        let authority = Authority::parse(text)?;
        (authority.port != Port::Invalid && self.name_allowed(&authority.host)).then_some(text)
    }

    /// The origin (`scheme://host:port`) of the host this request came for, at `port`: how a
    /// page on one listener names the bank's other listener. `None` for a host this bank does
    /// not answer to.
    pub(crate) fn origin_at(&self, uri: &Uri, headers: &HeaderMap, port: u16) -> Option<String> {
        let authority = Authority::parse(self.host(uri, headers)?)?;
        let scheme = if self.tls { "https" } else { "http" };
        let host = if authority.host.contains(':') {
            format!("[{}]", authority.host)
        } else {
            authority.host
        };
        Some(format!("{scheme}://{host}:{port}"))
    }

    /// Whether the bank answers to the host name `host` at any port: its bind address (any IP
    /// address when bound to all), `localhost`, the public URL's and the allow-listed origins'
    /// hosts. The port is not checked: DNS rebinding needs a name the attacker's DNS answers
    /// for, whatever the port, while a port mapping or TCP relay in front of the bank changes
    /// the port browsers and ATMs see.
    fn name_allowed(&self, host: &str) -> bool {
        host == "localhost"
            || host
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.local.ip().is_unspecified() || ip == self.local.ip())
            || self.public.as_ref().is_some_and(|p| p.host == host)
            || self
                .origins
                .iter()
                .filter_map(|o| PublicUrl::parse(o).ok())
                .any(|o| o.host == host)
    }

    /// Browsers always send `Origin`; native clients do not. Allowed: no `Origin`, one on
    /// the allow-list (`*` allows any), or the bank's own: its bind address (any IP address
    /// when bound to all) or `localhost` at its port, or the public URL's host and port; never
    /// merely the request's own `Host`.
    pub(crate) fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if self
            .origins
            .iter()
            .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        // An origin is a scheme and an authority, nothing more.
        let bare = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.contains(['/', '?', '#']));
        let Ok(url) = PublicUrl::parse(origin) else {
            return false;
        };
        if !bare {
            return false;
        }
        let authority = Authority {
            host: url.host.clone(),
            port: Port::Given(url.port),
        };
        self.allows(&authority, url.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hosts(bind: &str, public: Option<&str>, origins: &[&str]) -> AllowedHosts {
        AllowedHosts::new(
            bind.parse().unwrap(),
            false,
            public.map(|p| PublicUrl::parse(p).unwrap()),
            origins.iter().map(|o| (*o).to_owned()).collect(),
        )
    }

    fn host(h: &AllowedHosts, value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        h.host(&Uri::from_static("/ws"), &headers).is_some()
    }

    fn origin(h: &AllowedHosts, value: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(o) = value {
            headers.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h.origin_allowed(&headers)
    }

    #[test]
    fn public_urls() {
        let url = PublicUrl::parse("https://Bank.Example/atm/").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.as_str()),
            ("bank.example", 443, "https://Bank.Example/atm")
        );
        assert_eq!(PublicUrl::parse("http://[::1]:9000").unwrap().port, 9000);
        assert_eq!(PublicUrl::parse("ftp://x"), Err(PublicUrlError::Scheme));
        assert_eq!(PublicUrl::parse("https://:443"), Err(PublicUrlError::Host));
        assert_eq!(PublicUrl::parse("https://u@x"), Err(PublicUrlError::Host));
        assert_eq!(
            PublicUrl::parse("https://x:99999"),
            Err(PublicUrlError::Port)
        );
        assert_eq!(PublicUrl::parse("https://x:0"), Err(PublicUrlError::Port));
    }

    #[test]
    fn hosts_are_the_bind_address_localhost_and_the_public_url() {
        let h = hosts("127.0.0.1:8765", Some("https://bank.example"), &[]);
        assert!(host(&h, "127.0.0.1:8765"));
        assert!(host(&h, "LOCALHOST:8765"));
        assert!(host(&h, "bank.example"));
        assert!(host(&h, "bank.example:443"));
        assert!(!host(&h, "evil.example:8765"));
        assert!(!host(&h, "evil.example"));
        assert!(!host(&h, "10.0.0.1:8765"));
        // Any port (a port mapping or relay in front of the bank changes it).
        assert!(host(&h, "127.0.0.1:8080"));
        assert!(host(&h, "bank.example:8443"));
        assert!(!host(&h, "127.0.0.1:x"));
        assert!(!host(&h, ""));
        // Bound to every address: any IP literal at the port (no name can be rebound).
        let any = hosts("0.0.0.0:8765", None, &[]);
        assert!(host(&any, "10.0.0.1:8765"));
        assert!(host(&any, "[::1]:8765"));
        assert!(!host(&any, "evil.example:8765"));
    }

    #[test]
    fn origins_are_checked_against_the_allowed_hosts_not_the_request() {
        let h = hosts("127.0.0.1:8765", None, &["http://localhost:8080"]);
        assert!(origin(&h, None));
        assert!(origin(&h, Some("http://127.0.0.1:8765")));
        assert!(origin(&h, Some("http://localhost:8765")));
        assert!(origin(&h, Some("http://localhost:8080")));
        assert!(!origin(&h, Some("http://evil.example:8765")));
        assert!(!origin(&h, Some("http://evil.example")));
        // An origin is the bank's only at the bank's port: not another local server's page.
        assert!(!origin(&h, Some("http://localhost:3000")));
        assert!(!origin(&h, Some("http://127.0.0.1:8766")));
        assert!(!origin(&h, Some("null")));
        assert!(!origin(&h, Some("http://127.0.0.1:8765/x")));
        let public = hosts("127.0.0.1:8765", Some("https://bank.example"), &[]);
        assert!(origin(&public, Some("https://bank.example")));
        assert!(!origin(&public, Some("http://bank.example")));
        assert!(origin(
            &hosts("127.0.0.1:8765", None, &["*"]),
            Some("http://evil.example")
        ));
    }
}
