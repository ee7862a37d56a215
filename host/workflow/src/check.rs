//! Checks that need the plugins' manifests. The stored source is re-parsed to find spans by
//! path (cheaper than keeping a span for every item, and always in step with the file).
//! Patterns whose plugins are missing from the manifests are skipped: the missing plugin is
//! reported once, at its `source`.

use std::collections::BTreeMap;
use std::ops::Range;

use tollgate_contract::pattern::{HostMatch, HostPattern};
use tollgate_contract::{Manifest, ToolSpec};
use toml::de::DeTable;

use crate::diagnostics::{Diagnostics, Reporter, did_you_mean, suggestion};
use crate::expr::{Program, fields_of};
use crate::spans::{Seg, SourceMap, key_span, offset_in_string, value_span};
use crate::{LoadedWorkflow, Step, StepInput, tool_matches};

type Manifests = BTreeMap<String, (Manifest, String)>;
/// A cap's tool glob and the expression (if any) that reads its input.
type CapEntry<'p> = (&'p str, Option<&'p Program>);

struct Checker<'a> {
    r: Reporter<'a>,
    root: &'a DeTable<'a>,
    src: &'a str,
    manifests: &'a Manifests,
    /// (plugin, tool) of every loaded manifest.
    tools: Vec<(&'a str, &'a ToolSpec)>,
    /// Local names of declared plugins that have no manifest.
    missing: Vec<&'a str>,
}

pub(crate) fn check(lw: &LoadedWorkflow, manifests: &Manifests) -> Diagnostics {
    let map = SourceMap::new(lw.display_path(), &lw.source);
    let Ok(root) = DeTable::parse(&lw.source) else {
        // `load` parsed this very text; it cannot fail now.
        return Diagnostics(vec![crate::Diagnostic::whole_file(lw.display_path(), "the workflow no longer parses")]);
    };
    let w = &lw.definition;
    let mut c = Checker {
        r: Reporter::new(&map),
        root: root.get_ref(),
        src: &lw.source,
        manifests,
        tools: manifests.iter().flat_map(|(p, (m, _))| m.tools.iter().map(move |t| (p.as_str(), t))).collect(),
        missing: w.plugins.keys().filter(|p| !manifests.contains_key(*p)).map(String::as_str).collect(),
    };
    for (name, cfg) in &w.plugins {
        let at = |k: &'static str| [Seg::Key("plugins"), Seg::Key(name), Seg::Key(k)];
        let Some((m, digest)) = manifests.get(name) else {
            let span = value_span(c.root, &at("source"));
            c.r.error(span, format!("plugin `{name}` was not loaded, so its tools, grants and pin are unchecked"));
            continue;
        };
        if let Some(pin) = &cfg.sha256
            && pin != digest
        {
            c.r.error_help(
                value_span(c.root, &at("sha256")),
                format!("sha256 mismatch for plugin `{name}`: the component's digest is {digest}"),
                "if the plugin was rebuilt or upgraded on purpose, update the pin",
            );
        }
        c.grants(name, cfg, m);
    }
    for (name, agent) in &w.agents {
        for (i, pattern) in agent.tools.iter().enumerate() {
            let path = [Seg::Key("agents"), Seg::Key(name), Seg::Key("tools"), Seg::Index(i)];
            c.matched(pattern, &path);
        }
    }
    for (i, step) in w.steps.iter().enumerate() {
        if let Step::Tool { tool, input, .. } = step {
            let path = [Seg::Key("steps"), Seg::Index(i), Seg::Key("tool")];
            let Some(matched) = c.matched(tool, &path) else { continue };
            if let (Some((_, spec)), StepInput::Literal(value)) = (matched.first(), input) {
                c.step_input(i, spec, value);
            }
        }
    }
    c.policy(lw);
    c.r.finish()
}

/// `[plugins.<name>.tools.<tool>]` against the loaded component: only a foreign (plain)
/// component takes overrides, and only for tools it offers. On success, the manifest with the
/// overrides applied; otherwise the errors, each at the key it is about.
pub(crate) fn tool_overrides(
    lw: &LoadedWorkflow,
    plugin: &str,
    manifest: &Manifest,
    foreign: bool,
) -> Result<Manifest, Diagnostics> {
    let mut applied = manifest.clone();
    let Some(cfg) = lw.definition.plugins.get(plugin).filter(|c| !c.tools.is_empty()) else { return Ok(applied) };
    let map = SourceMap::new(lw.display_path(), &lw.source);
    let Ok(root) = DeTable::parse(&lw.source) else {
        return Err(Diagnostics(vec![crate::Diagnostic::whole_file(
            lw.display_path(),
            "the workflow no longer parses",
        )]));
    };
    let mut r = Reporter::new(&map);
    let root = root.get_ref();
    if !foreign {
        r.error_help(
            key_span(root, &[Seg::Key("plugins"), Seg::Key(plugin), Seg::Key("tools")]),
            format!("plugin `{plugin}` is a Tollgate plugin: its manifest is its author's contract, so its tools cannot be overridden"),
            "overrides are for foreign (plain) components; to change a Tollgate plugin's tools, change its manifest",
        );
        return Err(r.finish());
    }
    let offered: Vec<&str> = manifest.tools.iter().map(|t| t.name.as_str()).collect();
    for tool in cfg.tools.keys() {
        if !offered.contains(&tool.as_str()) {
            r.error_help(
                key_span(root, &[Seg::Key("plugins"), Seg::Key(plugin), Seg::Key("tools"), Seg::Key(tool)]),
                format!("plugin `{plugin}` offers no tool `{tool}`, so there is nothing to override"),
                suggestion(tool, &offered, "it offers"),
            );
        }
    }
    let found = r.finish();
    if found.has_errors() {
        return Err(found);
    }
    // Every name was checked above.
    let _ = applied.apply_overrides(&cfg.tools);
    Ok(applied)
}

impl<'a> Checker<'a> {
    fn grants(&mut self, name: &str, cfg: &crate::PluginConfig, m: &Manifest) {
        let declared: Vec<HostPattern> = m.hosts.iter().filter_map(|h| HostPattern::parse(h).ok()).collect();
        let mut granted = Vec::new();
        for (i, host) in cfg.grants.hosts.iter().enumerate() {
            let Ok(g) = HostPattern::parse(host) else { continue };
            let covered = declared
                .iter()
                .any(|d| d.scheme == g.scheme && d.port.is_none_or(|p| Some(p) == g.port) && d.host.covers(&g.host));
            if !covered {
                let path = [Seg::Key("plugins"), Seg::Key(name), Seg::Key("grants"), Seg::Key("hosts"), Seg::Index(i)];
                let declares = if m.hosts.is_empty() { "no hosts".to_string() } else { m.hosts.join(", ") };
                self.r.error_help(
                    value_span(self.root, &path),
                    format!("grant `{host}` is wider than what plugin `{name}` declares"),
                    format!("grants can only narrow; the plugin declares: {declares}"),
                );
            }
            granted.push(g);
        }
        for cred in cfg.grants.credentials.keys() {
            let path =
                [Seg::Key("plugins"), Seg::Key(name), Seg::Key("grants"), Seg::Key("credentials"), Seg::Key(cred)];
            let span = key_span(self.root, &path);
            let Some(spec) = m.credentials.iter().find(|c| &c.name == cred) else {
                let known: Vec<&str> = m.credentials.iter().map(|c| c.name.as_str()).collect();
                let help = suggestion(cred, &known, "it declares");
                self.r.error_help(span, format!("plugin `{name}` declares no credential `{cred}`"), help);
                continue;
            };
            let Ok(bound) = HostPattern::parse(&spec.host) else { continue };
            // Same rule as the sandbox: a credential goes only to a host granted by name.
            let by_name = granted
                .iter()
                .any(|g| !matches!(g.host, HostMatch::Any | HostMatch::Ip(_)) && g.host.covers(&bound.host));
            if !by_name {
                self.r.error_help(
                    span,
                    format!(
                        "credential `{cred}` is sent to `{}`, which `grants.hosts` does not grant by name",
                        spec.host
                    ),
                    format!("add \"{}\" to plugins.{name}.grants.hosts (a `*` grant does not count)", spec.host),
                );
            }
        }
        let offered: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
        for (tool, scopes) in &cfg.grants.requests {
            let path = [Seg::Key("plugins"), Seg::Key(name), Seg::Key("grants"), Seg::Key("requests"), Seg::Key(tool)];
            if !offered.contains(&tool.as_str()) {
                let help = suggestion(tool, &offered, "it offers");
                self.r.error_help(key_span(self.root, &path), format!("plugin `{name}` offers no tool `{tool}`"), help);
                continue;
            }
            // A scope for a host no grant covers can never match: say so rather than let the
            // tool fail at its first request.
            for (i, scope) in scopes.iter().enumerate() {
                let Ok(parsed) = tollgate_contract::RequestScope::parse(scope) else { continue };
                let reachable = granted.iter().any(|g| g.host.covers(&parsed.host));
                if !reachable {
                    let mut at = path.to_vec();
                    at.push(Seg::Index(i));
                    self.r.error_help(
                        value_span(self.root, &at),
                        format!(
                            "`{scope}` names a host plugins.{name}.grants.hosts does not grant, so it can never match"
                        ),
                        "grant the host too, or correct the scope",
                    );
                }
            }
        }
    }

    /// The tools `pattern` matches, or `None` (after reporting) when it matches none. Patterns
    /// that can only match plugins without a manifest are not checked (`None`, no report).
    fn matched(&mut self, pattern: &str, path: &[Seg<'_>]) -> Option<Vec<(&'a str, &'a ToolSpec)>> {
        let hits: Vec<(&str, &ToolSpec)> =
            self.tools.iter().copied().filter(|(p, t)| tool_matches(pattern, &format!("{p}.{}", t.name))).collect();
        if !hits.is_empty() {
            return Some(hits);
        }
        let plugin_part = pattern.split_once('.').map_or("*", |(p, _)| p);
        if self.missing.iter().any(|p| crate::glob_segment(plugin_part, p)) {
            return None;
        }
        let help = self.tool_suggestion(pattern, plugin_part);
        self.r.error_help(value_span(self.root, path), format!("`{pattern}` matches no tool"), help);
        None
    }

    /// "did you mean" for a pattern that matches nothing: the whole name for `plugin.tool`, the
    /// tool part for a glob over plugins; else the plugin's tools.
    fn tool_suggestion(&self, pattern: &str, plugin_part: &str) -> String {
        let tool_part = pattern.split_once('.').map_or(pattern, |(_, t)| t);
        let guess = if plugin_part.contains('*') {
            let tools: Vec<&str> = self.tools.iter().map(|(_, t)| t.name.as_str()).collect();
            did_you_mean(tool_part, tools).map(|t| format!("{plugin_part}.{t}"))
        } else {
            let names: Vec<String> = self.tools.iter().map(|(p, t)| format!("{p}.{}", t.name)).collect();
            did_you_mean(pattern, names.iter().map(String::as_str)).map(str::to_string)
        };
        match (guess, self.manifests.get(plugin_part)) {
            (Some(g), _) => format!("did you mean `{g}`?"),
            (None, Some((m, _))) => {
                let tools = m.tools.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ");
                format!("plugin `{plugin_part}` has: {tools}")
            }
            (None, None) => "no tool has that name".to_string(),
        }
    }

    fn step_input(&mut self, i: usize, spec: &ToolSpec, value: &serde_json::Value) {
        let patterns = jsonschema::PatternOptions::regex().size_limit(1 << 20).dfa_size_limit(1 << 20);
        let Ok(validator) = jsonschema::options().with_pattern_options(patterns).build(&spec.input_schema) else {
            return;
        };
        let errors: Vec<String> = validator
            .iter_errors(value)
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "(root)" } else { &at })
            })
            .collect();
        if !errors.is_empty() {
            let path = [Seg::Key("steps"), Seg::Index(i), Seg::Key("input")];
            let span = match crate::spans::lookup(self.root, &path) {
                Some((_, v)) => v.span(),
                None => value_span(self.root, &[Seg::Key("steps"), Seg::Index(i)]),
            };
            self.r.error(
                span,
                format!("steps[{i}].input does not fit the input schema of `{}`: {}", spec.name, errors.join("; ")),
            );
        }
    }

    fn policy(&mut self, lw: &LoadedWorkflow) {
        let p = &lw.definition.policy;
        for (i, rule) in p.approvals.iter().enumerate() {
            let base = [Seg::Key("policy"), Seg::Key("approvals"), Seg::Index(i)];
            let matched = match &rule.tool {
                Some(glob) => self.matched(glob, &[base[0], base[1], base[2], Seg::Key("tool")]),
                None if self.missing.is_empty() => Some(self.tools.clone()),
                None => None,
            };
            let Some(mut matched) = matched else { continue };
            if !rule.effects.is_empty() {
                matched.retain(|(_, t)| t.effects.names().iter().any(|e| rule.effects.iter().any(|r| r == e)));
                if matched.is_empty() {
                    let span = value_span(self.root, &[base[0], base[1], base[2], Seg::Key("effects")]);
                    let tools = rule.tool.as_deref().unwrap_or("*");
                    let m =
                        format!("no tool matched by `{tools}` declares any of these effects: the rule never applies");
                    self.r.warning(span, m, None);
                    continue;
                }
            }
            if let Some(when) = &rule.when {
                self.input_fields(when, &matched, &[base[0], base[1], base[2], Seg::Key("when")]);
            }
        }
        let lists: [(&str, Vec<CapEntry<'_>>, &str); 3] = [
            ("spend_caps", p.spend_caps.iter().map(|c| (c.tool.as_str(), Some(&c.cost))).collect(), "cost"),
            ("rate_limits", p.rate_limits.iter().map(|c| (c.tool.as_str(), None)).collect(), ""),
            ("frequency_caps", p.frequency_caps.iter().map(|c| (c.tool.as_str(), Some(&c.target))).collect(), "target"),
        ];
        for (list, entries, key) in lists {
            for (i, (glob, program)) in entries.into_iter().enumerate() {
                let base = [Seg::Key("policy"), Seg::Key(list), Seg::Index(i)];
                let Some(matched) = self.matched(glob, &[base[0], base[1], base[2], Seg::Key("tool")]) else {
                    continue;
                };
                if let Some(program) = program {
                    self.input_fields(program, &matched, &[base[0], base[1], base[2], Seg::Key(key)]);
                }
            }
        }
    }

    /// Every `input.<field>` the expression reads must be a property of at least one matched
    /// tool's input schema (checked only when all of them list their properties).
    fn input_fields(&mut self, p: &Program, matched: &[(&str, &ToolSpec)], path: &[Seg<'_>]) {
        let props: Option<Vec<Vec<&str>>> = matched
            .iter()
            .map(|(_, t)| t.input_schema.get("properties")?.as_object().map(|o| o.keys().map(String::as_str).collect()))
            .collect();
        let Some(props) = props else { return };
        let span: Range<usize> = value_span(self.root, path);
        for (field, at) in fields_of(p, "input") {
            if props.iter().any(|ps| ps.contains(&field.as_str())) {
                continue;
            }
            let all: Vec<&str> = props.iter().flatten().copied().collect();
            let offset = offset_in_string(self.src, span.clone(), p.source(), at);
            let tools = matched.iter().map(|(pl, t)| format!("{pl}.{}", t.name)).collect::<Vec<_>>().join(", ");
            self.r.error_at(
                offset,
                format!("`input.{field}` is not in the input schema of {tools}"),
                Some(suggestion(&field, &all, "input fields")),
            );
        }
    }
}
