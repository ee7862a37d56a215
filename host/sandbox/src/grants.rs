//! What the operator grants a plugin: the second key of Tollgate's two-key capabilities. The
//! plain vocabulary (host patterns, [`SecretSource`], [`Limits`], a workflow's
//! [`tollgate_contract::GrantSet`]) is in `tollgate-contract`; [`Grants`] adds what only the
//! egress gate uses (upstream remaps, pinned DNS answers, opened address ranges).
//!
//! A plugin's *declared* capabilities are its imports plus its manifest (hosts, credentials).
//! What it may use is declared ∩ granted. [`Grants::new`] grants nothing; every builder method
//! widens one capability and its docs say exactly how.
//!
//! Defaults of [`Grants::new`]:
//! - no outbound hosts (a plugin importing `wasi:http/outgoing-handler` is refused at load);
//! - no refused address ranges opened (loopback, private, link-local, CGNAT, multicast,
//!   unspecified, metadata stay closed even for granted host names);
//! - no credentials, no raw secrets, no kv (when granted: namespaced by the component's
//!   sha256 unless the operator names a namespace), no log;
//! - no upstream remaps and no pinned DNS answers;
//! - no per-tool request scopes (a tool's requests are limited by the hosts alone);
//! - checked requests go to the network ([`Network::Live`]; a test harness may record or
//!   replay them instead);
//! - [`Limits::default`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

pub use crate::egress::Network;
use tollgate_contract::pattern::{HostPattern, PatternError, Scheme};
use tollgate_contract::{GrantSet, Limits, RequestScope, SecretSource};

/// Where requests for one granted host are actually sent: an operator's override of the
/// plugin's base URL (a staging API, a local stand-in, a proxy). The plugin keeps addressing
/// the real host; credentials stay bound to the real host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Prepended to the request path (no trailing slash).
    pub path_prefix: String,
}

impl Upstream {
    /// Parses `http://127.0.0.1:4010` or `https://staging.example.com/prefix`.
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("upstream `{url}` is not a URL: {e}"))?;
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| format!("upstream `{url}` must start with http:// or https://"))?;
        let host = uri.host().ok_or_else(|| format!("upstream `{url}` has no host"))?.to_string();
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        if uri.query().is_some() {
            return Err(format!("upstream `{url}` must not have a query"));
        }
        Ok(Upstream { scheme, host, port, path_prefix: uri.path().trim_end_matches('/').to_string() })
    }
}

/// The operator's grants for one plugin. See the module docs for the defaults.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub(crate) hosts: Vec<HostPattern>,
    pub(crate) open_ranges: Vec<IpNet>,
    pub(crate) credentials: BTreeMap<String, SecretSource>,
    pub(crate) secrets: BTreeMap<String, SecretSource>,
    pub(crate) kv: bool,
    pub(crate) kv_namespace: Option<String>,
    pub(crate) log: bool,
    pub(crate) upstreams: BTreeMap<String, Upstream>,
    pub(crate) resolve: BTreeMap<String, Vec<IpAddr>>,
    pub(crate) limits: Limits,
    pub(crate) network: Network,
    pub(crate) tool_requests: BTreeMap<String, Vec<RequestScope>>,
}

/// A workflow's grants for one plugin as this deny-by-default builder: the one conversion from
/// the workflow file to the sandbox (`tollgate run` and `tollgate validate` both use it).
impl From<GrantSet> for Grants {
    fn from(set: GrantSet) -> Grants {
        let mut grants = Grants::new().log(set.log);
        for host in set.hosts {
            grants = grants.allow_pattern(host);
        }
        for (name, source) in set.credentials {
            grants = grants.credential(&name, source);
        }
        if let Some(namespace) = &set.kv_namespace {
            grants = grants.kv_namespace(namespace);
        }
        for (tool, scopes) in set.tool_requests {
            grants = grants.tool_requests(&tool, scopes);
        }
        grants.limits(set.limits)
    }
}

impl Grants {
    /// Grants nothing; see the module docs for every default.
    pub fn new() -> Grants {
        Grants::default()
    }

    /// Allows outbound requests to `pattern` (`[scheme://]host[:port]`, see
    /// [`HostPattern`]) — only where the manifest also declares a matching host. A pattern that
    /// is an IP literal also opens that one address even if it is in a refused range.
    pub fn allow_host(self, pattern: &str) -> Result<Grants, PatternError> {
        Ok(self.allow_pattern(HostPattern::parse(pattern)?))
    }

    /// [`Grants::allow_host`] for a pattern already parsed.
    pub fn allow_pattern(mut self, pattern: HostPattern) -> Grants {
        self.hosts.push(pattern);
        self
    }

    /// Opens a refused address range (e.g. `10.0.0.0/8`) for names that resolve into it.
    pub fn open_range(mut self, range: IpNet) -> Grants {
        self.open_ranges.push(range);
        self
    }

    /// Maps the manifest credential `name` to a source. The host adds it at egress, only to
    /// requests to the host the manifest binds it to.
    pub fn credential(mut self, name: &str, source: SecretSource) -> Grants {
        self.credentials.insert(name.to_string(), source);
        self
    }

    /// Lets the plugin read secret `name` through the (discouraged, audited) secrets capability.
    pub fn secret(mut self, name: &str, source: SecretSource) -> Grants {
        self.secrets.insert(name.to_string(), source);
        self
    }

    /// Grants the plugin-scoped key-value store.
    pub fn kv(mut self, on: bool) -> Grants {
        self.kv = on;
        self
    }

    /// Grants the kv store under an operator-chosen namespace (stable across plugin versions;
    /// without it the namespace is the component's sha256, so an upgrade starts empty).
    pub fn kv_namespace(mut self, namespace: &str) -> Grants {
        self.kv = true;
        self.kv_namespace = Some(namespace.to_string());
        self
    }

    /// Grants structured logging into the call report.
    pub fn log(mut self, on: bool) -> Grants {
        self.log = on;
        self
    }

    /// Sends requests for `host` to `upstream` instead (see [`Upstream`]). An upstream given as
    /// an IP literal is an explicit grant of that address.
    pub fn upstream(mut self, host: &str, upstream: Upstream) -> Grants {
        self.upstreams.insert(host.trim_end_matches('.').to_ascii_lowercase(), upstream);
        self
    }

    /// Pins the DNS answer for `host` (like curl's `--resolve`); the address checks still apply.
    pub fn resolve(mut self, host: &str, addrs: Vec<IpAddr>) -> Grants {
        self.resolve.insert(host.trim_end_matches('.').to_ascii_lowercase(), addrs);
        self
    }

    /// Limits `tool`'s requests to `scopes`: the gate refuses any request of that tool no scope
    /// matches (after the host checks, which still apply). Tools not named are limited by hosts
    /// alone.
    pub fn tool_requests(mut self, tool: &str, scopes: Vec<RequestScope>) -> Grants {
        self.tool_requests.insert(tool.to_string(), scopes);
        self
    }

    /// Where checked requests go: the network (the default), the network with every exchange
    /// recorded, or a replayer and no network at all. Every check of the gate applies first.
    pub fn network(mut self, network: Network) -> Grants {
        self.network = network;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Grants {
        self.limits = limits;
        self
    }

    pub fn limits_ref(&self) -> &Limits {
        &self.limits
    }

    /// Whether anything outbound was granted at all.
    pub fn grants_http(&self) -> bool {
        !self.hosts.is_empty()
    }

    pub fn grants_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse() {
        let u = Upstream::parse("http://127.0.0.1:4010/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path_prefix.as_str()), ("127.0.0.1", 4010, ""));
        let u = Upstream::parse("https://staging.example.com/api/").unwrap();
        assert_eq!((u.port, u.path_prefix.as_str()), (443, "/api"));
        assert!(Upstream::parse("ftp://x").is_err());
    }
}
