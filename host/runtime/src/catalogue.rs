//! The tools a workflow can use: its plugins loaded into the sandbox with the workflow's grants,
//! and the mapping between qualified names (`ads.update_campaign`), the names models see
//! (`ads__update_campaign`, since vendors only accept `[a-zA-Z0-9_-]`) and handoff tools.

use std::collections::BTreeMap;

use tollgate_contract::{Manifest, ToolSpec};
use tollgate_models::ToolSpec as ModelTool;
use tollgate_sandbox::{Grants, Plugin, Sandbox, Upstream, sha256_hex};
use tollgate_workflow::{Diagnostic, Diagnostics, LoadedWorkflow, tool_matches};

use crate::error::RuntimeError;
use crate::options::RunOptions;
use crate::state::CallTarget;

/// Separates plugin and tool in model-visible names.
const MODEL_SEP: &str = "__";
/// Model-visible prefix of handoff tools: `handoff__copywriter`.
const HANDOFF_PREFIX: &str = "handoff__";

/// The loaded plugins of one workflow.
pub struct Catalogue {
    plugins: BTreeMap<String, Plugin>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue").field("plugins", &self.plugins.keys().collect::<Vec<_>>()).finish()
    }
}

/// Loads every plugin of `workflow` with the grants it declares, narrowed by the plugin's own
/// declarations (the sandbox intersects them) and remapped to the operator's upstreams.
pub async fn load(
    sandbox: &Sandbox,
    workflow: &LoadedWorkflow,
    options: &RunOptions,
) -> Result<Catalogue, RuntimeError> {
    let mut plugins = BTreeMap::new();
    for (name, decl) in &workflow.definition.plugins {
        let path = workflow.plugin_source(name);
        let bytes = std::fs::read(&path)
            .map_err(|e| RuntimeError::Plugin { plugin: name.clone(), message: format!("{}: {e}", path.display()) })?;
        let digest = sha256_hex(&bytes);
        if let Some(pin) = &decl.sha256
            && !pin.eq_ignore_ascii_case(&digest)
        {
            return Err(RuntimeError::Plugin {
                plugin: name.clone(),
                message: format!("{} has sha256 {digest}, but the workflow pins {pin}", path.display()),
            });
        }
        let grants = grants_for(workflow, name, options)?;
        let plugin = sandbox
            .load(&bytes, grants)
            .await
            .map_err(|e| RuntimeError::Plugin { plugin: name.clone(), message: e.to_string() })?;
        plugins.insert(name.clone(), plugin);
    }
    // What `tollgate validate` rejects, a run refuses too, before anything starts.
    let loaded = plugins.iter().map(|(name, p)| (name.as_str(), p.manifest(), p.digest(), p.plain().is_some()));
    check_manifests(workflow, loaded).map_err(|d| RuntimeError::Workflow(d.to_string()))?;
    // The operator's tool overrides, checked just above with file:line:col, now become what the
    // gate, the policy and the model see.
    for (name, plugin) in plugins.iter_mut() {
        let Some(decl) = workflow.definition.plugins.get(name) else { continue };
        *plugin = plugin
            .with_tool_overrides(&decl.tools)
            .map_err(|e| RuntimeError::Plugin { plugin: name.clone(), message: e.to_string() })?;
    }
    Ok(Catalogue { plugins })
}

/// The checks that need the plugins' manifests (`LoadedWorkflow::check_plugins`), the same for
/// `tollgate run` (in [`load`]) and `tollgate validate`. Each plugin is `(name, manifest,
/// sha256, plain)`. A plain component declares no hosts: its egress is what the operator
/// grants, so its grants are checked for shape, not narrowing. Its tools are checked as the
/// operator's overrides (`[plugins.<name>.tools.<tool>]`) leave them. On success, the warnings.
pub fn check_manifests<'a>(
    workflow: &LoadedWorkflow,
    plugins: impl IntoIterator<Item = (&'a str, &'a Manifest, &'a str, bool)>,
) -> Result<Vec<Diagnostic>, Diagnostics> {
    let mut refused = Vec::new();
    let mut manifests: BTreeMap<String, (Manifest, String)> = BTreeMap::new();
    for (name, manifest, sha256, plain) in plugins {
        let mut manifest = match workflow.apply_tool_overrides(name, manifest, plain) {
            Ok(applied) => applied,
            Err(d) => {
                refused.extend(d.0);
                manifest.clone()
            }
        };
        if plain && let Some(declared) = workflow.definition.plugins.get(name) {
            manifest.hosts = declared.grants.hosts.clone();
        }
        manifests.insert(name.to_string(), (manifest, sha256.to_string()));
    }
    match workflow.check_plugins(&manifests) {
        Ok(warnings) if refused.is_empty() => Ok(warnings),
        Ok(warnings) => Err(Diagnostics(refused.into_iter().chain(warnings).collect())),
        Err(d) => Err(Diagnostics(refused.into_iter().chain(d.0).collect())),
    }
}

/// The workflow's grants for one plugin (`LoadedWorkflow::grants`, as the sandbox's `Grants`)
/// plus the operator's upstream remaps for this run.
fn grants_for(workflow: &LoadedWorkflow, name: &str, options: &RunOptions) -> Result<Grants, RuntimeError> {
    let bad = |message: String| RuntimeError::Plugin { plugin: name.to_string(), message };
    let mut grants = workflow
        .grants(name)
        .map(Grants::from)
        .ok_or_else(|| bad("its grants are invalid; run `tollgate validate` on the workflow".into()))?;
    for (host, url) in &options.upstreams {
        grants = grants.upstream(host, Upstream::parse(url).map_err(bad)?);
    }
    grants.limits_ref().validate().map_err(|e| bad(e.to_string()))?;
    Ok(grants)
}

impl Catalogue {
    /// Builds a catalogue from plugins already loaded (benchmarks and tests).
    pub fn from_plugins(plugins: BTreeMap<String, Plugin>) -> Catalogue {
        Catalogue { plugins }
    }

    pub fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins.get(name)
    }

    /// The plugin and tool spec behind a qualified name.
    pub fn tool(&self, qualified: &str) -> Option<(&Plugin, &ToolSpec)> {
        let (plugin, tool) = qualified.split_once('.')?;
        let plugin = self.plugins.get(plugin)?;
        let spec = plugin.manifest().tool(tool)?;
        Some((plugin, spec))
    }

    /// Qualified names of every tool matching one of `patterns`, sorted.
    pub fn tools_matching(&self, patterns: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (name, plugin) in &self.plugins {
            for tool in &plugin.manifest().tools {
                let qualified = format!("{name}.{}", tool.name);
                if patterns.iter().any(|p| tool_matches(p, &qualified)) {
                    out.push(qualified);
                }
            }
        }
        out
    }

    /// The tool list a model sees for an agent: its tools, then one handoff tool per target.
    pub fn model_tools(&self, tools: &[String], handoffs: &[(String, serde_json::Value, String)]) -> Vec<ModelTool> {
        let mut out: Vec<ModelTool> = tools
            .iter()
            .filter_map(|q| {
                let (_, spec) = self.tool(q)?;
                Some(ModelTool {
                    name: model_name(q),
                    description: spec.description.clone(),
                    input_schema: spec.input_schema.clone(),
                })
            })
            .collect();
        for (agent, schema, description) in handoffs {
            out.push(ModelTool {
                name: format!("{HANDOFF_PREFIX}{agent}"),
                description: description.clone(),
                input_schema: schema.clone(),
            });
        }
        out
    }
}

/// `ads.update_campaign` → `ads__update_campaign`.
pub fn model_name(qualified: &str) -> String {
    qualified.replacen('.', MODEL_SEP, 1)
}

/// Resolves a model-visible name against the tools and handoffs an agent has. Anything else is
/// [`CallTarget::Unknown`]: the gate denies it and tells the model which tools exist.
pub fn resolve(model_name: &str, tools: &[String], handoffs: &[String]) -> CallTarget {
    if let Some(agent) = model_name.strip_prefix(HANDOFF_PREFIX)
        && handoffs.iter().any(|h| h == agent)
    {
        return CallTarget::Handoff { to: agent.to_string() };
    }
    match model_name.split_once(MODEL_SEP) {
        Some((plugin, tool)) => {
            let qualified = format!("{plugin}.{tool}");
            if tools.contains(&qualified) { CallTarget::Tool { qualified } } else { CallTarget::Unknown }
        }
        None => CallTarget::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let tools = vec!["ads.update_campaign".to_string(), "crm.add_note".to_string()];
        let handoffs = vec!["copywriter".to_string()];
        assert_eq!(model_name("ads.update_campaign"), "ads__update_campaign");
        assert_eq!(
            resolve("ads__update_campaign", &tools, &handoffs),
            CallTarget::Tool { qualified: "ads.update_campaign".into() }
        );
        assert_eq!(resolve("handoff__copywriter", &tools, &handoffs), CallTarget::Handoff { to: "copywriter".into() });
        assert_eq!(resolve("handoff__analyst", &tools, &handoffs), CallTarget::Unknown);
        assert_eq!(resolve("email__send_email", &tools, &handoffs), CallTarget::Unknown);
        assert_eq!(resolve("update_campaign", &tools, &handoffs), CallTarget::Unknown);
    }
}
