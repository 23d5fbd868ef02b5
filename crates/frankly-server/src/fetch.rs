//! `url=` fetching for the match API, off unless `url_fetch_hosts` lists
//! hosts, and bounded when on (no SSRF):
//!
//! - only `http` and `https` URLs whose host is on the allowlist, at every
//!   redirect too (at most [`MAX_REDIRECTS`]);
//! - every address a host resolves to is checked *after* DNS resolution
//!   and the connection goes only to the addresses that passed (a resolver
//!   inside the HTTP client), so a name that resolves to 127.0.0.1,
//!   169.254.169.254 or a private network is refused, also on a redirect
//!   and on DNS rebinding; IP literals are checked the same way;
//! - no proxy from the environment (it would connect for us, unchecked);
//! - the body is read to at most [`crate::MAX_UPLOAD_BYTES`], the whole
//!   fetch within `url_fetch_timeout_seconds`.
//!
//! Errors keep HMA's texts where HMA has one ("Invalid or unsafe URL
//! provided", "Content too large", "Failed to fetch URL: ...").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use crate::ServerError;

/// Redirects followed per fetch.
pub const MAX_REDIRECTS: usize = 3;

/// One allowlist entry: a host name (or IP literal), or `*.domain` for the
/// domain's subdomains (not the domain itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostRule {
    /// Exactly this host (lower case).
    Exact(String),
    /// Any subdomain of this domain (lower case, without the `*.`).
    Subdomains(String),
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl HostRule {
    /// Parses an allowlist entry; `None` if it is not a host name, an IP
    /// literal or `*.domain`.
    pub fn parse(text: &str) -> Option<HostRule> {
        let text = text.trim().to_ascii_lowercase();
        if let Some(domain) = text.strip_prefix("*.") {
            return is_host_name(domain).then(|| HostRule::Subdomains(domain.to_owned()));
        }
        (text.parse::<IpAddr>().is_ok() || is_host_name(&text)).then_some(HostRule::Exact(text))
    }

    fn allows(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(h) => h == host,
            HostRule::Subdomains(d) => host.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.')),
        }
    }
}

/// Whether `ip` is an address on the public internet. Written out because
/// the standard library's `is_global` is still unstable: this is its rule
/// list (the IANA IPv4 and IPv6 special-purpose address registries), with
/// the IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) checked as
/// IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        return is_public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16) reaches the embedded IPv4 address.
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated) and the rest of ::/96
        || s[0] & 0xfe00 == 0xfc00 // unique local
        || s[0] & 0xffc0 == 0xfe80 // link local
        || s[0] & 0xffc0 == 0xfec0 // site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo and others)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
}

fn unsafe_url(why: impl std::fmt::Display) -> ServerError {
    ServerError::refused(StatusCode::BAD_REQUEST, "unsafe_url", format!("Invalid or unsafe URL provided: {why}"))
}

/// The resolver the client connects through: system DNS, then only the
/// addresses [`is_public`] allows (all, with `allow_private`).
#[derive(Debug)]
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allow_private || is_public(a.ip())).collect();
            if public.is_empty() {
                let list = found.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
                return Err(format!("{host} resolves only to private, loopback or reserved addresses ({list})").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The `url=` fetcher: the allowlist and a client that enforces it.
#[derive(Debug)]
pub(crate) struct Fetcher {
    rules: Arc<Vec<HostRule>>,
    allow_private: bool,
    client: Option<reqwest::Client>,
    max_bytes: usize,
}

/// What a fetch gave: the body and the response's `Content-Type`.
pub(crate) struct Fetched {
    pub(crate) bytes: axum::body::Bytes,
    pub(crate) content_type: String,
}

/// Checks a URL (or a redirect's) against the scheme, the allowlist and,
/// for IP literals, the address rule.
fn check_url(url: &reqwest::Url, rules: &[HostRule], allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} (http and https only)", url.scheme()));
    }
    let host = url.host_str().ok_or("no host")?.to_ascii_lowercase();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        if !allow_private && !is_public(ip) {
            return Err(format!("{ip} is a private, loopback or reserved address"));
        }
        if !rules.iter().any(|r| r.allows(literal)) {
            return Err(format!("host {literal} is not in url_fetch_hosts"));
        }
        return Ok(());
    }
    if !rules.iter().any(|r| r.allows(&host)) {
        return Err(format!("host {host} is not in url_fetch_hosts"));
    }
    Ok(())
}

impl Fetcher {
    /// From the configuration; fetching is off when `url_fetch_hosts` is
    /// empty.
    pub(crate) fn new(config: &crate::Config) -> Result<Fetcher, ServerError> {
        let rules: Vec<HostRule> = config.url_fetch_hosts.iter().filter_map(|h| HostRule::parse(h)).collect();
        let rules = Arc::new(rules);
        let allow_private = config.url_fetch_allow_private;
        let client = if rules.is_empty() {
            None
        } else {
            let redirect_rules = Arc::clone(&rules);
            let policy = reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match check_url(attempt.url(), &redirect_rules, allow_private) {
                    Ok(()) => attempt.follow(),
                    Err(why) => attempt.error(format!("redirect refused: {why}")),
                }
            });
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(policy)
                .dns_resolver(Arc::new(CheckedResolver { allow_private }))
                .timeout(Duration::from_secs(config.url_fetch_timeout_seconds))
                .connect_timeout(Duration::from_secs(config.url_fetch_timeout_seconds))
                .user_agent(concat!("frankly/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ServerError::Config(format!("cannot build the url fetcher: {e}")))?;
            Some(client)
        };
        Ok(Fetcher { rules, allow_private, client, max_bytes: crate::MAX_UPLOAD_BYTES })
    }

    /// Whether `url=` is on.
    pub(crate) fn enabled(&self) -> bool {
        self.client.is_some()
    }

    /// Fetches `url`, or says why not.
    pub(crate) async fn fetch(&self, url: &str) -> Result<Fetched, ServerError> {
        let Some(client) = &self.client else {
            return Err(ServerError::refused(StatusCode::FORBIDDEN, "url_off", "url fetching is off"));
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| unsafe_url(format!("not a URL ({e})")))?;
        check_url(&parsed, &self.rules, self.allow_private).map_err(unsafe_url)?;
        let failed = |e: reqwest::Error| {
            // Name the innermost cause: the resolver's refusal, a timeout, a refused connection.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = s.to_string();
                source = s.source();
            }
            if e.is_timeout() {
                why = "timed out".into();
            }
            ServerError::refused(StatusCode::BAD_REQUEST, "fetch_failed", format!("Failed to fetch URL: {why}"))
        };
        let mut response = client.get(parsed).send().await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(ServerError::refused(
                StatusCode::BAD_REQUEST,
                "fetch_failed",
                format!("Failed to fetch URL: the server answered {}", response.status()),
            ));
        }
        let too_large = || ServerError::refused(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "Content too large");
        if response.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(too_large());
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { bytes: body.into(), content_type })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_reach_the_host_or_its_network_are_not_public() {
        for private in [
            "127.0.0.1",
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_allowlist_matches_hosts_and_subdomains_only() {
        let rules: Vec<HostRule> =
            ["media.example.com", "*.cdn.example.net"].iter().filter_map(|h| HostRule::parse(h)).collect();
        let check = |u: &str| check_url(&reqwest::Url::parse(u).unwrap(), &rules, false);
        assert!(check("https://media.example.com/a.jpg").is_ok());
        assert!(check("https://MEDIA.example.com/a.jpg").is_ok());
        assert!(check("https://x.cdn.example.net/a.jpg").is_ok());
        assert!(check("https://cdn.example.net/a.jpg").is_err());
        assert!(check("https://evilcdn.example.net/a.jpg").is_err());
        assert!(check("https://media.example.com.evil.org/a.jpg").is_err());
        assert!(check("file:///etc/passwd").unwrap_err().contains("scheme"));
        assert!(check("http://169.254.169.254/latest/meta-data/").unwrap_err().contains("private"));
        assert!(check("http://[::1]/").unwrap_err().contains("private"));
        assert_eq!(HostRule::parse("bad host"), None);
        assert_eq!(HostRule::parse("*."), None);
    }
}
