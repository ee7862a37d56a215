//! `tollgate-workflow`: the workflow file. It owns the TOML format and its JSON Schema,
//! parsing with `file:line:column` diagnostics, validation against plugin manifests, and the
//! policy language (CEL, compiled once at load). It knows nothing of the store, models or the
//! agent loop.
//!
//! ```text
//! load(path) / parse(source, path)      TOML → generic pass (spec.rs) → Workflow + Policy
//!   └─ LoadedWorkflow::check_plugins    everything that needs the plugins' manifests
//!   └─ LoadedWorkflow::policy()         approval / caps decisions for one call
//! ```
//!
//! Every check collects all its findings; a finding points at the key or value at fault.
//! Warnings (e.g. an agent nothing runs) never make a workflow invalid; they are in
//! [`LoadedWorkflow::warnings`] on success and alongside the errors on failure.

mod cel_cost;
mod cel_json;
mod check;
mod decode;
mod diagnostics;
mod expr;
mod format;
mod policy;
mod rules;
mod schema;
mod shape;
mod spans;
mod spec;
mod steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tollgate_contract::pattern::HostPattern;
use tollgate_contract::{GrantSet, Limits, Manifest, RequestScope, SecretSource};
use toml::de::DeTable;

pub use cel_cost::MAX_EVAL_STEPS;
pub use cel_json::{eval_json, to_cel, to_json as cel_to_json};
pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use expr::Program;
pub use format::{
    Agent, InstanceMode, KvGrant, PluginConfig, PluginGrants, PluginLimits, RunBounds, Sampling, Step, StepInput,
    ToolChoice, Workflow,
};
pub use policy::{
    Action, ApprovalDecision, ApprovalRule, Authority, CallFacts, FrequencyCap, FrequencyTargets, Policy, PolicyError,
    PolicyErrorKind, RateLimit, RunFacts, SpendCap,
};
pub use schema::json_schema;

/// The variables a step's `input_expr` may read: `state` (earlier steps' results by id) and
/// `goal` (the run's goal).
pub const STEP_EXPR_VARS: &[&str] = steps::STEP_VARS;
/// The variables policy expressions may read (see [`Policy`]).
pub const POLICY_EXPR_VARS: &[&str] = policy::POLICY_VARS;

/// Workflow files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// A place in a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A parsed workflow that passed every check that needs no plugin.
#[derive(Debug, Clone)]
pub struct LoadedWorkflow {
    /// What the file defines.
    pub definition: Workflow,
    /// Absolute path of the file (plugin sources resolve against its directory).
    pub path: PathBuf,
    pub source: String,
    /// sha256 (hex) of the file's bytes.
    pub digest: String,
    /// Warnings found while loading.
    pub warnings: Vec<Diagnostic>,
    /// The path as given, for diagnostics.
    display_path: PathBuf,
}

/// Reads, parses and checks a workflow file (everything that needs no plugin manifest).
pub fn load(path: &Path) -> Result<LoadedWorkflow, Diagnostics> {
    let fail = |m: String| Diagnostics(vec![Diagnostic::whole_file(path, m)]);
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read the workflow: {e}")))?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(fail(format!("the workflow is {} bytes, over the limit of {MAX_FILE_BYTES}", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the workflow: {e}")))?;
    let source = String::from_utf8(bytes).map_err(|e| fail(format!("the workflow is not UTF-8: {e}")))?;
    parse(&source, path)
}

/// Parses and checks `source` as the workflow at `path` (used for positions and to resolve
/// relative paths; the file is not read).
pub fn parse(source: &str, path: &Path) -> Result<LoadedWorkflow, Diagnostics> {
    let map = spans::SourceMap::new(path, source);
    let mut r = diagnostics::Reporter::new(&map);
    let (root, syntax) = DeTable::parse_recoverable(source);
    if !syntax.is_empty() {
        // After a syntax error the recovered tree is a guess; checking it would mostly report
        // consequences of the error.
        for e in syntax {
            r.error(e.span().unwrap_or(0..0), format!("TOML syntax: {}", e.message()));
        }
        return Err(r.finish());
    }
    shape::check_document(&mut r, root.get_ref());
    let workflow = decode::decode(&mut r, source, root.get_ref());
    let found = r.finish();
    if found.has_errors() {
        return Err(found);
    }
    Ok(LoadedWorkflow {
        definition: workflow,
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        source: source.to_string(),
        digest: hex::encode(Sha256::digest(source.as_bytes())),
        warnings: found.0,
        display_path: path.to_path_buf(),
    })
}

impl LoadedWorkflow {
    /// The plugin's `source`, resolved against the workflow file's directory. An unknown
    /// plugin name gives an empty path (which no file has).
    pub fn plugin_source(&self, plugin: &str) -> PathBuf {
        match self.definition.plugins.get(plugin) {
            Some(p) => self.dir().join(&p.source),
            None => PathBuf::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.definition.policy
    }

    /// The path diagnostics name (as it was given to `load`/`parse`).
    pub fn display_path(&self) -> &Path {
        &self.display_path
    }

    /// Everything that needs the plugins' manifests (`manifests`: local plugin name →
    /// (manifest, sha256 of the component bytes)): pins match, grants only narrow what the
    /// plugin declares (hosts covered, credentials declared and their hosts granted by name),
    /// tool patterns match tools, step tools exist and literal step inputs fit their schemas,
    /// policy globs match tools and `input.<field>` reads name fields of those tools' schemas.
    /// A plugin missing from `manifests` is an error at its `source`. On success, the
    /// warnings (e.g. a rule no tool can trigger); on failure, errors and warnings.
    pub fn check_plugins(
        &self,
        manifests: &BTreeMap<String, (Manifest, String)>,
    ) -> Result<Vec<Diagnostic>, Diagnostics> {
        let found = check::check(self, manifests);
        if found.has_errors() { Err(found) } else { Ok(found.0) }
    }

    /// The workflow's `[plugins.<plugin>.tools.<tool>]` overrides against the loaded component
    /// (`foreign`: a plain component, not a Tollgate plugin): on success, `manifest` with them
    /// applied, as `check_plugins` and a run must see it; otherwise errors with file:line:col
    /// (overrides for a Tollgate plugin, or for a tool the component does not offer).
    pub fn apply_tool_overrides(
        &self,
        plugin: &str,
        manifest: &Manifest,
        foreign: bool,
    ) -> Result<Manifest, Diagnostics> {
        check::tool_overrides(self, plugin, manifest, foreign)
    }

    /// A diagnostic at the value of `key_path` (e.g. `["plugins", "ads", "source"]`), or at the
    /// nearest enclosing key that exists: for findings made outside this crate (a plugin file
    /// that cannot be read, a capability the grants do not cover).
    pub fn diagnostic_at(&self, key_path: &[&str], message: impl Into<String>, help: Option<String>) -> Diagnostic {
        let path: Vec<spans::Seg<'_>> = key_path.iter().map(|k| spans::Seg::Key(k)).collect();
        let span = match DeTable::parse(&self.source) {
            Ok(root) => spans::value_span(root.get_ref(), &path),
            Err(_) => 0..0,
        };
        let (line, column) = spans::SourceMap::new(&self.display_path, &self.source).line_col(span.start);
        Diagnostic {
            file: self.display_path.clone(),
            line,
            column,
            severity: Severity::Error,
            message: message.into(),
            help,
        }
    }

    /// The grants for `plugin` as the workflow declares them (deny by default; relative
    /// `file:` credential paths resolve against the workflow's directory), with its limits
    /// applied over [`Limits::default`]. `None` for an unknown plugin (or grants that do not
    /// parse, which `load` has already reported). The sandbox's `Grants` are built from this
    /// where the sandbox is linked (`impl From<GrantSet> for tollgate_sandbox::Grants`).
    pub fn grants(&self, plugin: &str) -> Option<GrantSet> {
        let cfg = self.definition.plugins.get(plugin)?;
        let hosts = cfg.grants.hosts.iter().map(|h| HostPattern::parse(h).ok()).collect::<Option<_>>()?;
        let mut credentials = BTreeMap::new();
        for (name, spec) in &cfg.grants.credentials {
            let source = match SecretSource::parse(spec).ok()? {
                SecretSource::File(p) => SecretSource::File(self.dir().join(p)),
                env => env,
            };
            credentials.insert(name.clone(), source);
        }
        Some(GrantSet {
            hosts,
            credentials,
            kv_namespace: cfg.grants.kv.namespace(&self.definition.name, plugin),
            log: cfg.grants.log,
            limits: cfg.limits.apply(Limits::default()),
            // Checked at load: a scope that does not parse is a load error.
            tool_requests: cfg
                .grants
                .requests
                .iter()
                .map(|(tool, scopes)| {
                    (tool.clone(), scopes.iter().filter_map(|s| RequestScope::parse(s).ok()).collect())
                })
                .collect(),
        })
    }
}

/// Whether a tool pattern matches a qualified tool name (`plugin.tool`). `*` alone matches
/// every tool; otherwise the pattern has a plugin and a tool segment and `*` matches any run
/// of characters within its segment: `ads.*`, `*.send_email`, `crm.get_*`.
pub fn tool_matches(pattern: &str, qualified: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (pattern.split_once('.'), qualified.split_once('.')) {
        (Some((pp, pt)), Some((qp, qt))) => glob_segment(pp, qp) && glob_segment(pt, qt),
        _ => false,
    }
}

/// `*`-glob over one segment (the text must not contain `.`).
pub(crate) fn glob_segment(pattern: &str, text: &str) -> bool {
    if text.contains('.') {
        return false;
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_globs_stay_within_segments() {
        assert!(tool_matches("*", "ads.update_campaign"));
        assert!(tool_matches("ads.*", "ads.update_campaign"));
        assert!(tool_matches("*.send_email", "email.send_email"));
        assert!(tool_matches("crm.get_*", "crm.get_contact"));
        assert!(tool_matches("crm.*_contact", "crm.get_contact"));
        assert!(tool_matches("ads.update_campaign", "ads.update_campaign"));
        assert!(!tool_matches("ads.*", "adsx.update_campaign"));
        assert!(!tool_matches("ads*", "ads.update_campaign"));
        assert!(!tool_matches("*.send", "email.send_email"));
        assert!(!tool_matches("a.*", "a.b.c"));
        assert!(!tool_matches("crm.get_*", "crm.create_contact"));
        assert!(glob_segment("*a*b", "xxaxxb") && !glob_segment("*a*b", "xxaxxbc"));
    }
}
