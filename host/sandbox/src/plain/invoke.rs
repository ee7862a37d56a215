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
//!
//! What converting the values costs the host is bounded by the call's memory limit
//! ([`super::budget`]): the input's conversion counts its allocations; the result's lifting runs
//! under hostcall fuel set from the result's type, and running out of it is
//! [`CallError::ValueTooLarge`]; the output is written as JSON text that stops growing at the
//! output limit ([`CallError::OutputTooLarge`], with its full size).

use std::time::Instant;

use serde_json::Value;
use tollgate_contract::Limits;
use wasmtime::Store;
use wasmtime::component::{Instance, Val};

use super::PlainExports;
use super::value::{self, ConvertError, Text};
use crate::call::{settle, wait_until};
use crate::error::{CallError, ToolError, ValueSide};
use crate::state::CallState;

/// Converts `input` for `tool`: the exact check, after the schema, within the call's memory
/// limit. An invalid input's error names the JSON path and the expected WIT type.
pub(crate) fn arguments(
    exports: &PlainExports,
    tool: &str,
    input: &Value,
    limits: &Limits,
) -> Result<Vec<Val>, CallError> {
    let converted = match exports.funcs.get(tool) {
        Some(f) => value::arguments(&f.params, input, limits.memory_bytes),
        None => Err(ConvertError::Invalid(format!("unknown tool `{tool}`"))),
    };
    converted.map_err(|e| match e {
        ConvertError::Invalid(message) => CallError::InvalidInput { message },
        ConvertError::TooLarge => CallError::ValueTooLarge { side: ValueSide::Input, limit: limits.memory_bytes },
    })
}

/// When the schema refused `input`: the conversion's precise message, if it refuses too.
pub(crate) fn explain(exports: &PlainExports, tool: &str, input: &Value, limits: &Limits) -> Option<String> {
    match arguments(exports, tool, input, limits) {
        Err(CallError::InvalidInput { message }) => Some(message),
        _ => None,
    }
}

/// What wasmtime 48 says when a lift runs out of hostcall fuel (its error type is private).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

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
    // Set for every call: a warm instance's store keeps what the previous call set.
    store.set_hostcall_fuel(f.lift.fuel(limits.memory_bytes));
    let called = tokio::time::timeout_at(wait_until(deadline), func.call_async(&mut *store, &args, &mut results)).await;
    if let Ok(Err(e)) = &called
        && format!("{e:#}").contains(HOSTCALL_FUEL_EXHAUSTED)
    {
        return Err(CallError::ValueTooLarge { side: ValueSide::Output, limit: limits.memory_bytes });
    }
    settle(called, store, limits, false)?;
    let output = |v: &Val| {
        let mut text = Text::new(limits.output_bytes);
        value::write_json(v, &mut text, &mut String::from("output"))
            .map_err(|message| CallError::InvalidOutput { message })?;
        text.finish().map_err(|size| CallError::OutputTooLarge { size, limit: limits.output_bytes })
    };
    match results.pop() {
        None => Ok("null".into()),
        Some(Val::Result(r)) if f.top_result => match r {
            Ok(v) => Ok(v.as_deref().map(output).transpose()?.unwrap_or_else(|| "null".into())),
            Err(e) => {
                let message = match e.as_deref() {
                    None => "the function returned err".to_string(),
                    Some(v) => match as_text(v) {
                        Some(text) => text,
                        None => output(v)?,
                    },
                };
                // Clipped with every tool error, after redaction (`Plugin::run`).
                Err(CallError::Tool(ToolError::InvalidInput { message }))
            }
        },
        Some(v) => output(&v),
    }
}

/// The text of a value whose JSON form is a string (a string, char, enum or payload-less case,
/// maybe under an option): a tool error's message is that text, not its JSON.
fn as_text(v: &Val) -> Option<String> {
    match v {
        Val::String(s) | Val::Enum(s) | Val::Variant(s, None) => Some(s.clone()),
        Val::Char(c) => Some(c.to_string()),
        Val::Option(Some(inner)) => as_text(inner),
        _ => None,
    }
}
