//! [`RequestScope`]: one kind of request a tool may make — `METHOD host/path-pattern`, e.g.
//! `POST api.hubapi.com/crm/v3/objects/contacts/search` or `GET graph.facebook.com/v21.0/*/insights`.
//! An operator lists a tool's scopes in the workflow (`[plugins.<p>.tools.<t>] requests = [...]`);
//! the egress gate then refuses any request of that tool no scope matches. Effects are the
//! plugin's word; scopes are the operator's, enforced.
//!
//! Matching: the method exactly (upper case) or `*`; the host exactly or `*.suffix` (the host
//! the plugin addressed, before any upstream remap); the path segment by segment, where `*` is
//! any one non-empty segment and a final `**` is any rest, empty included. The query is not
//! part of a scope. A path with dot segments or encoded slashes never matches (a server that
//! normalises would read it as another path).

use std::fmt;

use crate::pattern::HostMatch;

/// One request kind a tool may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestScope {
    /// Upper case, or `None` for any method.
    pub method: Option<String>,
    pub host: HostMatch,
    /// Segments after the leading `/`: a literal, `*` or (last only) `**`.
    pub path: Vec<String>,
    /// As written, for messages.
    text: String,
}

/// Why a scope did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request scope `{scope}`: {reason} (write `METHOD host/path`, e.g. `GET api.example.com/v1/items/*`)")]
pub struct ScopeError {
    pub scope: String,
    pub reason: &'static str,
}

/// Longest scope accepted: scopes come from workflow files, and are matched on every request.
const MAX_SCOPE_LEN: usize = 1024;

impl RequestScope {
    pub fn parse(scope: &str) -> Result<RequestScope, ScopeError> {
        let err = |reason| ScopeError { scope: scope.chars().take(200).collect(), reason };
        if scope.len() > MAX_SCOPE_LEN {
            return Err(err("longer than 1024 bytes"));
        }
        let (method, target) = scope.trim().split_once(' ').ok_or(err("a method, a space, then host/path"))?;
        let method = match method {
            "*" => None,
            m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => Some(m.to_string()),
            _ => return Err(err("the method is upper case letters (GET, POST, …) or `*`")),
        };
        let target = target.trim();
        let slash = target.find('/').ok_or(err("the path starts with `/` after the host"))?;
        let (host, path) = target.split_at(slash);
        let host = host.to_ascii_lowercase();
        let valid_name =
            |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        let host = match host.strip_prefix("*.") {
            Some(suffix) if valid_name(suffix) => HostMatch::Suffix(suffix.to_string()),
            None if valid_name(&host) => HostMatch::Exact(host.trim_end_matches('.').to_string()),
            _ => return Err(err("the host is a name (`api.example.com`) or `*.suffix`, no scheme or port")),
        };
        let segments: Vec<String> = path[1..].split('/').map(str::to_string).collect();
        for (i, seg) in segments.iter().enumerate() {
            if seg == "**" && i + 1 != segments.len() {
                return Err(err("`**` may only end the path"));
            }
            if seg.contains('*') && seg != "*" && seg != "**" {
                return Err(err("`*` stands for a whole segment: `/items/*`, not `/items/a*`"));
            }
            if seg == "." || seg == ".." || seg.contains('?') || seg.contains('#') {
                return Err(err("the path has no dot segments, query or fragment"));
            }
        }
        Ok(RequestScope { method, host, path: segments, text: scope.trim().to_string() })
    }

    /// Whether a request with `method` to `host` (lower case) at `path` (no query) is in scope.
    pub fn matches(&self, method: &str, host: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        if !self.host.covers(&HostMatch::Exact(host.to_string())) {
            return false;
        }
        if path_is_ambiguous(path) {
            return false;
        }
        let Some(rest) = path.strip_prefix('/') else { return false };
        let got: Vec<&str> = rest.split('/').collect();
        for (n, want) in self.path.iter().enumerate() {
            if want == "**" {
                return true; // last, by construction
            }
            let Some(seg) = got.get(n) else { return false };
            let ok = if want == "*" { !seg.is_empty() } else { want == seg };
            if !ok {
                return false;
            }
        }
        got.len() == self.path.len()
    }
}

/// Serialised as written, the form a workflow or a manifest spells it.
impl serde::Serialize for RequestScope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl fmt::Display for RequestScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A path a normalising server could read as a different one: dot segments (also as `..;x`,
/// which some servers strip to `..`), backslashes, and encoded slashes, dots or percent signs —
/// so no amount of decoding on the server's side turns it into another path.
fn path_is_ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ["%2f", "%5c", "%2e", "%25"].iter().any(|e| lower.contains(e))
        || path.contains('\\')
        || path.split('/').any(|s| matches!(s.split(';').next(), Some("." | "..")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> RequestScope {
        RequestScope::parse(s).unwrap()
    }

    #[test]
    fn methods_hosts_and_paths_match_as_written() {
        let search = scope("POST api.hubapi.com/crm/v3/objects/contacts/search");
        assert!(search.matches("POST", "api.hubapi.com", "/crm/v3/objects/contacts/search"));
        assert!(!search.matches("GET", "api.hubapi.com", "/crm/v3/objects/contacts/search"));
        assert!(!search.matches("POST", "api.hubapi.com", "/crm/v3/objects/contacts"));
        assert!(!search.matches("POST", "api.hubapi.com", "/crm/v3/objects/contacts/search/more"));
        assert!(!search.matches("POST", "evil.example", "/crm/v3/objects/contacts/search"));
        let one = scope("GET api.hubapi.com/crm/v3/objects/contacts/*");
        assert!(one.matches("GET", "api.hubapi.com", "/crm/v3/objects/contacts/1001"));
        assert!(!one.matches("GET", "api.hubapi.com", "/crm/v3/objects/contacts/"));
        assert!(!one.matches("GET", "api.hubapi.com", "/crm/v3/objects/contacts/1001/notes"));
        let rest = scope("* *.facebook.com/v21.0/**");
        assert!(rest.matches("DELETE", "graph.facebook.com", "/v21.0/act_1/campaigns"));
        assert!(rest.matches("GET", "graph.facebook.com", "/v21.0"));
        assert!(!rest.matches("GET", "facebook.com", "/v21.0/x"), "`*.suffix` names subdomains only");
        assert_eq!(rest.to_string(), "* *.facebook.com/v21.0/**");
    }

    #[test]
    fn paths_a_server_could_read_differently_never_match() {
        let rest = scope("GET api.example.com/v1/**");
        for path in [
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/v1/a%2Fb",
            "/v1/a\\..\\b",
            "/v1/./x",
            "/v1/..;x/admin",
            "/v1/%252e%252e/x",
        ] {
            assert!(!rest.matches("GET", "api.example.com", path), "{path}");
        }
    }

    #[test]
    fn malformed_scopes_say_what_to_write() {
        for (bad, why) in [
            ("api.example.com/x", "a method, a space"),
            ("get api.example.com/x", "upper case"),
            ("GET https://api.example.com/x", "no scheme or port"),
            ("GET api.example.com:443/x", "no scheme or port"),
            ("GET api.example.com", "starts with `/`"),
            ("GET api.example.com/**/x", "may only end"),
            ("GET api.example.com/a*", "whole segment"),
            ("GET api.example.com/a/../b", "dot segments"),
            ("GET api.example.com/a?x=1", "query"),
        ] {
            let e = RequestScope::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(RequestScope::parse(&format!("GET a.example/{}", "x".repeat(2000))).is_err());
    }
}
