//! Generates `docs/audit-events.md` from the [`AuditEvent`](super::AuditEvent) types and checks
//! the checked-in copy is current: a kind or field added without its doc fails this test.
//! `TOLLGATE_BLESS=1 cargo test -p tollgate-store audit_events_doc` rewrites the file.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::{Map, Value};

use super::AuditEvent;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit-events.md");

const INTRO: &str = "\
# Audit events

<!-- Generated from host/store/src/audit/event.rs by `TOLLGATE_BLESS=1 cargo test -p tollgate-store \
audit_events_doc`; a test fails when this file is stale. Edit the types' doc comments, not this file. -->

`tollgate audit export --format jsonl` writes one record per line:

| field | meaning |
|---|---|
| `seq` | position in the chain, from 1 |
| `ts` | milliseconds since the Unix epoch, when the record was written |
| `run_id` | the run it belongs to (`null` for records of no run) |
| `kind` | one of the kinds below |
| `body` | the kind's fields, below; every field is always present (`null` or empty when it does not apply) |
| `prev_hash` | `hash` of the record before (64 zeros for `seq` 1) |
| `hash` | `sha256_hex(prev_hash + \"\\n\" + canonical_json({seq, ts, run_id, kind, body}))` |

Canonical JSON: object keys sorted, no insignificant whitespace (see `host/store/src/audit/canonical.rs`).
";

#[test]
fn audit_events_doc() {
    let generated = render();
    if std::env::var_os("TOLLGATE_BLESS").is_some() {
        std::fs::write(DOC_PATH, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    assert!(
        current == generated,
        "docs/audit-events.md is stale: run `TOLLGATE_BLESS=1 cargo test -p tollgate-store audit_events_doc`"
    );
}

/// The whole document.
fn render() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(AuditEvent)).unwrap();
    let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
    let mut out = String::from(INTRO);
    let mut referenced = BTreeSet::new();
    out.push_str("\n## Kinds\n");
    for variant in schema["oneOf"].as_array().unwrap() {
        let kind = variant["properties"]["kind"]["const"].as_str().unwrap();
        let body = resolve(&variant["properties"]["body"], &defs);
        let _ = write!(out, "\n### `{kind}`\n\n{}\n", text(variant));
        if let Some(more) = body.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "\n{more}");
        }
        table(&mut out, &body, &defs, &mut referenced);
    }
    out.push_str("\n## Types used in bodies\n");
    let mut done = BTreeSet::new();
    while let Some(name) = referenced.iter().find(|n| !done.contains(*n)).cloned() {
        done.insert(name.clone());
        let def = &defs[&name];
        let _ = write!(out, "\n### {name}\n\n");
        if let Some(description) = def.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{description}");
        }
        if def.get("properties").is_some() || def.get("oneOf").is_some() {
            let mut more = BTreeSet::new();
            table(&mut out, def, &defs, &mut more);
            referenced.extend(more);
        } else {
            let _ = writeln!(out, "\n{}", type_of(def, &mut referenced));
        }
    }
    out
}

/// A field table for an object schema; a flattened tagged enum (`oneOf` of objects) adds its
/// tag and each variant's fields, marked with the variant they belong to.
fn table(out: &mut String, schema: &Value, defs: &Map<String, Value>, referenced: &mut BTreeSet<String>) {
    out.push_str("\n| field | type | meaning |\n|---|---|---|\n");
    let required: BTreeSet<&str> =
        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for (name, field) in schema["properties"].as_object().into_iter().flatten() {
        // Fields a record may leave out (only in nested records; a body has every field).
        let optional = if required.contains(name.as_str()) { "" } else { " (may be absent)" };
        let _ = writeln!(out, "| `{name}`{optional} | {} | {} |", type_of(field, referenced), cell(&text(field)));
    }
    for variant in schema["oneOf"].as_array().into_iter().flatten() {
        let variant = resolve(variant, defs);
        let Some(props) = variant["properties"].as_object() else { continue };
        // The tag: the one property with a `const` value.
        let Some((tag, value)) = props.iter().find_map(|(k, v)| Some((k, v.get("const")?.as_str()?))) else {
            continue;
        };
        let _ = writeln!(out, "| `{tag}` = `{value}` | string | {} |", cell(&text(&variant)));
        for (name, field) in props.iter().filter(|(k, _)| *k != tag) {
            let _ = writeln!(
                out,
                "| `{name}` (when `{tag}` = `{value}`) | {} | {} |",
                type_of(field, referenced),
                cell(&text(field))
            );
        }
    }
}

/// A short type name: `string`, `integer`, `[ChargeRecord](#chargerecord)`, `map of string`, …
fn type_of(schema: &Value, referenced: &mut BTreeSet<String>) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference).to_string();
        let link = format!("[{name}](#{})", name.to_lowercase());
        referenced.insert(name);
        return link;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let names: Vec<String> = options.iter().map(|o| type_of(o, referenced)).collect();
            return names.join(" or ");
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", v.as_str().unwrap_or("?"))).collect();
        return format!("one of {}", values.join(", "));
    }
    if let Some(value) = schema.get("const") {
        return format!("`{}`", value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return "any JSON".to_string(),
    };
    let mut names = Vec::new();
    for t in types {
        names.push(match t {
            "array" => format!("list of {}", type_of(&schema["items"], referenced)),
            "object" => match schema.get("additionalProperties") {
                Some(values @ Value::Object(_)) => format!("map of {}", type_of(values, referenced)),
                _ => "object".to_string(),
            },
            "null" => "null".to_string(),
            other => other.to_string(),
        });
    }
    names.join(" or ")
}

fn resolve(schema: &Value, defs: &Map<String, Value>) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => defs[reference.rsplit('/').next().unwrap_or(reference)].clone(),
        None => schema.clone(),
    }
}

fn text(schema: &Value) -> String {
    schema.get("description").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}
