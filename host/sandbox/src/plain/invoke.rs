//! One call of a plain component's function: JSON input → arguments, an instance in the call's
//! store (fresh, or a warm one reused), a dynamic `Func::call_async` under the same deadline and
//! classification as a Tollgate plugin's `call`, and the returned value → JSON text.
//!
//! A function returning `result<T, E>` at top level: `ok` is the output (`null` for `_`), `err`
//! is the tool's own failure, [`ToolError::InvalidInput`] carrying E as JSON (a string E as the
//! string itself). A plain function cannot say more than that, and for a function of its input
//! an `err` is a refusal of that input; it is never retried. The host knows two causes better
//! and reports them instead (`call::attribute`): an `err` after the egress gate denied one of
//! the call's requests is [`ToolError::Denied`], and any failure after the memory limit refused
//! a `memory.grow` is [`CallError::MemoryLimit`].

use std::time::Instant;

use serde_json::Value;
use tollgate_contract::Limits;
use wasmtime::Store;
use wasmtime::component::{Instance, Val};

use super::{PlainExports, value};
use crate::call::{settle, wait_until};
use crate::error::{CallError, ToolError};
use crate::state::CallState;

/// Converts `input` for `tool`: the exact check, after the schema. The error names the JSON
/// path and the expected WIT type.
pub(crate) fn arguments(exports: &PlainExports, tool: &str, input: &Value) -> Result<Vec<Val>, String> {
    match exports.funcs.get(tool) {
        Some(f) => value::arguments(&f.params, input),
        None => Err(format!("unknown tool `{tool}`")),
    }
}

/// When the schema refused `input`: the conversion's precise message, if it refuses too.
pub(crate) fn explain(exports: &PlainExports, tool: &str, input: &Value) -> Option<String> {
    arguments(exports, tool, input).err()
}

/// A fresh instance of the component in `store`, under the call's deadline.
pub(crate) async fn instantiate(
    exports: &PlainExports,
    store: &mut Store<CallState>,
    limits: &Limits,
    deadline: Instant,
) -> Result<Instance, CallError> {
    let instantiated = tokio::time::timeout_at(wait_until(deadline), exports.pre.instantiate_async(&mut *store)).await;
    settle(instantiated, store, limits, true)
}

/// Calls `tool`'s export on `instance` (fresh or reused); returns the output as JSON text.
pub(crate) async fn invoke(
    exports: &PlainExports,
    instance: &Instance,
    tool: &str,
    args: Vec<Val>,
    store: &mut Store<CallState>,
    limits: &Limits,
    deadline: Instant,
) -> Result<String, CallError> {
    let Some(f) = exports.funcs.get(tool) else {
        return Err(CallError::UnknownTool { tool: tool.to_string(), available: String::new() });
    };
    // The index was resolved against this component at load, so the lookup cannot miss.
    let Some(func) = instance.get_func(&mut *store, f.index) else {
        return Err(CallError::Trap { message: format!("export of tool `{tool}` not found"), backtrace: None });
    };
    let mut results = vec![Val::Bool(false); usize::from(f.has_result)];
    let called = tokio::time::timeout_at(wait_until(deadline), func.call_async(&mut *store, &args, &mut results)).await;
    settle(called, store, limits, false)?;
    let output = |v: &Val| {
        value::to_json(v, &mut String::from("output")).map_err(|message| CallError::InvalidOutput { message })
    };
    let json = match results.pop() {
        None => Value::Null,
        Some(Val::Result(r)) if f.top_result => match r {
            Ok(v) => v.as_deref().map(output).transpose()?.unwrap_or(Value::Null),
            Err(e) => {
                let message = match e.as_deref().map(output).transpose()? {
                    None => "the function returned err".to_string(),
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                };
                // Clipped with every tool error, after redaction (`Plugin::run`).
                return Err(CallError::Tool(ToolError::InvalidInput { message }));
            }
        },
        Some(v) => output(&v)?,
    };
    Ok(json.to_string())
}
