//! From the checked TOML tree to a [`Workflow`]: reads the values the generic pass accepted,
//! applies defaults, and checks what needs no plugin manifest: host patterns and secret
//! sources parse, tool patterns name declared plugins, agents named in `entry` and `handoffs`
//! exist, `accepts` is a JSON Schema. Policy and steps are in [`crate::rules`] and
//! [`crate::steps`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use tollgate_contract::pattern::HostPattern;
use tollgate_contract::{Effects, RequestScope, SecretSource, ToolOverride};
use toml::de::DeTable;

use crate::diagnostics::{Reporter, suggestion};
use crate::format::{
    Agent, InstanceMode, KvGrant, PluginConfig, PluginGrants, PluginLimits, RunBounds, Sampling, ToolChoice, Workflow,
};
use crate::shape::View;
use crate::spans::{Node, span_at_pointer, to_json};
use crate::spec::{
    AGENT, GRANTS, LIMITS, MAX_TOOL_DESCRIPTION, PLUGIN, POLICY, ROOT, RUN, SAMPLING, STEP, TOOL_OVERRIDE,
};

/// What later passes need to resolve names.
pub(crate) struct Names {
    pub plugins: Vec<String>,
    pub agents: Vec<String>,
}

impl Names {
    pub fn plugin_refs(&self) -> Vec<&str> {
        self.plugins.iter().map(String::as_str).collect()
    }
    pub fn agent_refs(&self) -> Vec<&str> {
        self.agents.iter().map(String::as_str).collect()
    }
}

pub(crate) fn decode(r: &mut Reporter<'_>, src: &str, root: &DeTable<'_>) -> Workflow {
    let top = View::new(root, &ROOT);
    let text = |k: &str| top.str(k).map(|(s, _)| s.to_string());
    let plugins: BTreeMap<String, PluginConfig> =
        top.named("plugins", &PLUGIN).into_iter().map(|(name, _, _, v)| (name.to_string(), plugin(r, v))).collect();
    let agent_views = top.named("agents", &AGENT);
    let names = Names {
        plugins: plugins.keys().cloned().collect(),
        agents: agent_views.iter().map(|a| a.0.to_string()).collect(),
    };
    let agents: BTreeMap<String, Agent> = agent_views
        .iter()
        .map(|(name, _, span, v)| (name.to_string(), agent(r, &names, name, span.clone(), *v)))
        .collect();

    let step_views = top.array("steps", &STEP);
    let steps = crate::steps::decode(r, src, &names, &step_views);
    match top.str("entry") {
        Some((entry, span)) if !names.agents.iter().any(|a| a == entry) => r.error_help(
            span,
            format!("`entry` names agent `{entry}`, which is not defined"),
            suggestion(entry, &names.agent_refs(), "agents"),
        ),
        None if step_views.is_empty() && !top.has("entry") && !agent_views.is_empty() => {
            r.error(0..0, "`entry` is required when there are no `[[steps]]`: which agent does a run start with?")
        }
        _ => {}
    }
    if agent_views.is_empty() && step_views.is_empty() {
        r.error_help(
            0..0,
            "the workflow has no agents and no steps: nothing would run",
            "add `[agents.<name>]` or `[[steps]]`",
        );
    }
    warn_unreachable(r, &top, &agents, &steps);
    let policy = top.table("policy", &POLICY).map(|p| crate::rules::decode(r, src, &names, p)).unwrap_or_default();

    Workflow {
        name: text("name").unwrap_or_default(),
        version: text("version").unwrap_or_default(),
        description: text("description").unwrap_or_default(),
        entry: text("entry"),
        goal: text("goal"),
        run: top.table("run", &RUN).map(run).unwrap_or_default(),
        plugins,
        agents,
        policy,
        steps,
    }
}

fn run(v: View<'_, '_>) -> RunBounds {
    let d = RunBounds::default();
    let int = |k: &str, default: u64| v.int(k).map_or(default, |n| n as u64);
    RunBounds {
        max_steps: int("max_steps", d.max_steps),
        max_tool_calls: int("max_tool_calls", d.max_tool_calls),
        max_fuel: int("max_fuel", d.max_fuel),
        max_tokens: int("max_tokens", d.max_tokens),
        deadline: v.duration("deadline").unwrap_or(d.deadline),
        approval_expiry: v.duration("approval_expiry").unwrap_or(d.approval_expiry),
        max_output_tokens: int("max_output_tokens", d.max_output_tokens),
        max_repeated_refusals: int("max_repeated_refusals", d.max_repeated_refusals),
    }
}

fn plugin(r: &mut Reporter<'_>, v: View<'_, '_>) -> PluginConfig {
    let mut grants = PluginGrants::default();
    if let Some(g) = v.table("grants", &GRANTS) {
        for (host, span) in g.strs("hosts") {
            if let Err(e) = HostPattern::parse(host) {
                r.error_help(
                    span,
                    e.to_string(),
                    "write [scheme://]host[:port], e.g. api.example.com or *.example.com",
                );
            }
            grants.hosts.push(host.to_string());
        }
        if let Some(creds) = g.node("credentials").and_then(|n| n.get_ref().as_table()) {
            for (k, val) in creds.iter() {
                let Some(s) = val.get_ref().as_str() else { continue };
                if let Err(e) = SecretSource::parse(s) {
                    r.error(val.span(), format!("credential `{}`: {e}", k.get_ref()));
                }
                grants.credentials.insert(k.get_ref().to_string(), s.to_string());
            }
        }
        grants.kv = match g.node("kv").map(|n| n.get_ref()) {
            Some(toml::de::DeValue::Boolean(true)) => KvGrant::Workflow,
            Some(toml::de::DeValue::String(s)) => KvGrant::Namespace(s.to_string()),
            _ => KvGrant::Off,
        };
        grants.log = g.bool("log").unwrap_or(true);
        if let Some(requests) = g.node("requests").and_then(|n| n.get_ref().as_table()) {
            for (tool, list) in requests.iter() {
                let Some(items) = list.get_ref().as_array() else { continue };
                let mut scopes = Vec::new();
                for item in items.iter() {
                    let Some(s) = item.get_ref().as_str() else { continue };
                    if let Err(e) = RequestScope::parse(s) {
                        r.error(item.span(), format!("tool `{}`: {e}", tool.get_ref()));
                    }
                    scopes.push(s.to_string());
                }
                grants.requests.insert(tool.get_ref().to_string(), scopes);
            }
        }
    }
    let limits = v
        .table("limits", &LIMITS)
        .map(|l| PluginLimits {
            fuel: l.int("fuel").map(|n| n as u64),
            memory: l.bytes("memory"),
            timeout: l.duration("timeout"),
            max_http_requests: l.int("max_http_requests").map(|n| n as u64),
        })
        .unwrap_or_default();
    let tools = v
        .named("tools", &TOOL_OVERRIDE)
        .into_iter()
        .map(|(tool, _, _, t)| (tool.to_string(), tool_override(r, t)))
        .collect();
    PluginConfig {
        tools,
        source: v.str("source").map(|(s, _)| PathBuf::from(s)).unwrap_or_default(),
        sha256: v.str("sha256").map(|(s, _)| s.to_string()),
        grants,
        limits,
        instances: match v.str("instances") {
            Some(("per-run", _)) => InstanceMode::PerRun,
            _ => InstanceMode::Fresh,
        },
    }
}

/// One `[plugins.<name>.tools.<tool>]`. The generic pass has checked the types and effect
/// names; whether the tool exists, and whether the plugin takes overrides at all, needs the
/// component (`check`).
fn tool_override(r: &mut Reporter<'_>, v: View<'_, '_>) -> ToolOverride {
    let description = v.str("description").map(|(text, span)| {
        if text.trim().is_empty() {
            r.error(span, "an empty description: the model chooses tools by it");
        } else if text.len() > MAX_TOOL_DESCRIPTION {
            r.error(span, format!("the description is {} bytes, over the limit of {MAX_TOOL_DESCRIPTION}", text.len()));
        }
        text.to_string()
    });
    // An unknown effect name is already an error from the generic pass: the default never
    // reaches a run.
    let effects = v
        .node("effects")
        .map(|_| Effects::from_names(v.strs("effects").into_iter().map(|(e, _)| e)).unwrap_or_default());
    ToolOverride { description, effects }
}

fn agent(r: &mut Reporter<'_>, names: &Names, name: &str, span: Range<usize>, v: View<'_, '_>) -> Agent {
    let tools: Vec<String> = v
        .strs("tools")
        .into_iter()
        .map(|(p, s)| {
            check_tool_pattern(r, names, p, s, true);
            p.to_string()
        })
        .collect();
    let mut handoffs = Vec::new();
    for (h, s) in v.strs("handoffs") {
        if h == name {
            r.error(s, format!("agent `{name}` cannot hand off to itself"));
        } else if !names.agents.iter().any(|a| a == h) {
            r.error_help(
                s,
                format!("handoff to agent `{h}`, which is not defined"),
                suggestion(h, &names.agent_refs(), "agents"),
            );
        }
        handoffs.push(h.to_string());
    }
    // An invalid `tools` or `handoffs` is already an error; the warning would only repeat it.
    let invalid = |k: &str| v.has(k) && v.node(k).is_none();
    if tools.is_empty() && handoffs.is_empty() && !invalid("tools") && !invalid("handoffs") {
        r.warning(
            span,
            format!("agent `{name}` has no tools and no handoffs: it can only answer in text"),
            Some("that is fine for a final writer; otherwise add `tools` or `handoffs`".into()),
        );
    }
    Agent {
        model: v.str("model").map(|(s, _)| s.to_string()),
        description: v.str("description").map(|(s, _)| s.to_string()).unwrap_or_default(),
        instructions: v.str("instructions").map(|(s, _)| s.to_string()).unwrap_or_default(),
        tools,
        handoffs,
        max_steps: v.int("max_steps").map(|n| n as u64),
        accepts: v.node("accepts").and_then(|n| accepts_schema(r, name, n)),
        tool_choice: match v.str("tool_choice") {
            Some(("required", _)) => ToolChoice::Required,
            Some(("none", _)) => ToolChoice::None,
            _ => ToolChoice::Auto,
        },
        sampling: v.table("sampling", &SAMPLING).map(|s| sampling(r, name, s)).unwrap_or_default(),
    }
}

/// Most servers (OpenAI's among them) take at most four stop sequences, and an empty one
/// would end every turn at once.
const MAX_STOP_SEQUENCES: usize = 4;

fn sampling(r: &mut Reporter<'_>, agent: &str, v: View<'_, '_>) -> Sampling {
    let stop = v.strs("stop");
    if let (Some(span), true) = (v.node("stop").map(|n| n.span()), stop.len() > MAX_STOP_SEQUENCES) {
        let message = format!(
            "`agents.{agent}.sampling.stop` has {} texts; model servers accept at most {MAX_STOP_SEQUENCES}",
            stop.len()
        );
        r.error(span, message);
    }
    for (text, span) in &stop {
        if text.is_empty() {
            r.error(span.clone(), "an empty stop text would end every turn before it starts");
        }
    }
    Sampling {
        temperature: v.number("temperature"),
        top_p: v.number("top_p"),
        stop: stop.into_iter().map(|(s, _)| s.to_string()).collect(),
        seed: v.int("seed").and_then(|n| u64::try_from(n).ok()),
    }
}

/// `accepts` as JSON, if it is a valid JSON Schema; otherwise reports where it is not.
fn accepts_schema(r: &mut Reporter<'_>, agent: &str, node: &Node<'_>) -> Option<serde_json::Value> {
    let json = match to_json(node) {
        Ok(j) => j,
        Err((span, m)) => {
            r.error(span, m);
            return None;
        }
    };
    if let Err(e) = jsonschema::meta::validate(&json) {
        let span = span_at_pointer(node, e.instance_path().as_str());
        r.error(span, format!("`agents.{agent}.accepts` is not a valid JSON Schema: {e}"));
        return None;
    }
    let patterns = jsonschema::PatternOptions::regex().size_limit(1 << 20).dfa_size_limit(1 << 20);
    if let Err(e) = jsonschema::options().with_pattern_options(patterns).build(&json) {
        r.error(node.span(), format!("`agents.{agent}.accepts` is not a usable JSON Schema: {e}"));
        return None;
    }
    Some(json)
}

/// Checks the syntax of a tool pattern and that its plugin part names a declared plugin.
/// Whether the tool part matches a tool needs the manifests (`check_plugins`).
pub(crate) fn check_tool_pattern(r: &mut Reporter<'_>, names: &Names, pattern: &str, span: Range<usize>, glob: bool) {
    if glob && pattern == "*" {
        return;
    }
    let seg_ok = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '*'))
    };
    let Some((plugin, tool)) = pattern.split_once('.').filter(|(p, t)| seg_ok(p) && seg_ok(t)) else {
        let form =
            if glob { "`plugin.tool`, a glob such as `ads.*` or `*.send_email`, or `*`" } else { "`plugin.tool`" };
        r.error(span, format!("`{pattern}` is not a tool name: write {form}"));
        return;
    };
    if !glob && pattern.contains('*') {
        r.error(span, format!("`{pattern}`: a step calls exactly one tool, globs are not allowed here"));
        return;
    }
    let _ = tool;
    if plugin.contains('*') {
        if !names.plugins.iter().any(|p| crate::glob_segment(plugin, p)) {
            r.error(span, format!("`{pattern}` matches no declared plugin"));
        }
    } else if !names.plugins.iter().any(|p| p == plugin) {
        r.error_help(
            span,
            format!("unknown plugin `{plugin}` in `{pattern}`"),
            suggestion(plugin, &names.plugin_refs(), "declared plugins"),
        );
    }
}

/// Warns about agents nothing starts or hands off to: likely a forgotten `handoffs` entry.
fn warn_unreachable(r: &mut Reporter<'_>, top: &View<'_, '_>, agents: &BTreeMap<String, Agent>, steps: &[crate::Step]) {
    let entry = top.str("entry").map(|(s, _)| s);
    if entry.is_none() && steps.is_empty() {
        return; // no starting point at all: that is an error of its own
    }
    for (name, _, span, _) in top.named("agents", &AGENT) {
        let reached = entry == Some(name)
            || agents.values().any(|a| a.handoffs.iter().any(|h| h == name))
            || steps.iter().any(|s| matches!(s, crate::Step::Agent { agent, .. } if agent == name));
        if !reached {
            r.warning(
                span,
                format!("agent `{name}` is never run: it is not the entry, no agent hands off to it, no step runs it"),
                None,
            );
        }
    }
}
