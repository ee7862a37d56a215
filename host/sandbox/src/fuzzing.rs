//! Entry points for `fuzz/` (feature `fuzzing`, off in every normal build): the parts of the
//! sandbox untrusted bytes reach that have no public door of their own. Not an API.

use serde_json::Value;

use crate::bindings::requests::exports::tollgate::plugin::requests::ToolRequests;
use crate::bindings::tollgate::plugin::types as wit;

/// A guest's manifest, written as JSON with the WIT record's field names (missing or mistyped
/// fields become empty values), through the same conversion and validation as a load. A
/// `requests` key (`[{"tool": …, "scopes": [...]}]`) stands for the optional `requests` export.
pub fn check_manifest(doc: &Value) -> Result<(), String> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let list = |v: &Value, k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let strings =
        |v: &Value, k: &str| list(v, k).iter().filter_map(Value::as_str).map(String::from).collect::<Vec<_>>();
    let tools = list(doc, "tools")
        .iter()
        .map(|t| wit::Tool {
            name: text(t, "name"),
            description: text(t, "description"),
            input_schema: text(t, "input-schema"),
            output_schema: t.get("output-schema").and_then(Value::as_str).map(String::from),
            effects: effects(t.get("effects").and_then(Value::as_u64).unwrap_or(0)),
            idempotent: t.get("idempotent").and_then(Value::as_bool).unwrap_or(false),
            compensation: t.get("compensation").and_then(Value::as_str).map(String::from),
        })
        .collect();
    let credentials = list(doc, "credentials")
        .iter()
        .map(|c| wit::Credential {
            name: text(c, "name"),
            host: text(c, "host"),
            header: text(c, "header"),
            value_prefix: text(c, "value-prefix"),
            description: text(c, "description"),
        })
        .collect();
    let manifest = wit::Manifest {
        name: text(doc, "name"),
        version: text(doc, "version"),
        description: text(doc, "description"),
        tools,
        hosts: strings(doc, "hosts"),
        credentials,
    };
    let requests = doc.get("requests").and_then(Value::as_array).map(|declared| {
        declared.iter().map(|r| ToolRequests { tool: text(r, "tool"), scopes: strings(r, "scopes") }).collect()
    });
    crate::manifest::check(manifest, requests).map(|_| ()).map_err(|e| e.to_string())
}

/// The WIT flags from the low five bits, in declaration order.
fn effects(bits: u64) -> wit::Effects {
    let flags = [
        wit::Effects::READ,
        wit::Effects::WRITE,
        wit::Effects::SEND_MESSAGE,
        wit::Effects::SPEND,
        wit::Effects::DELETE,
    ];
    flags
        .into_iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(wit::Effects::empty(), |all, (_, f)| all | f)
}
