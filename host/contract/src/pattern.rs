//! Host patterns: the `[scheme://]host[:port]` strings that manifests declare and operators
//! grant, and the rule for matching a request against them.
//!
//! - scheme: `http` or `https`; omitted means `https`.
//! - host: an exact name, `*.suffix` (any subdomain of `suffix`, not `suffix` itself), `*` (any
//!   host), or an IP literal (IPv6 in brackets). Names compare case-insensitively, without a
//!   trailing dot.
//! - port: a number, or `*` for any port; omitted means the scheme's default port.
//!
//! IP literals are recognised in every spelling a URL host can carry ([`parse_ip_literal`]), so
//! `2130706433` and `127.0.0.1` name the same address here and at the egress gate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com` stores `example.com`.
    Suffix(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    pub scheme: Scheme,
    pub host: HostMatch,
    /// `None` means any port.
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A request target after normalisation: what patterns are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// Lower-case name without trailing dot, or the canonical text of an IP literal.
    pub host: String,
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl Target {
    pub fn new(scheme: Scheme, host: &str, port: Option<u16>) -> Target {
        let ip = parse_ip_literal(host);
        let host = match ip {
            Some(ip) => ip.to_string(),
            None => normalise_name(host),
        };
        Target { scheme, host, ip, port: port.unwrap_or(scheme.default_port()) }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V6(v6)) => write!(f, "{}://[{v6}]:{}", self.scheme.as_str(), self.port),
            _ => write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port),
        }
    }
}

fn normalise_name(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a host pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl HostMatch {
    /// Whether every host `other` can name is also named by `self` (`*.example.com` covers
    /// `api.example.com` and `*.eu.example.com`; `*` covers everything).
    pub fn covers(&self, other: &HostMatch) -> bool {
        match (self, other) {
            (HostMatch::Any, _) => true,
            (HostMatch::Exact(a), HostMatch::Exact(b)) => a == b,
            (HostMatch::Ip(a), HostMatch::Ip(b)) => a == b,
            (HostMatch::Suffix(s), HostMatch::Exact(h)) => h.ends_with(&format!(".{s}")),
            (HostMatch::Suffix(s), HostMatch::Suffix(c)) => c == s || c.ends_with(&format!(".{s}")),
            _ => false,
        }
    }
}

impl Target {
    /// The target's host as a pattern that names exactly it.
    pub fn host_match(&self) -> HostMatch {
        match self.ip {
            Some(ip) => HostMatch::Ip(ip),
            None => HostMatch::Exact(self.host.clone()),
        }
    }
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<HostPattern, PatternError> {
        let err = |reason| PatternError { pattern: pattern.to_string(), reason };
        let trimmed = pattern.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((s, rest)) => (Scheme::parse(s).ok_or(err("scheme must be http or https"))?, rest),
            None => (Scheme::Https, trimmed),
        };
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(err("only [scheme://]host[:port] is allowed (no path, query or user)"));
        }
        let (host, port) = split_host_port(rest).ok_or(err("malformed host or port"))?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| err("port must be 0-65535 or *"))?),
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(err("wildcard must be `*.suffix`"));
            }
            HostMatch::Suffix(normalise_name(suffix))
        } else if host.contains('*') {
            return Err(err("wildcard must be the whole host or a leading `*.`"));
        } else if let Some(ip) = parse_ip_literal(host) {
            HostMatch::Ip(ip)
        } else {
            if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_') {
                return Err(err("host must be a DNS name, an IP literal, `*` or `*.suffix`"));
            }
            HostMatch::Exact(normalise_name(host))
        };
        Ok(HostPattern { scheme, host, port })
    }

    pub fn matches(&self, target: &Target) -> bool {
        if self.scheme != target.scheme || self.port.is_some_and(|p| p != target.port) {
            return false;
        }
        match (&self.host, target.ip) {
            (HostMatch::Any, _) => true,
            (HostMatch::Ip(ip), Some(t)) => *ip == t,
            (HostMatch::Exact(h), None) => *h == target.host,
            (HostMatch::Suffix(s), None) => {
                target.host.len() > s.len() + 1
                    && target.host.ends_with(s.as_str())
                    && target.host.as_bytes()[target.host.len() - s.len() - 1] == b'.'
            }
            _ => false,
        }
    }

    /// Whether this pattern names `ip` literally: an operator who grants `127.0.0.1:8080`
    /// has explicitly granted that address, even though it is in a refused range.
    pub fn names_ip(&self, ip: IpAddr) -> bool {
        matches!(self.host, HostMatch::Ip(p) if p == ip)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostMatch::Any => "*".to_string(),
            HostMatch::Exact(h) => h.clone(),
            HostMatch::Suffix(s) => format!("*.{s}"),
            HostMatch::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            HostMatch::Ip(ip) => ip.to_string(),
        };
        match self.port {
            Some(p) => write!(f, "{}://{host}:{p}", self.scheme.as_str()),
            None => write!(f, "{}://{host}:*", self.scheme.as_str()),
        }
    }
}

/// Splits `host[:port]`, keeping bracketed IPv6 whole.
pub fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            r => Some((host, Some(r.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// Parses a URL host as an IP address, accepting the spellings browsers and libc accept for
/// IPv4 (decimal, hex and octal parts; one to four parts, e.g. `2130706433`, `0x7f000001`,
/// `0177.0.0.1`, `127.1`) and bracketed or bare IPv6. Returns `None` for host names.
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let host = host.trim_end_matches('.');
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(v6));
    }
    parse_ipv4_loose(host).map(IpAddr::V4)
}

fn parse_ipv4_part(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        // "0x" alone is zero in inet_aton.
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

fn parse_ipv4_loose(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| parse_ipv4_part(p)).collect::<Option<_>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&n| n > 255) {
        return None;
    }
    // The last part fills all remaining bytes (inet_aton semantics).
    let remaining_bytes = 4 - head.len() as u32;
    if *last >= 1u64 << (8 * remaining_bytes) {
        return None;
    }
    let mut value: u32 = 0;
    for (i, &n) in head.iter().enumerate() {
        value |= (n as u32) << (8 * (3 - i as u32));
    }
    value |= *last as u32;
    Some(Ipv4Addr::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<Ipv4Addr> {
        match parse_ip_literal(s)? {
            IpAddr::V4(v) => Some(v),
            IpAddr::V6(_) => None,
        }
    }

    fn t(url_scheme: Scheme, host: &str, port: u16) -> Target {
        Target::new(url_scheme, host, Some(port))
    }

    #[test]
    fn parse_and_match() {
        let p = HostPattern::parse("api.hubapi.com").unwrap();
        assert!(p.matches(&t(Scheme::Https, "API.HubAPI.com.", 443)));
        assert!(!p.matches(&t(Scheme::Http, "api.hubapi.com", 80)));
        assert!(!p.matches(&t(Scheme::Https, "api.hubapi.com", 8443)));
        assert!(!p.matches(&t(Scheme::Https, "evil-api.hubapi.com", 443)));

        let w = HostPattern::parse("https://*.example.com").unwrap();
        assert!(w.matches(&t(Scheme::Https, "a.example.com", 443)));
        assert!(w.matches(&t(Scheme::Https, "a.b.example.com", 443)));
        assert!(!w.matches(&t(Scheme::Https, "example.com", 443)));
        assert!(!w.matches(&t(Scheme::Https, "badexample.com", 443)));

        let any = HostPattern::parse("http://*:*").unwrap();
        assert!(any.matches(&t(Scheme::Http, "x", 1)));
        assert!(!any.matches(&t(Scheme::Https, "x", 1)));

        let ip = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(ip.matches(&t(Scheme::Http, "2130706433", 8080)));
        assert!(ip.names_ip("127.0.0.1".parse().unwrap()));
        assert!(!ip.matches(&t(Scheme::Http, "localhost", 8080)));

        let v6 = HostPattern::parse("http://[::1]:*").unwrap();
        assert!(v6.matches(&t(Scheme::Http, "[::1]", 9)));
        assert_eq!(v6.to_string(), "http://[::1]:*");
    }

    #[test]
    fn coverage() {
        let h = |p: &str| HostPattern::parse(p).unwrap().host;
        assert!(h("*").covers(&h("a.b")));
        assert!(h("*.example.com").covers(&h("api.example.com")));
        assert!(h("*.example.com").covers(&h("*.eu.example.com")));
        assert!(!h("*.example.com").covers(&h("example.com")));
        assert!(!h("*.example.com").covers(&h("*")));
        assert!(!h("api.example.com").covers(&h("*.example.com")));
        assert!(h("127.0.0.1").covers(&h("2130706433")));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["ftp://x", "x/path", "user@x", "*x.com", "a.*.com", "x:99999", "x:abc", "", "a b", "*."] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_spellings_normalise() {
        let lo = Some(Ipv4Addr::LOCALHOST);
        for s in ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.0.0.1", "127.0.1", "127.0.0.1."]
        {
            assert_eq!(v4(s), lo, "{s}");
        }
        assert_eq!(v4("169.254.169.254"), Some(Ipv4Addr::new(169, 254, 169, 254)));
        assert_eq!(v4("0xa9fea9fe"), Some(Ipv4Addr::new(169, 254, 169, 254)));
        for s in ["example.com", "127.0.0.256", "1.2.3.4.5", "4294967296", "08.0.0.1", "a.b", "", "1..2"] {
            assert_eq!(parse_ip_literal(s), None, "{s}");
        }
    }
}
