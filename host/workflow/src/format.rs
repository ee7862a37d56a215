//! The parsed workflow: plain data with defaults applied. Every field's doc names its TOML key
//! and default; README.md has the full reference and `spec.rs` the bounds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tollgate_contract::{Limits, ToolOverride};

use crate::expr::Program;
use crate::policy::Policy;

/// A whole workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// `name` (required): `[a-z0-9][a-z0-9-]{0,62}`.
    pub name: String,
    /// `version` (required): a semantic version.
    pub version: String,
    /// `description`. Default: empty.
    pub description: String,
    /// `entry`: the agent a goal-driven run starts with. Required unless `steps` is not empty.
    pub entry: Option<String>,
    /// `goal`: the default goal. Default: none (the run must be given one).
    pub goal: Option<String>,
    /// `[run]`.
    pub run: RunBounds,
    /// `[plugins.<name>]`, by local name (the first segment of qualified tool names).
    pub plugins: BTreeMap<String, PluginConfig>,
    /// `[agents.<name>]`.
    pub agents: BTreeMap<String, Agent>,
    /// `[policy]`, compiled.
    pub policy: Policy,
    /// `[[steps]]`, in order. Default: none (the run starts at `entry`).
    pub steps: Vec<Step>,
}

/// `[run]`: bounds of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBounds {
    /// `max_steps`: model turns across all agents. Default 32; 1..=10,000.
    pub max_steps: u64,
    /// `max_tool_calls`: tool calls across all agents. Default 64; 1..=100,000.
    pub max_tool_calls: u64,
    /// `max_fuel`: wasm fuel across every tool call. Default 50,000,000,000; at most 1e14.
    pub max_fuel: u64,
    /// `max_tokens`: input + output tokens across model turns. Default 500,000; at most 1e8.
    pub max_tokens: u64,
    /// `deadline`: wall clock including model time, excluding time waiting for approval. Default 1h; 1s..=7d.
    pub deadline: Duration,
    /// `approval_expiry`: how long an approval request stays open. Default 24h; 1m..=30d.
    pub approval_expiry: Duration,
    /// `max_output_tokens`: output tokens of one model turn. Default 4,096; 1..=1,000,000.
    pub max_output_tokens: u64,
    /// `max_repeated_refusals`: how many times an agent may make the same call (same tool, same
    /// input) and have it refused or fail before the run ends. Default 3; 1..=1,000.
    pub max_repeated_refusals: u64,
}

impl Default for RunBounds {
    fn default() -> Self {
        RunBounds {
            max_steps: 32,
            max_tool_calls: 64,
            max_fuel: 50_000_000_000,
            max_tokens: 500_000,
            deadline: Duration::from_secs(3_600),
            approval_expiry: Duration::from_secs(86_400),
            max_output_tokens: 4_096,
            max_repeated_refusals: 3,
        }
    }
}

/// `[plugins.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// `source` (required): the component's path as written, relative to the workflow file
    /// (resolve it with [`crate::LoadedWorkflow::plugin_source`]).
    pub source: PathBuf,
    /// `sha256`: pin of the component's digest (lower-case hex). Default: not pinned.
    pub sha256: Option<String>,
    /// `[plugins.<name>.grants]`.
    pub grants: PluginGrants,
    /// `[plugins.<name>.limits]`.
    pub limits: PluginLimits,
    /// `instances`. Default: [`InstanceMode::Fresh`].
    pub instances: InstanceMode,
    /// `[plugins.<name>.tools.<tool>]`: the operator's overrides of a foreign component's
    /// tools (checked against the component in `check_plugins`). Default: none.
    pub tools: BTreeMap<String, ToolOverride>,
}

/// `instances = "fresh" | "per-run"`: whether the calls of a run share plugin instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceMode {
    /// A new instance per call: nothing one call leaves in guest memory reaches another.
    #[default]
    Fresh,
    /// The calls of one run reuse idle instances: what one call leaves in guest memory (globals,
    /// caches, warmed-up interpreters) is visible to later calls of the same run, never to
    /// another run. Per-call limits still hold per call.
    PerRun,
}

/// `[plugins.<name>.grants]`: deny by default; can only narrow what the manifest declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginGrants {
    /// `hosts`: outbound host patterns. Default: none.
    pub hosts: Vec<String>,
    /// `credentials`: credential name → source spec (`env:VAR` or `file:PATH`). Default: none.
    pub credentials: BTreeMap<String, String>,
    /// `kv`. Default: [`KvGrant::Off`].
    pub kv: KvGrant,
    /// `log`: structured logging into the call report. Default: true.
    pub log: bool,
    /// `requests`: tool name → request scopes as written (each parsed and checked at load).
    /// Default: none.
    pub requests: BTreeMap<String, Vec<String>>,
}

impl Default for PluginGrants {
    fn default() -> Self {
        PluginGrants {
            hosts: Vec::new(),
            credentials: BTreeMap::new(),
            kv: KvGrant::Off,
            log: true,
            requests: BTreeMap::new(),
        }
    }
}

/// The kv grant: `kv = false | true | "namespace"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvGrant {
    /// `false` (the default): no kv store.
    Off,
    /// `true`: a namespace private to this plugin in this workflow (`<workflow>/<plugin>`).
    Workflow,
    /// A namespace the operator names; shared with whatever else names it.
    Namespace(String),
}

impl KvGrant {
    /// The namespace the store is opened under, if granted.
    pub fn namespace(&self, workflow: &str, plugin: &str) -> Option<String> {
        match self {
            KvGrant::Off => None,
            KvGrant::Workflow => Some(format!("{workflow}/{plugin}")),
            KvGrant::Namespace(n) => Some(n.clone()),
        }
    }
}

/// `[plugins.<name>.limits]`: per-call limits; `None` keeps the sandbox default
/// ([`Limits::default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginLimits {
    /// `fuel`: 1..=1e12. Sandbox default 2,000,000,000.
    pub fuel: Option<u64>,
    /// `memory` in bytes: 64KiB..=4GiB. Sandbox default 64MiB.
    pub memory: Option<u64>,
    /// `timeout`: 1ms..=10m. Sandbox default 10s.
    pub timeout: Option<Duration>,
    /// `max_http_requests`: 1..=1,000. Sandbox default 16.
    pub max_http_requests: Option<u64>,
}

impl PluginLimits {
    /// `base` with the keys that are set applied.
    pub fn apply(&self, mut base: Limits) -> Limits {
        if let Some(f) = self.fuel {
            base.fuel = f;
        }
        if let Some(m) = self.memory {
            base.memory_bytes = m as usize;
        }
        if let Some(t) = self.timeout {
            base.timeout = t;
        }
        if let Some(n) = self.max_http_requests {
            base.http_requests = n as usize;
        }
        base
    }
}

/// `[agents.<name>]`.
#[derive(Debug, Clone)]
pub struct Agent {
    /// `model`: model spec. Default: none (the run's `--model`, which also overrides it).
    pub model: Option<String>,
    /// `description`: shown to agents that can hand off to this one. Default: empty.
    pub description: String,
    /// `instructions` (required): the system prompt.
    pub instructions: String,
    /// `tools`: qualified names or globs (see [`crate::tool_matches`]). Default: none.
    pub tools: Vec<String>,
    /// `handoffs`: agents it may hand off to. Default: none.
    pub handoffs: Vec<String>,
    /// `max_steps`: its own bound on model turns. Default: none (only the run's bound).
    pub max_steps: Option<u64>,
    /// `accepts`: JSON Schema of a handoff payload to this agent. Default: any payload.
    pub accepts: Option<Value>,
    /// `tool_choice`. Default: [`ToolChoice::Auto`].
    pub tool_choice: ToolChoice,
    /// `[agents.<name>.sampling]`. Default: every setting left to the model server.
    pub sampling: Sampling,
}

/// `tool_choice = "auto" | "required" | "none"`: what an agent's model is told about calling
/// the tools it is offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides; a turn without tool calls ends the agent.
    #[default]
    Auto,
    /// Every turn must call a tool or hand off.
    Required,
    /// The tools are described but may not be called.
    None,
}

/// `[agents.<name>.sampling]`: `None`/empty keys are left to the model server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    /// `temperature`: 0..=2.
    pub temperature: Option<f64>,
    /// `top_p`: 0..=1.
    pub top_p: Option<f64>,
    /// `stop`: at most 4 non-empty texts.
    pub stop: Vec<String>,
    /// `seed`.
    pub seed: Option<u64>,
}

/// One `[[steps]]` entry.
#[derive(Debug, Clone)]
pub enum Step {
    /// `tool = "plugin.tool"` with `input` (literal) or `input_expr` (CEL). Default input: `{}`.
    Tool { id: String, tool: String, input: StepInput },
    /// `agent = "name"`; `input` lists earlier steps' ids whose results are its payload.
    Agent { id: String, agent: String, input: Vec<String> },
    /// `approval = "prompt"`: a human gate.
    Approval { id: String, prompt: String },
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Tool { id, .. } | Step::Agent { id, .. } | Step::Approval { id, .. } => id,
        }
    }
}

/// A tool step's input.
#[derive(Debug, Clone)]
pub enum StepInput {
    /// `input = { ... }`, as JSON.
    Literal(Value),
    /// `input_expr = "..."`: CEL over `state` (earlier steps' results by id) and `goal`; evaluate
    /// with [`crate::eval_json`].
    Expr(Program),
}
