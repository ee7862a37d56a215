//! The plugin definition: [`Tool`], [`Credential`] and [`Plugin`], JSON Schema generation, and
//! the exported entry points (`manifest`, `call`, and `declared` of the `requests` interface)
//! that `plugin!` wires to the component.
//!
//! Nothing here may call a capability (log, kv, secrets, http): this code is linked into every
//! plugin, and a call would put that interface into every plugin's import list.

use std::fmt;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::exports::tollgate::plugin::requests::ToolRequests;
use crate::bindings::tollgate::plugin::types::{
    CallContext, Credential as WitCredential, Effects, Manifest, Tool as WitTool, ToolError as WitToolError,
};
use crate::{Context, ToolError};

type Handler = Box<dyn Fn(&Context, &str) -> Result<String, ToolError>>;

/// One tool: a name, a description for the model, a function and what it may do.
pub struct Tool {
    name: String,
    description: String,
    effects: Effects,
    idempotent: bool,
    compensation: Option<String>,
    requests: Option<Vec<String>>,
    input_schema: fn() -> String,
    output_schema: fn() -> String,
    handler: Handler,
}

impl Tool {
    /// A tool backed by `function`. Its input and output JSON Schemas are generated from `I`
    /// and `O`; the SDK deserialises the input into `I` (a mismatch is `invalid_input` with the
    /// field path) and serialises the returned `O`.
    ///
    /// A new tool has no effects (pure), is not idempotent and has no compensation.
    pub fn new<I, O, F>(name: impl Into<String>, description: impl Into<String>, function: F) -> Self
    where
        I: DeserializeOwned + JsonSchema,
        O: Serialize + JsonSchema,
        F: Fn(&Context, I) -> Result<O, ToolError> + 'static,
    {
        Self {
            name: name.into(),
            description: description.into(),
            effects: Effects::empty(),
            idempotent: false,
            compensation: None,
            requests: None,
            input_schema: schema_for::<I>,
            output_schema: schema_for::<O>,
            handler: Box::new(move |context, input| {
                let input = parse_input::<I>(input)?;
                let output = function(context, input)?;
                serde_json::to_string(&output)
                    .map_err(|e| ToolError::internal(format!("could not serialise the output: {e}")))
            }),
        }
    }

    /// Declares the side effects, for example `Effects::WRITE | Effects::SPEND`. The host's
    /// policy keys on them.
    #[must_use]
    pub fn effects(mut self, effects: Effects) -> Self {
        self.effects = effects;
        self
    }

    /// Declares that calling twice with the same input and idempotency key has the same effect
    /// as calling once (the vendor or the plugin recognises the repeat). The host runs a call it
    /// lost track of (its process stopped mid-call) again only for idempotent tools; any other
    /// is put before a person.
    #[must_use]
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Names the tool of this plugin that undoes this one.
    #[must_use]
    pub fn compensation(mut self, tool: impl Into<String>) -> Self {
        self.compensation = Some(tool.into());
        self
    }

    /// Declares one kind of request the tool makes, `METHOD host/path-pattern` (for example
    /// `"POST api.hubapi.com/crm/v3/objects/contacts/search"` or
    /// `"GET graph.facebook.com/v21.0/*/insights"`: `*` is one path segment, a final `**` any
    /// rest, the query is not part of it). Once a tool declares any, the host's egress gate
    /// refuses every request of that tool no declared scope matches. A tool that declares none
    /// is limited by the plugin's hosts alone.
    #[must_use]
    pub fn request(mut self, scope: impl Into<String>) -> Self {
        self.requests.get_or_insert_with(Vec::new).push(scope.into());
        self
    }

    /// Declares the tool's requests as a whole; an empty list declares that it makes none.
    #[must_use]
    pub fn requests<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.requests = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared request scopes, if the tool declares them.
    pub fn declared_requests(&self) -> Option<&[String]> {
        self.requests.as_deref()
    }

    /// The input JSON Schema (draft 2020-12) as a string.
    pub fn input_schema(&self) -> String {
        (self.input_schema)()
    }

    /// The output JSON Schema (draft 2020-12) as a string.
    pub fn output_schema(&self) -> String {
        (self.output_schema)()
    }

    /// Runs the tool on a JSON input, as the host's `call` would.
    pub fn call(&self, context: &Context, input: &str) -> Result<String, ToolError> {
        (self.handler)(context, input)
    }
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .field("effects", &self.effects)
            .field("idempotent", &self.idempotent)
            .field("compensation", &self.compensation)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// A credential the plugin needs, bound to one host. The operator maps `name` to a secret; the
/// host adds `header: prefix + secret` to requests to `host` only, so the plugin never sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    pub host: String,
    pub header: String,
    pub value_prefix: String,
    pub description: String,
}

impl Credential {
    /// `authorization: Bearer <secret>` on requests to `host`.
    pub fn bearer(name: impl Into<String>, host: impl Into<String>, description: impl Into<String>) -> Self {
        Self::header(name, host, "authorization", "Bearer ", description)
    }

    /// `header: value_prefix<secret>` on requests to `host`, for APIs that use their own header
    /// (for example `x-api-key` with an empty prefix).
    pub fn header(
        name: impl Into<String>,
        host: impl Into<String>,
        header: impl Into<String>,
        value_prefix: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            host: host.into(),
            header: header.into(),
            value_prefix: value_prefix.into(),
            description: description.into(),
        }
    }
}

/// A whole plugin: what `plugin!` builds and exports.
#[derive(Debug)]
pub struct Plugin {
    name: String,
    version: String,
    description: String,
    hosts: Vec<String>,
    credentials: Vec<Credential>,
    tools: Vec<Tool>,
}

impl Plugin {
    pub fn new(name: impl Into<String>, version: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            hosts: Vec::new(),
            credentials: Vec::new(),
            tools: Vec::new(),
        }
    }

    /// Adds an outbound host, `[scheme://]host[:port]` (`host` may be `*.suffix`).
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.hosts.push(host.into());
        self
    }

    #[must_use]
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credentials.push(credential);
        self
    }

    #[must_use]
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    pub fn find_tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name == name)
    }

    /// Checks what the host will check at load time, so a mistake fails `cargo test` instead:
    /// name syntax, unique tool names, compensations that name a tool of this plugin, and input
    /// schemas that describe objects. Returns every problem, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !is_identifier(&self.name, true) {
            problems.push(format!("plugin name `{}` must match [a-z][a-z0-9_-]*", self.name));
        }
        if self.version.is_empty() {
            problems.push("plugin version is empty".to_owned());
        }
        for credential in &self.credentials {
            if !is_identifier(&credential.name, true) {
                problems.push(format!("credential name `{}` must match [a-z][a-z0-9_-]*", credential.name));
            }
            if credential.host.is_empty() || credential.host.contains('/') {
                problems.push(format!(
                    "credential `{}` needs a bare host name, not `{}`",
                    credential.name, credential.host
                ));
            }
        }
        for (index, tool) in self.tools.iter().enumerate() {
            if !is_identifier(&tool.name, false) || tool.name.len() > 64 {
                problems.push(format!(
                    "tool name `{}` must match [a-z][a-z0-9_]* and have at most 64 characters",
                    tool.name
                ));
            }
            if self.tools[..index].iter().any(|t| t.name == tool.name) {
                problems.push(format!("tool name `{}` is used twice", tool.name));
            }
            if let Some(compensation) = &tool.compensation
                && self.find_tool(compensation).is_none()
            {
                problems.push(format!(
                    "tool `{}` names compensation `{compensation}`, which is not a tool of this plugin",
                    tool.name
                ));
            }
            for scope in tool.requests.iter().flatten() {
                if let Err(why) = check_scope_shape(scope) {
                    problems.push(format!("tool `{}` request `{scope}`: {why}", tool.name));
                }
            }
            let input: serde_json::Value = serde_json::from_str(&tool.input_schema()).unwrap_or_default();
            if input.get("type").and_then(|t| t.as_str()) != Some("object") {
                problems.push(format!("tool `{}` input schema must describe an object (use a struct)", tool.name));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }
}

/// The JSON Schema (draft 2020-12) of `T`, as the manifest carries it. Doc comments become
/// descriptions; `#[serde(deny_unknown_fields)]` becomes `"additionalProperties": false`.
pub fn schema_for<T: JsonSchema>() -> String {
    let schema = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    // A `Schema` is a JSON value already; serialising it cannot fail.
    serde_json::to_string(&schema).unwrap_or_default()
}

/// Deserialises a tool input, naming the offending field (`to[0].email: …`) on failure.
fn parse_input<I: DeserializeOwned>(input: &str) -> Result<I, ToolError> {
    let mut deserializer = serde_json::Deserializer::from_str(input);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| ToolError::invalid_input(format!("invalid input: {e}")))?;
    deserializer.end().map_err(|e| ToolError::invalid_input(format!("invalid input: {e}")))?;
    Ok(value)
}

/// The shape the host parses a request scope by (it checks the rest, and that a plugin's hosts
/// cover the scope's host, at load): `METHOD host/path`.
fn check_scope_shape(scope: &str) -> Result<(), &'static str> {
    let (method, target) =
        scope.split_once(' ').ok_or("write `METHOD host/path`, e.g. `GET api.example.com/v1/items/*`")?;
    if method != "*" && (method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err("the method is upper case letters (GET, POST, …) or `*`");
    }
    let slash = target.find('/').ok_or("the path starts with `/` after the host")?;
    if slash == 0 || target[..slash].contains(':') {
        return Err("the host is a name (`api.example.com`) or `*.suffix`, no scheme or port");
    }
    Ok(())
}

/// `[a-z][a-z0-9_]*`, plus `-` when `dash` (plugin and credential names allow it).
fn is_identifier(name: &str, dash: bool) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (dash && c == '-'))
}

/// The exported `manifest` function.
pub fn manifest(plugin: &Plugin) -> Manifest {
    Manifest {
        name: plugin.name.clone(),
        version: plugin.version.clone(),
        description: plugin.description.clone(),
        tools: plugin
            .tools
            .iter()
            .map(|tool| WitTool {
                name: tool.name.clone(),
                description: tool.description.clone(),
                input_schema: tool.input_schema(),
                output_schema: Some(tool.output_schema()),
                effects: tool.effects,
                idempotent: tool.idempotent,
                compensation: tool.compensation.clone(),
            })
            .collect(),
        hosts: plugin.hosts.clone(),
        credentials: plugin
            .credentials
            .iter()
            .map(|c| WitCredential {
                name: c.name.clone(),
                host: c.host.clone(),
                header: c.header.clone(),
                value_prefix: c.value_prefix.clone(),
                description: c.description.clone(),
            })
            .collect(),
    }
}

/// The exported `declared` function of the `requests` interface: the tools that declare their
/// requests, in tool order.
pub fn declared_requests(plugin: &Plugin) -> Vec<ToolRequests> {
    plugin
        .tools
        .iter()
        .filter_map(|tool| Some(ToolRequests { tool: tool.name.clone(), scopes: tool.requests.clone()? }))
        .collect()
}

/// The exported `call` function: finds the tool (an unknown name is `not-found`) and runs it.
pub fn call(plugin: &Plugin, tool: &str, input: &str, context: CallContext) -> Result<String, WitToolError> {
    let Some(found) = plugin.find_tool(tool) else {
        return Err(ToolError::not_found(format!("plugin `{}` has no tool named `{tool}`", plugin.name)).into());
    };
    found.call(&Context::from(context), input).map_err(WitToolError::from)
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
