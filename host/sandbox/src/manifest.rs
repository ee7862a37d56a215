//! The manifest's conversion from the guest's WIT record and its validation, so a plugin with a
//! malformed manifest never loads. The types themselves are plain data in
//! [`tollgate_contract::manifest`].

use tollgate_contract::pattern::{HostMatch, HostPattern};
use tollgate_contract::{CredentialSpec, Effects, Manifest, ToolSpec};

use crate::bindings::tollgate::plugin::types as wit;
use crate::schema::Schema;

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

fn bounded(what: &str, len: usize, max: usize) -> Result<(), String> {
    if len > max { Err(format!("{what} is {len} long, over the limit of {max}")) } else { Ok(()) }
}

/// Converts and validates. Every message names the offending tool, host or credential.
pub(crate) fn check(m: wit::Manifest) -> Result<Checked, String> {
    bounded("the tool list", m.tools.len(), MAX_TOOLS)?;
    bounded("the host list", m.hosts.len(), MAX_HOSTS)?;
    bounded("the credential list", m.credentials.len(), MAX_CREDENTIALS)?;
    bounded("the description", m.description.len(), MAX_TEXT)?;
    for t in &m.tools {
        bounded(&format!("tool `{}` description", t.name), t.description.len(), MAX_TEXT)?;
        bounded(&format!("tool `{}` input schema", t.name), t.input_schema.len(), MAX_SCHEMA)?;
        bounded(
            &format!("tool `{}` output schema", t.name),
            t.output_schema.as_ref().map_or(0, String::len),
            MAX_SCHEMA,
        )?;
    }
    if !is_ident(&m.name, &['-'], 64) {
        return Err(format!("plugin name `{}` must match [a-z][a-z0-9_-]* (at most 64 characters)", m.name));
    }
    if !is_semver(&m.version) {
        return Err(format!("version `{}` is not a semantic version (MAJOR.MINOR.PATCH)", m.version));
    }
    let mut tools = Vec::new();
    let mut schemas = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in &m.tools {
        if !is_ident(&t.name, &[], 64) {
            return Err(format!("tool name `{}` must match [a-z][a-z0-9_]* (at most 64 characters)", t.name));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(format!("tool `{}` is declared twice", t.name));
        }
        if t.description.trim().is_empty() {
            return Err(format!("tool `{}` has no description (the model chooses tools by it)", t.name));
        }
        let input = Schema::compile(&t.input_schema).map_err(|e| format!("tool `{}` input schema: {e}", t.name))?;
        let output = t
            .output_schema
            .as_deref()
            .map(Schema::compile)
            .transpose()
            .map_err(|e| format!("tool `{}` output schema: {e}", t.name))?;
        schemas.push((input, output));
        tools.push(ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: serde_json::from_str(&t.input_schema).unwrap_or_default(),
            output_schema: t.output_schema.as_deref().map(|s| serde_json::from_str(s).unwrap_or_default()),
            effects: Effects {
                read: t.effects.contains(wit::Effects::READ),
                write: t.effects.contains(wit::Effects::WRITE),
                send_message: t.effects.contains(wit::Effects::SEND_MESSAGE),
                spend: t.effects.contains(wit::Effects::SPEND),
                delete: t.effects.contains(wit::Effects::DELETE),
            },
            idempotent: t.idempotent,
            compensation: t.compensation.clone(),
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
