//! The manifest's conversion from the guest's WIT record and its validation, so a plugin with a
//! malformed manifest never loads. The types themselves are plain data in
//! [`tollgate_contract::manifest`]. The optional `requests` export (contract 0.1.1) is read
//! here too: each tool's declared request scopes, parsed, bounded and checked against the
//! manifest's tools and hosts.

use tollgate_contract::pattern::{HostMatch, HostPattern};
use tollgate_contract::{CredentialSpec, Effects, Manifest, RequestScope, ToolSpec};

use crate::bindings::requests::exports::tollgate::plugin::requests::ToolRequests;
use crate::bindings::tollgate::plugin::types as wit;
use crate::error::LoadError;
use crate::schema::{RegexBudget, Schema};

pub(crate) fn is_ident(s: &str, extra: &[char], max: usize) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= max
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || extra.contains(&c))
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Headers a credential may not claim: the host owns these.
const RESERVED_HEADERS: [&str; 6] = ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te"];

/// A validated manifest with compiled schemas, in tool order.
pub(crate) struct Checked {
    pub manifest: Manifest,
    pub schemas: Vec<(Schema, Option<Schema>)>,
    pub host_patterns: Vec<HostPattern>,
}

/// Bounds on what a (possibly hostile) manifest may make the host parse, compile and keep.
pub(crate) const MAX_TOOLS: usize = 256;
const MAX_HOSTS: usize = 64;
const MAX_CREDENTIALS: usize = 32;
const MAX_TEXT: usize = 8 << 10;
pub(crate) const MAX_SCHEMA: usize = 64 << 10;
/// Names (plugin, tool, credential, compensation) and versions.
const MAX_NAME: usize = 64;
/// Host patterns and credential hosts.
const MAX_HOST: usize = 256;
/// Credential header names and value prefixes.
const MAX_HEADER: usize = 128;
/// Declared request scopes per tool (each is at most 1 KiB, [`RequestScope::parse`]).
pub(crate) const MAX_SCOPES_PER_TOOL: usize = 64;

fn bounded(what: impl Into<String>, len: usize, max: usize) -> Result<(), LoadError> {
    if len > max { Err(LoadError::ManifestTooLarge { what: what.into(), len, max }) } else { Ok(()) }
}

/// Every list and string of the manifest against its bound, before anything else reads them:
/// no later message echoes an unbounded string.
fn check_bounds(m: &wit::Manifest) -> Result<(), LoadError> {
    bounded("the tool list", m.tools.len(), MAX_TOOLS)?;
    bounded("the host list", m.hosts.len(), MAX_HOSTS)?;
    bounded("the credential list", m.credentials.len(), MAX_CREDENTIALS)?;
    bounded("the plugin name", m.name.len(), MAX_NAME)?;
    bounded("the version", m.version.len(), MAX_NAME)?;
    bounded("the description", m.description.len(), MAX_TEXT)?;
    for (i, t) in m.tools.iter().enumerate() {
        bounded(format!("tool {i}'s name"), t.name.len(), MAX_NAME)?;
        bounded(format!("tool `{}` description", t.name), t.description.len(), MAX_TEXT)?;
        bounded(format!("tool `{}` compensation", t.name), t.compensation.as_ref().map_or(0, String::len), MAX_NAME)?;
        bounded(format!("tool `{}` input schema", t.name), t.input_schema.len(), MAX_SCHEMA)?;
        bounded(
            format!("tool `{}` output schema", t.name),
            t.output_schema.as_ref().map_or(0, String::len),
            MAX_SCHEMA,
        )?;
    }
    for (i, h) in m.hosts.iter().enumerate() {
        bounded(format!("host {i}"), h.len(), MAX_HOST)?;
    }
    for (i, c) in m.credentials.iter().enumerate() {
        bounded(format!("credential {i}'s name"), c.name.len(), MAX_NAME)?;
        bounded(format!("credential `{}` host", c.name), c.host.len(), MAX_HOST)?;
        bounded(format!("credential `{}` header", c.name), c.header.len(), MAX_HEADER)?;
        bounded(format!("credential `{}` value prefix", c.name), c.value_prefix.len(), MAX_HEADER)?;
        bounded(format!("credential `{}` description", c.name), c.description.len(), MAX_TEXT)?;
    }
    Ok(())
}

/// Converts and validates the manifest and, when the plugin exports `requests`, its declared
/// request scopes. Every message names the offending tool, host, credential or scope.
pub(crate) fn check(m: wit::Manifest, requests: Option<Vec<ToolRequests>>) -> Result<Checked, LoadError> {
    check_bounds(&m)?;
    if let Some(requests) = &requests {
        bounded("the request declarations", requests.len(), MAX_TOOLS)?;
        for (i, r) in requests.iter().enumerate() {
            bounded(format!("request declaration {i}'s tool name"), r.tool.len(), MAX_NAME)?;
            bounded(format!("tool `{}` request scopes", r.tool), r.scopes.len(), MAX_SCOPES_PER_TOOL)?;
        }
    }
    let mut checked = check_fields(m).map_err(LoadError::InvalidManifest)?;
    if let Some(requests) = requests {
        attach_requests(&mut checked, requests).map_err(LoadError::InvalidManifest)?;
    }
    Ok(checked)
}

/// Whether a manifest host covers a scope's host; a scope spells an IP address as a name.
fn covers_scope_host(host: &HostMatch, scope: &HostMatch) -> bool {
    match (host, scope) {
        (HostMatch::Ip(ip), HostMatch::Exact(name)) => name.parse::<std::net::IpAddr>().is_ok_and(|n| n == *ip),
        _ => host.covers(scope),
    }
}

/// Sets each declared tool's `requests`. A declaration must name a tool of the manifest, once;
/// each scope must parse and its host must be one the manifest's `hosts` cover (a scope no
/// request could reach is a mistake, not a restriction).
fn attach_requests(checked: &mut Checked, declared: Vec<ToolRequests>) -> Result<(), String> {
    for d in declared {
        let hosts = &checked.host_patterns;
        let Some(tool) = checked.manifest.tools.iter_mut().find(|t| t.name == d.tool) else {
            return Err(format!("requests: `{}` is not a tool of this plugin", d.tool));
        };
        if tool.requests.is_some() {
            return Err(format!("requests: tool `{}` is declared twice", d.tool));
        }
        let mut scopes = Vec::with_capacity(d.scopes.len());
        for text in &d.scopes {
            let scope = RequestScope::parse(text).map_err(|e| format!("tool `{}` requests: {e}", d.tool))?;
            if !hosts.iter().any(|p| covers_scope_host(&p.host, &scope.host)) {
                return Err(format!(
                    "tool `{}` requests: `{scope}` is for a host the manifest's hosts do not cover",
                    d.tool
                ));
            }
            scopes.push(scope);
        }
        tool.requests = Some(scopes);
    }
    Ok(())
}

fn check_fields(m: wit::Manifest) -> Result<Checked, String> {
    if !is_ident(&m.name, &['-'], MAX_NAME) {
        return Err(format!("plugin name `{}` must match [a-z][a-z0-9_-]* (at most 64 characters)", m.name));
    }
    if !is_semver(&m.version) {
        return Err(format!("version `{}` is not a semantic version (MAJOR.MINOR.PATCH)", m.version));
    }
    // Every schema is parsed first: the plugin's patterns share one regex budget.
    let mut docs = Vec::with_capacity(m.tools.len());
    for t in &m.tools {
        let input = Schema::parse(&t.input_schema).map_err(|e| format!("tool `{}` input schema: {e}", t.name))?;
        let output = t
            .output_schema
            .as_deref()
            .map(Schema::parse)
            .transpose()
            .map_err(|e| format!("tool `{}` output schema: {e}", t.name))?;
        docs.push((input, output));
    }
    let patterns = docs
        .iter()
        .map(|(i, o)| RegexBudget::count_patterns(i) + o.as_ref().map_or(0, RegexBudget::count_patterns))
        .sum();
    let budget = RegexBudget::shared_by(patterns);
    let mut tools = Vec::new();
    let mut schemas = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (t, (input_doc, output_doc)) in m.tools.iter().zip(docs) {
        if !is_ident(&t.name, &[], 64) {
            return Err(format!("tool name `{}` must match [a-z][a-z0-9_]* (at most 64 characters)", t.name));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(format!("tool `{}` is declared twice", t.name));
        }
        if t.description.trim().is_empty() {
            return Err(format!("tool `{}` has no description (the model chooses tools by it)", t.name));
        }
        let input = Schema::from_doc(&input_doc, budget).map_err(|e| format!("tool `{}` input schema: {e}", t.name))?;
        let output = output_doc
            .as_ref()
            .map(|d| Schema::from_doc(d, budget))
            .transpose()
            .map_err(|e| format!("tool `{}` output schema: {e}", t.name))?;
        schemas.push((input, output));
        tools.push(ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: input_doc,
            output_schema: output_doc,
            effects: Effects {
                read: t.effects.contains(wit::Effects::READ),
                write: t.effects.contains(wit::Effects::WRITE),
                send_message: t.effects.contains(wit::Effects::SEND_MESSAGE),
                spend: t.effects.contains(wit::Effects::SPEND),
                delete: t.effects.contains(wit::Effects::DELETE),
            },
            idempotent: t.idempotent,
            compensation: t.compensation.clone(),
            requests: None,
        });
    }
    for t in &tools {
        if let Some(c) = &t.compensation
            && !tools.iter().any(|x| &x.name == c)
        {
            return Err(format!("tool `{}` names compensation `{c}`, which is not a tool of this plugin", t.name));
        }
    }
    let host_patterns = m
        .hosts
        .iter()
        .map(|h| HostPattern::parse(h).map_err(|e| format!("hosts: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut credentials = Vec::new();
    for c in &m.credentials {
        if !is_ident(&c.name, &['-'], 64) {
            return Err(format!("credential name `{}` must match [a-z][a-z0-9_-]*", c.name));
        }
        let host = HostPattern::parse(&c.host).map_err(|e| format!("credential `{}` host: {e}", c.name))?;
        if matches!(host.host, HostMatch::Any) {
            return Err(format!("credential `{}` must be bound to one host or `*.suffix`, not `*`", c.name));
        }
        let covered = host_patterns.iter().any(|p| match (&p.host, &host.host) {
            (HostMatch::Any, _) => true,
            (a, b) => {
                a == b || matches!((a, b), (HostMatch::Suffix(s), HostMatch::Exact(h)) if h.ends_with(&format!(".{s}")))
            }
        });
        if !covered {
            return Err(format!(
                "credential `{}` is bound to `{}`, which is not among the manifest's hosts",
                c.name, c.host
            ));
        }
        let header = c.header.to_ascii_lowercase();
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() || RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(format!("credential `{}` header `{}` is not a header a credential may set", c.name, c.header));
        }
        credentials.push(CredentialSpec {
            name: c.name.clone(),
            host: c.host.clone(),
            header,
            value_prefix: c.value_prefix.clone(),
            description: c.description.clone(),
        });
    }
    let manifest =
        Manifest { name: m.name, version: m.version, description: m.description, tools, hosts: m.hosts, credentials };
    Ok(Checked { manifest, schemas, host_patterns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, input_schema: String) -> wit::Tool {
        wit::Tool {
            name: name.into(),
            description: "does a thing".into(),
            input_schema,
            output_schema: None,
            effects: wit::Effects::READ,
            idempotent: true,
            compensation: None,
        }
    }

    fn manifest(tools: Vec<wit::Tool>) -> wit::Manifest {
        wit::Manifest {
            name: "attack".into(),
            version: "1.0.0".into(),
            description: "a hostile manifest".into(),
            tools,
            hosts: vec!["https://api.example.test".into()],
            credentials: vec![wit::Credential {
                name: "api".into(),
                host: "api.example.test".into(),
                header: "authorization".into(),
                value_prefix: "Bearer ".into(),
                description: "token".into(),
            }],
        }
    }

    fn plain_tool() -> wit::Tool {
        tool("t", r#"{"type":"object"}"#.into())
    }

    #[test]
    fn an_ordinary_manifest_passes() {
        let checked = check(manifest(vec![plain_tool()]), None).unwrap();
        assert_eq!(checked.manifest.tools[0].input_schema, serde_json::json!({"type": "object"}));
    }

    /// Issue 13 §1: a 10 MiB `version` loaded and was copied into every call report; credential
    /// and host strings were uncapped. Every string is refused with a typed error naming it,
    /// and the error does not echo the string.
    #[test]
    fn every_string_is_capped() {
        let huge = "9".repeat(10 << 20);
        type Edit<'a> = Box<dyn Fn(&mut wit::Manifest) + 'a>;
        let cases: Vec<(&str, Edit)> = vec![
            ("the version", Box::new(|m| m.version = format!("1.0.0-{huge}"))),
            ("the plugin name", Box::new(|m| m.name = "a".repeat(65))),
            ("the description", Box::new(|m| m.description = huge.clone())),
            ("host 0", Box::new(|m| m.hosts[0] = format!("{huge}.test"))),
            ("credential `api` host", Box::new(|m| m.credentials[0].host = format!("{huge}.test"))),
            ("credential `api` header", Box::new(|m| m.credentials[0].header = "x".repeat(129))),
            ("credential `api` value prefix", Box::new(|m| m.credentials[0].value_prefix = huge.clone())),
            ("credential `api` description", Box::new(|m| m.credentials[0].description = huge.clone())),
            ("credential 0's name", Box::new(|m| m.credentials[0].name = huge.clone())),
            ("tool 0's name", Box::new(|m| m.tools[0].name = huge.clone())),
            ("tool `t` compensation", Box::new(|m| m.tools[0].compensation = Some(huge.clone()))),
        ];
        for (what, edit) in cases {
            let mut m = manifest(vec![plain_tool()]);
            edit(&mut m);
            match check(m, None) {
                Err(e @ LoadError::ManifestTooLarge { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(what), "{what}: {text}");
                    assert!(text.len() < 200, "{what}: the error echoes the string");
                }
                Err(e) => panic!("{what}: wrong error {e}"),
                Ok(_) => panic!("{what}: accepted"),
            }
        }
    }

    /// Issue 13 §1: ~2,200 `\p{L}{20}` patterns in one 64 KiB schema passed 1.5 GiB at load;
    /// spread over tools they share the plugin's budget too.
    #[test]
    fn patterns_share_the_plugins_regex_budget() {
        let schema = |n: usize| {
            let props: serde_json::Map<String, serde_json::Value> = (0..n)
                .map(|i| (format!("p{i}"), serde_json::json!({"pattern": format!("\\p{{L}}{{20}}{i}")})))
                .collect();
            serde_json::json!({"properties": props}).to_string()
        };
        assert!(schema(550).len() < MAX_SCHEMA);
        let tools = (0..4).map(|i| tool(&format!("t{i}"), schema(550))).collect();
        let started = std::time::Instant::now();
        let e = check(manifest(tools), None).err().expect("refused");
        assert!(e.to_string().contains("regex budget"), "{e}");
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    fn declared(tool: &str, scopes: &[&str]) -> ToolRequests {
        ToolRequests { tool: tool.into(), scopes: scopes.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn declared_requests_attach_to_their_tools() {
        let m = manifest(vec![plain_tool(), tool("u", r#"{"type":"object"}"#.into())]);
        let checked =
            check(m, Some(vec![declared("t", &["GET api.example.test/items/*"]), declared("u", &[])])).unwrap();
        let scopes = |i: usize| checked.manifest.tools[i].requests.as_ref().map(|r| r.len());
        assert_eq!((scopes(0), scopes(1)), (Some(1), Some(0)));
        let none = check(manifest(vec![plain_tool()]), None).unwrap();
        assert!(none.manifest.tools[0].requests.is_none());
    }

    /// What a plugin's `requests` export may get wrong, each refused at load with the tool and
    /// the reason, and never echoing an oversized string.
    #[test]
    fn malformed_declarations_are_refused() {
        let refused = |requests: Vec<ToolRequests>| match check(manifest(vec![plain_tool()]), Some(requests)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        };
        let e = refused(vec![declared("nope", &["GET api.example.test/x"])]);
        assert!(e.contains("`nope` is not a tool of this plugin"), "{e}");
        let e = refused(vec![declared("t", &[]), declared("t", &[])]);
        assert!(e.contains("tool `t` is declared twice"), "{e}");
        let e = refused(vec![declared("t", &["get api.example.test/x"])]);
        assert!(e.contains("tool `t` requests: invalid request scope"), "{e}");
        let e = refused(vec![declared("t", &["GET other.test/x"])]);
        assert!(e.contains("`GET other.test/x` is for a host the manifest's hosts do not cover"), "{e}");
        let e = refused(vec![declared("t", &["GET api.example.test/../admin"])]);
        assert!(e.contains("dot segments"), "{e}");
        let many: Vec<String> = (0..65).map(|i| format!("GET api.example.test/{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = refused(vec![declared("t", &many)]);
        assert!(e.contains("tool `t` request scopes") && e.contains("64"), "{e}");
        let huge = "x".repeat(1 << 20);
        let e = refused(vec![declared(&huge, &[])]);
        assert!(e.len() < 200, "echoes the name: {}", e.len());
        let e = refused(vec![declared("t", &[&format!("GET api.example.test/{huge}")])]);
        assert!(e.len() < 600, "echoes the scope: {}", e.len());
        let e = refused((0..=MAX_TOOLS).map(|_| declared("t", &[])).collect());
        assert!(e.contains("the request declarations"), "{e}");
    }

    /// A manifest host given as an IP address covers a scope naming that address.
    #[test]
    fn an_ip_host_covers_its_scope() {
        let mut m = manifest(vec![plain_tool()]);
        m.hosts = vec!["http://127.0.0.1:8080".into(), "https://api.example.test".into()];
        assert!(check(m, Some(vec![declared("t", &["GET 127.0.0.1/x"])])).is_ok());
    }
}
