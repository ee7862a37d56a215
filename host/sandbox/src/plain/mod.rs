//! Plain components as tools: a component that does not export `tollgate:plugin/tool` is
//! offered function by function. This module decides which exports become tools and under
//! what names, and synthesizes the manifest a Tollgate plugin would have declared; [`schema`]
//! maps WIT types to JSON Schemas, [`value`] converts values, [`invoke`] runs one call,
//! [`budget`] bounds what converting a call's values costs the host.
//!
//! Naming: an interface's function becomes `<interface>_<function>` (the interface's short
//! name, `pkg:ns/pricing@1.0.0` → `pricing`), a world-level function `<function>`, kebab-case
//! to snake_case, lowercased; `[static]res.f` becomes `res_f`. A name outside
//! `[a-z][a-z0-9_]*` (64 characters at most) or two exports with the same name refuse the load:
//! a tool name must mean one function.
//!
//! The synthesized manifest: the component's own name (from its `component-name` section, if
//! it has one) or `component`, version `0.0.0`, no hosts (the operator's grants alone decide
//! egress), no credentials (injection needs a manifest that binds each credential to a host).
//! Effects come from the imports: `wasi:http/outgoing-handler` means `read` and `write`, not
//! idempotent; kv (state that outlives the call) means not idempotent; otherwise none. An
//! operator may override a tool's description and effects in the workflow (see
//! [`crate::Plugin::with_tool_overrides`]).
//!
//! Toolchain internals are not tools. The one known today: componentize-py's initialisation
//! entry point, which every component it builds exports as the unversioned, package-less
//! interface `exports` with `init: func(app-name: string, symbols: symbols) -> result<_, string>`
//! (its `wit/init.wit`). The rule is exact — an interface named `exports`, a function `init`
//! whose parameters are named `app-name` and `symbols`, in that order — so an author's own
//! `init` elsewhere is still offered. Hidden functions are listed among the functions not
//! offered, with the reason, so `inspect` still shows them.

mod budget;
mod invoke;
mod schema;
mod value;

use std::collections::BTreeMap;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};

use tollgate_contract::{Capability, Effects, Manifest, ToolSpec};

use crate::manifest;
use crate::schema::Schema;
use crate::state::CallState;

pub(crate) use invoke::{arguments, explain, instantiate, invoke};

/// The export a component must have to be a Tollgate plugin (any version).
const TOOL_INTERFACE: &str = "tollgate:plugin/tool";

/// Whether the component exports the Tollgate contract (then it is loaded as a plugin).
pub(crate) fn is_tollgate_plugin(component: &Component, engine: &Engine) -> bool {
    component.component_type().exports(engine).any(|(name, _)| name.split('@').next() == Some(TOOL_INTERFACE))
}

/// What `inspect` shows of a plain component: which export each tool calls, and which exported
/// functions are not offered and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlainInfo {
    pub tools: Vec<PlainTool>,
    pub unsupported: Vec<UnsupportedFunction>,
}

/// One tool of a plain component and the export it calls (`pkg:ns/iface@1.0.0#func`, or the
/// function's name for a world-level export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlainTool {
    pub tool: String,
    pub export: String,
}

/// An exported function that is not offered as a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsupportedFunction {
    pub export: String,
    /// Names the parameter path (`accounts[]: a borrowed resource handle …`) or the result.
    pub reason: String,
}

/// One offered function, resolved once at load.
pub(crate) struct PlainFunc {
    pub index: ComponentExportIndex,
    pub params: Vec<(String, wasmtime::component::types::Type)>,
    pub has_result: bool,
    pub top_result: bool,
    /// What lifting the result may cost per unit of hostcall fuel, from its type.
    pub lift: budget::LiftCost,
}

/// A loaded plain component: the instance factory and its functions by tool name.
pub(crate) struct PlainExports {
    pub pre: InstancePre<CallState>,
    pub funcs: BTreeMap<String, PlainFunc>,
}

/// The result of looking at a plain component's exports.
pub(crate) struct Analysis {
    pub manifest: Manifest,
    /// In the manifest's tool order.
    pub schemas: Vec<(Schema, Option<Schema>)>,
    pub funcs: BTreeMap<String, PlainFunc>,
    pub info: PlainInfo,
}

/// An exported function before it is judged.
struct Candidate {
    interface: Option<String>,
    name: String,
    export: String,
    index: ComponentExportIndex,
    func: ComponentFunc,
}

/// Finds every exported function, derives the tools, refuses name clashes and components with
/// nothing callable. `capabilities` are the component's imported capabilities (for effects).
pub(crate) fn analyse(
    component: &Component,
    engine: &Engine,
    bytes: &[u8],
    capabilities: &[Capability],
) -> Result<Analysis, String> {
    let mut unsupported = Vec::new();
    let candidates = candidates(component, engine, &mut unsupported);
    let total = candidates.len() + unsupported.len();
    // The tool cap, before any schema is derived or compiled: that is the expensive part.
    if total > manifest::MAX_TOOLS {
        return Err(format!(
            "the component exports {total} functions, over the limit of {} tools",
            manifest::MAX_TOOLS
        ));
    }
    let (effects, idempotent) = effects(capabilities);

    let mut tools = Vec::new();
    let mut schemas = Vec::new();
    let mut funcs = BTreeMap::new();
    let mut offered: Vec<PlainTool> = Vec::new();
    for c in candidates {
        if let Some(reason) = toolchain_internal(&c) {
            unsupported.push(UnsupportedFunction { export: c.export, reason: reason.into() });
            continue;
        }
        if c.func.async_() {
            unsupported
                .push(UnsupportedFunction { export: c.export, reason: "async functions are not supported".into() });
            continue;
        }
        let sig = match schema::signature(&c.func) {
            Ok(sig) => sig,
            Err(reason) => {
                unsupported.push(UnsupportedFunction { export: c.export, reason });
                continue;
            }
        };
        let compiled = compile(&sig.input).and_then(|i| Ok((i, compile(&sig.output)?)));
        let (input, output) = match compiled {
            Ok(pair) => pair,
            Err(reason) => {
                unsupported.push(UnsupportedFunction { export: c.export, reason });
                continue;
            }
        };
        let name = tool_name(c.interface.as_deref(), &c.name);
        if !manifest::is_ident(&name, &[], 64) {
            return Err(format!(
                "export `{}` maps to tool name `{name}`, which is not [a-z][a-z0-9_]* of at most 64 characters",
                c.export
            ));
        }
        if let Some(other) = offered.iter().find(|t| t.tool == name) {
            return Err(format!("exports `{}` and `{}` both map to tool name `{name}`", other.export, c.export));
        }
        let params: Vec<&str> = sig.params.iter().map(|(n, _)| n.as_str()).collect();
        tools.push(ToolSpec {
            name: name.clone(),
            description: format!(
                "Calls `{}`, a function of a plain WebAssembly component (parameters: {}).",
                c.export,
                if params.is_empty() { "none".to_string() } else { params.join(", ") }
            ),
            input_schema: sig.input,
            output_schema: Some(sig.output),
            effects,
            idempotent,
            compensation: None,
            requests: None,
        });
        schemas.push((input, Some(output)));
        funcs.insert(
            name.clone(),
            PlainFunc {
                index: c.index,
                params: sig.params,
                has_result: sig.result.is_some(),
                top_result: sig.top_result,
                lift: budget::LiftCost::of(sig.result.as_ref()),
            },
        );
        offered.push(PlainTool { tool: name, export: c.export });
    }
    if tools.is_empty() {
        let why: Vec<String> = unsupported.iter().map(|u| format!("`{}`: {}", u.export, u.reason)).collect();
        return Err(format!(
            "no callable functions: the component exports {total} function(s){}",
            if why.is_empty() { String::new() } else { format!(", none with a JSON mapping ({})", why.join("; ")) }
        ));
    }
    if tools.len() > manifest::MAX_TOOLS {
        return Err(format!("{} functions, over the limit of {} tools", tools.len(), manifest::MAX_TOOLS));
    }
    let description = format!(
        "Plain WebAssembly component (no Tollgate manifest): {} of its {total} exported function(s) offered as tools.",
        tools.len()
    );
    let manifest = Manifest {
        name: component_name(bytes),
        version: "0.0.0".into(),
        description,
        tools,
        hosts: Vec::new(),
        credentials: Vec::new(),
    };
    Ok(Analysis { manifest, schemas, funcs, info: PlainInfo { tools: offered, unsupported } })
}

/// Every exported function: world-level ones and those inside exported interfaces.
fn candidates(component: &Component, engine: &Engine, unsupported: &mut Vec<UnsupportedFunction>) -> Vec<Candidate> {
    let ty = component.component_type();
    let mut out = Vec::new();
    for (name, ext) in ty.exports(engine) {
        match &ext.ty {
            ComponentItem::ComponentFunc(func) => {
                if let Some(index) = component.get_export_index(None, name) {
                    out.push(Candidate {
                        interface: None,
                        name: name.to_string(),
                        export: name.to_string(),
                        index,
                        func: func.clone(),
                    });
                }
            }
            ComponentItem::ComponentInstance(instance) => {
                let Some(parent) = component.get_export_index(None, name) else { continue };
                for (fname, item) in instance.exports(engine) {
                    let export = format!("{name}#{fname}");
                    match &item.ty {
                        ComponentItem::ComponentFunc(func) => {
                            if let Some(index) = component.get_export_index(Some(&parent), fname) {
                                out.push(Candidate {
                                    interface: Some(name.to_string()),
                                    name: fname.to_string(),
                                    export,
                                    index,
                                    func: func.clone(),
                                });
                            }
                        }
                        ComponentItem::ComponentInstance(_) => unsupported
                            .push(UnsupportedFunction { export, reason: "nested instances are not supported".into() }),
                        // Types and resources are not callable; functions using them are judged
                        // on their own.
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Why an export is a toolchain's internal entry point rather than a tool (see the module docs
/// for the rule), or `None`.
fn toolchain_internal(c: &Candidate) -> Option<&'static str> {
    let params: Vec<&str> = c.func.params().map(|(name, _)| name).collect();
    (c.interface.as_deref() == Some("exports") && c.name == "init" && params == ["app-name", "symbols"])
        .then_some("hidden: componentize-py's internal initialisation entry point, not a tool")
}

fn compile(schema: &serde_json::Value) -> Result<Schema, String> {
    let text = schema.to_string();
    if text.len() > manifest::MAX_SCHEMA {
        return Err(format!(
            "its derived JSON Schema is {} bytes, over the limit of {}",
            text.len(),
            manifest::MAX_SCHEMA
        ));
    }
    Schema::compile(&text).map_err(|e| format!("derived schema does not compile: {e}"))
}

/// `pkg:ns/pricing@1.0.0` + `check-class` → `pricing_check_class`; `greet` → `greet`.
pub(crate) fn tool_name(interface: Option<&str>, func: &str) -> String {
    let func = func.strip_prefix("[static]").unwrap_or(func).replace('.', "_");
    let full = match interface {
        Some(i) => {
            let unversioned = i.split('@').next().unwrap_or(i);
            format!("{}_{func}", unversioned.rsplit('/').next().unwrap_or(unversioned))
        }
        None => func,
    };
    full.to_ascii_lowercase().replace('-', "_")
}

fn effects(capabilities: &[Capability]) -> (Effects, bool) {
    let http = capabilities.contains(&Capability::Http);
    let kv = capabilities.contains(&Capability::Kv);
    (Effects { read: http, write: http, ..Effects::default() }, !http && !kv)
}

/// The component's own name from its `component-name` custom section, made a valid plugin name
/// (`[a-z][a-z0-9_-]*`, at most 64), or `component`.
fn component_name(bytes: &[u8]) -> String {
    let raw = name_section(bytes).unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' { c } else { '-' })
        .skip_while(|c| !c.is_ascii_lowercase())
        .take(64)
        .collect();
    name.truncate(name.trim_end_matches('-').len());
    if name.is_empty() { "component".into() } else { name }
}

/// Reads the component's name: top-level custom section `component-name`, subsection 0. Every
/// read is bounds-checked: the bytes are untrusted (though already validated by wasmtime).
fn name_section(bytes: &[u8]) -> Option<String> {
    let mut r = Reader { bytes: bytes.get(8..)?, pos: 0 };
    while r.pos < r.bytes.len() {
        let id = r.byte()?;
        let size = r.leb()? as usize;
        let section = r.take(size)?;
        if id != 0 {
            continue;
        }
        let mut s = Reader { bytes: section, pos: 0 };
        if s.name()? != "component-name" {
            continue;
        }
        while s.pos < s.bytes.len() {
            let sub = s.byte()?;
            let size = s.leb()? as usize;
            let body = s.take(size)?;
            if sub == 0 {
                return Reader { bytes: body, pos: 0 }.name();
            }
        }
        return None;
    }
    None
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn leb(&mut self) -> Option<u32> {
        let mut out: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            out |= u32::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn name(&mut self) -> Option<String> {
        let n = self.leb()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names() {
        assert_eq!(tool_name(Some("acme:shop/pricing@1.2.0"), "check-class"), "pricing_check_class");
        assert_eq!(tool_name(Some("local-iface"), "run"), "local_iface_run");
        assert_eq!(tool_name(None, "greet-all"), "greet_all");
        assert_eq!(tool_name(Some("a:b/c"), "[static]account.open-new"), "c_account_open_new");
        assert_eq!(tool_name(None, "get-HTTP"), "get_http");
    }

    #[test]
    fn component_names_from_the_name_section() {
        // Header, then a custom section `component-name` with subsection 0 = "My Calc 2".
        let mut section = vec![14];
        section.extend(b"component-name");
        section.extend([0, 10, 9]);
        section.extend(b"My Calc 2");
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        bytes.push(0);
        bytes.push(section.len() as u8);
        bytes.extend(&section);
        assert_eq!(component_name(&bytes), "my-calc-2");
        assert_eq!(component_name(b"\0asm\x0d\0\x01\0"), "component");
        // A truncated section is no name, not a panic.
        assert_eq!(component_name(&bytes[..bytes.len() - 3]), "component");
        let mut odd = bytes.clone();
        let at = odd.len() - 9;
        odd[at..].copy_from_slice(b"9-_ Tools");
        assert_eq!(component_name(&odd), "tools");
    }

    #[test]
    fn effects_follow_imports() {
        assert_eq!(effects(&[]), (Effects::default(), true));
        let (e, idem) = effects(&[Capability::Http, Capability::Log]);
        assert!(e.read && e.write && !e.spend && !idem);
        assert!(!effects(&[Capability::Kv]).1);
    }
}
