//! The manifest's conversion from the guest's WIT record and its validation, so a plugin with a
//! malformed manifest never loads. The types themselves are plain data in
//! [`tollgate_contract::manifest`].

use tollgate_contract::pattern::{HostMatch, HostPattern};
use tollgate_contract::{CredentialSpec, Effects, Manifest, ToolSpec};

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

/// Converts and validates. Every message names the offending tool, host or credential.
pub(crate) fn check(m: wit::Manifest) -> Result<Checked, LoadError> {
    check_bounds(&m)?;
    check_fields(m).map_err(LoadError::InvalidManifest)
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
        let checked = check(manifest(vec![plain_tool()])).unwrap();
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
            match check(m) {
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
        let e = check(manifest(tools)).err().expect("refused");
        assert!(e.to_string().contains("regex budget"), "{e}");
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }
}
