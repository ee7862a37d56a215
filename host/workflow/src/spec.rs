//! The format's shape, as data: every table, every key, its type, bounds, default and doc.
//! This is the single source of truth for three consumers: the generic pass in
//! [`crate::shape`] (unknown keys with "did you mean", missing keys, types, bounds), the JSON
//! Schema for editors ([`crate::schema`]), and the README's reference (a test checks the README
//! names every key). Meaning that needs more than one key (cross references, CEL, host
//! coverage) is checked in `decode`, `steps` and `check`.

use std::time::Duration;

use tollgate_contract::Effects;

/// A name rule: a regex for the JSON Schema and the same rule as code for the parser.
pub(crate) struct NameRule {
    pub regex: &'static str,
    pub min: usize,
    pub max: usize,
    pub first: fn(char) -> bool,
    pub rest: fn(char) -> bool,
}

impl NameRule {
    pub fn ok(&self, s: &str) -> bool {
        let n = s.chars().count();
        let mut chars = s.chars();
        n >= self.min && n <= self.max && chars.next().is_some_and(self.first) && chars.all(self.rest)
    }

    /// The regex without anchors, for messages.
    pub fn shown(&self) -> &'static str {
        self.regex.trim_start_matches('^').trim_end_matches('$')
    }
}

fn lower_digit(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub(crate) const WORKFLOW_NAME: NameRule = NameRule {
    regex: "^[a-z0-9][a-z0-9-]{0,62}$",
    min: 1,
    max: 63,
    first: lower_digit,
    rest: |c| lower_digit(c) || c == '-',
};
/// Plugin aliases and agent names: they appear in qualified tool names (`ads.update_campaign`).
pub(crate) const IDENT: NameRule = NameRule {
    regex: "^[a-z][a-z0-9_-]{0,63}$",
    min: 1,
    max: 64,
    first: |c| c.is_ascii_lowercase(),
    rest: |c| lower_digit(c) || c == '_' || c == '-',
};
/// Step ids are CEL identifiers (`state.<id>`), so no `-`.
pub(crate) const STEP_ID: NameRule = NameRule {
    regex: "^[a-z][a-z0-9_]{0,63}$",
    min: 1,
    max: 64,
    first: |c| c.is_ascii_lowercase(),
    rest: |c| lower_digit(c) || c == '_',
};
/// Tool names of foreign (plain) components, as the sandbox derives them.
pub(crate) const TOOL_NAME: NameRule = NameRule {
    regex: "^[a-z][a-z0-9_]{0,63}$",
    min: 1,
    max: 64,
    first: |c| c.is_ascii_lowercase(),
    rest: |c| lower_digit(c) || c == '_',
};
pub(crate) const SHA256: NameRule =
    NameRule { regex: "^[0-9a-f]{64}$", min: 64, max: 64, first: is_hex_lower, rest: is_hex_lower };
pub(crate) const KV_NAMESPACE: NameRule = NameRule {
    regex: "^[a-z0-9][a-z0-9._:/-]{0,127}$",
    min: 1,
    max: 128,
    first: lower_digit,
    rest: |c| lower_digit(c) || matches!(c, '.' | '_' | ':' | '/' | '-'),
};

fn is_hex_lower(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c)
}

pub(crate) const SEMVER_REGEX: &str = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$";

/// The effects a tool can declare (the manifest's `effects` flags).
pub(crate) const EFFECTS: &[&str] = &Effects::NAMES;
pub(crate) const ACTIONS: &[&str] = &["require_approval", "allow", "deny"];

pub(crate) enum Ty {
    Str,
    Name(&'static NameRule),
    Semver,
    Int {
        min: i64,
        max: i64,
    },
    /// A number (integer or float) within the bounds.
    Number {
        min: f64,
        max: f64,
    },
    Bool,
    Duration {
        min: Duration,
        max: Duration,
    },
    Bytes {
        min: u64,
        max: u64,
    },
    StrList,
    Enum(&'static [&'static str]),
    EnumList(&'static [&'static str]),
    /// A CEL expression (a string); compiled in `decode`.
    Cel,
    /// `false`, `true`, or a name (the kv grant).
    BoolOrName(&'static NameRule),
    /// A table of string values (credential name → source).
    StrMap,
    /// A table of arrays of strings (tool name → request scopes).
    StrListMap,
    Table(&'static TableSpec),
    /// A table of named tables (`[plugins.<name>]`, `[agents.<name>]`).
    Named(&'static TableSpec, &'static NameRule),
    /// An array of tables (`[[steps]]`).
    Array(&'static TableSpec),
    /// A JSON Schema written as a TOML table.
    JsonSchema,
    /// Checked by the code that reads it (a step's `input` depends on the step's kind).
    Any,
}

pub(crate) struct KeySpec {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// The default as JSON text, when there is a fixed one.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

pub(crate) struct TableSpec {
    /// How the table is named in messages and the schema's titles.
    pub title: &'static str,
    pub doc: &'static str,
    pub keys: &'static [KeySpec],
    /// Exactly one of these keys must be present.
    pub exactly_one_of: &'static [&'static str],
}

impl TableSpec {
    pub fn key(&self, name: &str) -> Option<&KeySpec> {
        self.keys.iter().find(|k| k.name == name)
    }
}

const fn key(name: &'static str, ty: Ty, doc: &'static str) -> KeySpec {
    KeySpec { name, ty, required: false, default: None, doc }
}
const fn req(name: &'static str, ty: Ty, doc: &'static str) -> KeySpec {
    KeySpec { name, ty, required: true, default: None, doc }
}
const fn def(name: &'static str, ty: Ty, default: &'static str, doc: &'static str) -> KeySpec {
    KeySpec { name, ty, required: false, default: Some(default), doc }
}

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

pub(crate) const ROOT: TableSpec = TableSpec {
    title: "workflow",
    doc: "A Tollgate workflow: plugins with their grants, agents, policy, and optional fixed steps. \
          Paths are relative to the workflow file's directory.",
    exactly_one_of: &[],
    keys: &[
        req("name", Ty::Name(&WORKFLOW_NAME), "The workflow's name: lower-case letters, digits and `-`."),
        req("version", Ty::Semver, "The workflow's version, a semantic version (MAJOR.MINOR.PATCH)."),
        def("description", Ty::Str, "\"\"", "What the workflow does, for people."),
        key("entry", Ty::Str, "The agent a goal-driven run starts with. Required unless `[[steps]]` are given."),
        key("goal", Ty::Str, "The default goal of a run; `tollgate run --goal` overrides it."),
        key("run", Ty::Table(&RUN), "Bounds of one run."),
        key("plugins", Ty::Named(&PLUGIN, &IDENT), "The plugins (tools) the workflow uses, by local name."),
        key("agents", Ty::Named(&AGENT, &IDENT), "The agents, by name."),
        key("policy", Ty::Table(&POLICY), "Approval rules and caps, checked before every tool call."),
        key("steps", Ty::Array(&STEP), "Fixed steps, run in order instead of starting at `entry`."),
    ],
};

pub(crate) const RUN: TableSpec = TableSpec {
    title: "run",
    doc: "Bounds of one run. Every key is optional.",
    exactly_one_of: &[],
    keys: &[
        def("max_steps", Ty::Int { min: 1, max: 10_000 }, "32", "Model turns across all agents."),
        def("max_tool_calls", Ty::Int { min: 1, max: 100_000 }, "64", "Tool calls across all agents."),
        def(
            "max_fuel",
            Ty::Int { min: 1, max: 100_000_000_000_000 },
            "50000000000",
            "Total wasm fuel across every tool call of the run.",
        ),
        def(
            "max_tokens",
            Ty::Int { min: 1, max: 100_000_000 },
            "500000",
            "Input plus output tokens of all model turns.",
        ),
        def(
            "deadline",
            Ty::Duration { min: SEC, max: Duration::from_secs(7 * 86_400) },
            "\"1h\"",
            "Wall-clock time of the run, model time included, time waiting for approval excluded.",
        ),
        def(
            "approval_expiry",
            Ty::Duration { min: MIN, max: Duration::from_secs(30 * 86_400) },
            "\"24h\"",
            "How long an approval request stays open; then it expires and the run is escalated.",
        ),
        def(
            "max_output_tokens",
            Ty::Int { min: 1, max: 1_000_000 },
            "4096",
            "Output tokens of one model turn. An answer cut off here is not taken as the answer: the model is \
             asked once to answer more briefly, and a second cut-off in a row ends the run (`bound_hit`).",
        ),
        def(
            "max_repeated_refusals",
            Ty::Int { min: 1, max: 1_000 },
            "3",
            "How many times an agent may make the same call (same tool, same input) and have it refused by the \
             gate or fail; the last time ends the run (`bound_hit`) instead of asking the model again.",
        ),
    ],
};

pub(crate) const PLUGIN: TableSpec = TableSpec {
    title: "plugins.<name>",
    doc: "One plugin: a WebAssembly component, what the operator grants it, and its limits.",
    exactly_one_of: &[],
    keys: &[
        req("source", Ty::Str, "Path to the component (.wasm), relative to the workflow file."),
        key("sha256", Ty::Name(&SHA256), "Pin: the component's sha256 (64 lower-case hex digits)."),
        key("grants", Ty::Table(&GRANTS), "What the plugin may use; can only narrow what it declares."),
        key("limits", Ty::Table(&LIMITS), "Per-call limits; the sandbox's defaults otherwise."),
        key(
            "tools",
            Ty::Named(&TOOL_OVERRIDE, &TOOL_NAME),
            "Overrides of a foreign (plain) component's tools, by tool name. Refused for a Tollgate plugin, whose manifest is its author's contract; naming a tool the component does not offer is an error. See docs/plugins/plain-components.md.",
        ),
        def(
            "instances",
            Ty::Enum(INSTANCE_MODES),
            "\"fresh\"",
            "`fresh`: every call gets a new instance, so nothing one call leaves in the plugin's memory reaches another. `per-run`: the calls of one run reuse instances, so state one call leaves (globals, caches) is visible to the run's later calls of this plugin, never to other runs; limits still hold per call. See docs/plugins/instances.md.",
        ),
    ],
};

/// Values of `plugins.<name>.instances`.
pub(crate) const INSTANCE_MODES: &[&str] = &["fresh", "per-run"];

pub(crate) const GRANTS: TableSpec = TableSpec {
    title: "plugins.<name>.grants",
    doc: "Grants: deny by default. Each can only narrow what the plugin's manifest declares.",
    exactly_one_of: &[],
    keys: &[
        def(
            "hosts",
            Ty::StrList,
            "[]",
            "Outbound hosts, `[scheme://]host[:port]` (`*.suffix` allowed); each must be covered by a host the plugin declares.",
        ),
        def(
            "credentials",
            Ty::StrMap,
            "{}",
            "Credential name (declared by the plugin) → source: `env:VAR` or `file:PATH`. The credential's host must be granted by name.",
        ),
        def(
            "kv",
            Ty::BoolOrName(&KV_NAMESPACE),
            "false",
            "The key-value store: `true` (namespace `<workflow>/<plugin>`) or a namespace name shared by whoever names it.",
        ),
        def("log", Ty::Bool, "true", "Structured logging into the call report."),
        def(
            "requests",
            Ty::StrListMap,
            "{}",
            "Tool name → the only requests it may make, each `METHOD host/path` (`*` for any method; `*.suffix` hosts; a path segment `*` is any one segment, a final `**` any rest), e.g. `search_contacts = [\"POST api.hubapi.com/crm/v3/objects/contacts/search\"]`. The egress gate refuses any other request of a listed tool, and any path of theirs with dot segments (`..;x` too) or encoded slashes, dots or percent signs; unlisted tools are limited by `hosts` alone. Where the plugin declares a tool's requests (contract 0.1.1), a request needs both: these narrow the plugin's, never widen them. `tollgate plugin test` proposes them from observed traffic.",
        ),
    ],
};

/// Longest override description, as long as a manifest's tool description may be.
pub(crate) const MAX_TOOL_DESCRIPTION: usize = 8 << 10;

pub(crate) const TOOL_OVERRIDE: TableSpec = TableSpec {
    title: "plugins.<name>.tools.<tool>",
    doc: "What the operator says about one tool of a foreign component, over what Tollgate derived from its exports and imports.",
    exactly_one_of: &[],
    keys: &[
        key("description", Ty::Str, "Replaces the synthesized description the model reads: not empty, at most 8 KiB."),
        key(
            "effects",
            Ty::EnumList(EFFECTS),
            "Replaces the effects derived from the component's imports (policy asks for approval by effect); `[]` declares none.",
        ),
    ],
};

pub(crate) const LIMITS: TableSpec = TableSpec {
    title: "plugins.<name>.limits",
    doc: "Per-call limits of one plugin. Unset keys keep the sandbox defaults.",
    exactly_one_of: &[],
    keys: &[
        def("fuel", Ty::Int { min: 1, max: 1_000_000_000_000 }, "2000000000", "Wasm fuel per call."),
        def(
            "memory",
            Ty::Bytes { min: 64 << 10, max: 4 << 30 },
            "\"64MiB\"",
            "Linear memory per call: bytes, or a size such as `64MiB`.",
        ),
        def(
            "timeout",
            Ty::Duration { min: Duration::from_millis(1), max: Duration::from_secs(600) },
            "\"10s\"",
            "Wall clock per call.",
        ),
        def("max_http_requests", Ty::Int { min: 1, max: 1_000 }, "16", "Outbound HTTP requests per call."),
    ],
};

pub(crate) const AGENT: TableSpec = TableSpec {
    title: "agents.<name>",
    doc: "One agent: a model with instructions, the tools it may call, and whom it may hand off to.",
    exactly_one_of: &[],
    keys: &[
        key(
            "model",
            Ty::Str,
            "Model spec (e.g. `openai:gpt-4.1`, `scripted:turns.toml`); `--model` overrides it for every agent.",
        ),
        def("description", Ty::Str, "\"\"", "What the agent does: shown to agents that can hand off to it."),
        req("instructions", Ty::Str, "The agent's instructions (system prompt)."),
        def("tools", Ty::StrList, "[]", "Tools it may call: `plugin.tool`, or globs (`ads.*`, `*.send_email`, `*`)."),
        def("handoffs", Ty::StrList, "[]", "Agents it may hand off to."),
        key("max_steps", Ty::Int { min: 1, max: 10_000 }, "Model turns of this agent; default: only the run's bound."),
        key("accepts", Ty::JsonSchema, "JSON Schema of the payload a handoff to this agent must carry."),
        def(
            "tool_choice",
            Ty::Enum(TOOL_CHOICES),
            "\"auto\"",
            "Sent with every turn that offers tools: `auto` (the model decides; a turn without tool calls ends the agent), `required` (every turn must call a tool or hand off; the agent ends at a bound), `none` (the tools are described, not callable).",
        ),
        key(
            "sampling",
            Ty::Table(&SAMPLING),
            "Sampling settings sent to the model; unset keys are the server's default.",
        ),
    ],
};

/// Values of `agents.<name>.tool_choice`.
pub(crate) const TOOL_CHOICES: &[&str] = &["auto", "required", "none"];

pub(crate) const SAMPLING: TableSpec = TableSpec {
    title: "agents.<name>.sampling",
    doc: "Sampling settings of one agent's model turns. Unset keys are left to the model server.",
    exactly_one_of: &[],
    keys: &[
        key(
            "temperature",
            Ty::Number { min: 0.0, max: 2.0 },
            "0 for (near) deterministic turns; OpenAI accepts up to 2, Anthropic up to 1.",
        ),
        key("top_p", Ty::Number { min: 0.0, max: 1.0 }, "Nucleus sampling: the probability mass sampled from."),
        key("stop", Ty::StrList, "Up to 4 non-empty texts that end a turn when the model writes them."),
        key(
            "seed",
            Ty::Int { min: 0, max: i64::MAX },
            "Seed for servers that sample reproducibly (OpenAI, llama.cpp, vLLM); not sent to Anthropic.",
        ),
    ],
};

pub(crate) const POLICY: TableSpec = TableSpec {
    title: "policy",
    doc: "Checked before every tool call: caps first, then approval rules.",
    exactly_one_of: &[],
    keys: &[
        def(
            "approval_effects",
            Ty::EnumList(EFFECTS),
            "[\"spend\", \"delete\", \"send-message\"]",
            "Effects that need approval when no rule matches.",
        ),
        key("approvals", Ty::Array(&APPROVAL), "Approval rules; the first matching rule decides."),
        key("spend_caps", Ty::Array(&SPEND_CAP), "Per-run caps on a cost computed from each call's input."),
        key("rate_limits", Ty::Array(&RATE_LIMIT), "Calls per tool per time window, across runs."),
        key(
            "frequency_caps",
            Ty::Array(&FREQUENCY_CAP),
            "Calls per target (e.g. recipient) per time window, across runs.",
        ),
    ],
};

pub(crate) const APPROVAL: TableSpec = TableSpec {
    title: "policy.approvals[]",
    doc: "A rule matches when the tool glob, the effects and the `when` predicate all match.",
    exactly_one_of: &[],
    keys: &[
        key("tool", Ty::Str, "Tool glob (`ads.update_campaign`, `ads.*`); default: every tool."),
        key("effects", Ty::EnumList(EFFECTS), "Matches if the tool declares any of these; default: any tool."),
        key("when", Ty::Cel, "CEL predicate over input, tool, plugin, agent, effects, run; default: true."),
        req("action", Ty::Enum(ACTIONS), "`require_approval` (a human decides first), `allow`, or `deny`."),
        key("reason", Ty::Str, "Shown to the approver or in the denial."),
        key(
            "approvers",
            Ty::StrList,
            "Who may decide what this rule sends for approval (`tollgate serve`): `role:<role>` or `user:<token name>` entries; default: anyone with the approver role.",
        ),
        def("quorum", Ty::Int { min: 1, max: 10 }, "1", "Distinct approvers needed to approve; one denial denies."),
        def(
            "self_approval",
            Ty::Bool,
            "false",
            "Whether whoever started the run may decide its calls this rule sends for approval.",
        ),
    ],
};

pub(crate) const SPEND_CAP: TableSpec = TableSpec {
    title: "policy.spend_caps[]",
    doc: "Sums `cost` over a run's calls of the matching tools; a call that would exceed the cap is denied.",
    exactly_one_of: &[],
    keys: &[
        req("tool", Ty::Str, "Tool glob."),
        req("cost", Ty::Cel, "CEL → a non-negative integer: the call's cost."),
        req("max_per_run", Ty::Int { min: 1, max: i64::MAX }, "The cap."),
    ],
};

pub(crate) const RATE_LIMIT: TableSpec = TableSpec {
    title: "policy.rate_limits[]",
    doc: "At most `max` calls of the matching tools per `per`, across runs.",
    exactly_one_of: &[],
    keys: &[
        req("tool", Ty::Str, "Tool glob."),
        req("max", Ty::Int { min: 1, max: 1_000_000 }, "Calls allowed per window."),
        req("per", Ty::Duration { min: SEC, max: Duration::from_secs(365 * 86_400) }, "The window."),
    ],
};

pub(crate) const FREQUENCY_CAP: TableSpec = TableSpec {
    title: "policy.frequency_caps[]",
    doc: "At most `max` calls per target per `per`, across runs.",
    exactly_one_of: &[],
    keys: &[
        req("tool", Ty::Str, "Tool glob."),
        req("target", Ty::Cel, "CEL → a string or a list of strings; each is counted."),
        req("max", Ty::Int { min: 1, max: 1_000_000 }, "Calls allowed per target per window."),
        req("per", Ty::Duration { min: SEC, max: Duration::from_secs(365 * 86_400) }, "The window."),
    ],
};

pub(crate) const STEP: TableSpec = TableSpec {
    title: "steps[]",
    doc: "A fixed step: exactly one of `tool`, `agent`, `approval`. Its result is `state.<id>`.",
    exactly_one_of: &["tool", "agent", "approval"],
    keys: &[
        req("id", Ty::Name(&STEP_ID), "Unique; later steps read the result as `state.<id>`."),
        key("tool", Ty::Str, "Call this tool (`plugin.tool`, no globs)."),
        key("agent", Ty::Str, "Run this agent."),
        key("approval", Ty::Str, "A human gate: the prompt shown to the approver."),
        key("input", Ty::Any, "Tool step: the input (a table). Agent step: state keys handed to the agent."),
        key("input_expr", Ty::Cel, "Tool step: CEL over `state` and `goal` that builds the input."),
    ],
};

/// Same rule as [`SEMVER_REGEX`].
pub(crate) fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let ident_ok =
        |part: &str| part.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let nums: Vec<&str> = core.split('.').collect();
    nums.len() == 3
        && nums
            .iter()
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0')))
        && pre.is_none_or(ident_ok)
        && build.is_none_or(ident_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_and_names() {
        for ok in ["1.0.0", "0.10.2", "1.2.3-rc.1", "1.2.3+build.5", "1.2.3-alpha-1+x"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "1.0.0+", "v1.0.0", "1.0.0.0", "1..0"] {
            assert!(!is_semver(bad), "{bad}");
        }
        assert!(WORKFLOW_NAME.ok("campaign-review") && !WORKFLOW_NAME.ok("Campaign") && !WORKFLOW_NAME.ok(""));
        assert!(STEP_ID.ok("insights_2") && !STEP_ID.ok("in-sights") && !STEP_ID.ok("2x"));
        assert!(SHA256.ok(&"a".repeat(64)) && !SHA256.ok(&"A".repeat(64)) && !SHA256.ok("abc"));
        assert_eq!(IDENT.shown(), "[a-z][a-z0-9_-]{0,63}");
    }
}
