//! The JSON Schema of the format, for editors (taplo / Even Better TOML read it through a
//! `#:schema` comment). Generated from [`crate::spec`], the same tables the parser checks
//! against, so the two cannot disagree; `schemas/workflow.schema.json` in the repository is
//! this output, and a test fails when it is stale (`TOLLGATE_BLESS=1` rewrites it).
//!
//! The schema checks shapes, types, names, bounds of integers and the spelling of durations and
//! sizes; cross references, CEL and bounds of durations are the parser's job.

use serde_json::{Map, Value, json};

use tollgate_contract::units::{BYTES_REGEX, DURATION_REGEX, format_duration};

use crate::spec::{KeySpec, ROOT, SEMVER_REGEX, TableSpec, Ty};

/// The JSON Schema (draft-07) of a workflow file.
pub fn json_schema() -> Value {
    let mut defs = Map::new();
    let mut root = table(&ROOT, &mut defs);
    let obj = root.as_object_mut().expect("a table schema is an object");
    obj.insert("$schema".into(), json!("http://json-schema.org/draft-07/schema#"));
    obj.insert("title".into(), json!("Tollgate workflow"));
    obj.insert("definitions".into(), Value::Object(defs));
    root
}

fn def_id(spec: &TableSpec) -> String {
    spec.title
        .chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c)
            } else if c == '.' {
                Some('_')
            } else {
                None
            }
        })
        .collect()
}

fn reference(spec: &'static TableSpec, defs: &mut Map<String, Value>) -> Value {
    let id = def_id(spec);
    if !defs.contains_key(&id) {
        defs.insert(id.clone(), Value::Null); // reserve: tables do not nest recursively, but be safe
        let t = table(spec, defs);
        defs.insert(id.clone(), t);
    }
    json!({ "$ref": format!("#/definitions/{id}") })
}

fn table(spec: &'static TableSpec, defs: &mut Map<String, Value>) -> Value {
    let mut props = Map::new();
    for k in spec.keys {
        props.insert(k.name.to_string(), key(k, defs));
    }
    let required: Vec<&str> = spec.keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    let mut t = json!({
        "type": "object",
        "description": spec.doc,
        "properties": props,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        t["required"] = json!(required);
    }
    if !spec.exactly_one_of.is_empty() {
        t["oneOf"] = Value::Array(spec.exactly_one_of.iter().map(|k| json!({ "required": [k] })).collect());
    }
    t
}

fn key(k: &KeySpec, defs: &mut Map<String, Value>) -> Value {
    let mut s = ty(&k.ty, defs);
    let mut doc = k.doc.to_string();
    if let Ty::Duration { min, max } = k.ty {
        doc.push_str(&format!(" Between {} and {}.", format_duration(min), format_duration(max)));
    }
    if let Some(d) = k.default {
        doc.push_str(&format!(" Default: {d}."));
    }
    if k.required {
        doc.push_str(" Required.");
    }
    if let Some(obj) = s.as_object_mut() {
        if obj.contains_key("$ref") {
            // draft-07 ignores siblings of `$ref`: wrap it so the description shows.
            s = json!({ "allOf": [s], "description": doc });
        } else {
            obj.insert("description".into(), json!(doc));
            if let Some(d) = k.default.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                obj.insert("default".into(), d);
            }
        }
    }
    s
}

fn ty(t: &Ty, defs: &mut Map<String, Value>) -> Value {
    match t {
        Ty::Str | Ty::Cel => json!({ "type": "string" }),
        Ty::Name(rule) => json!({ "type": "string", "pattern": rule.regex }),
        Ty::Semver => json!({ "type": "string", "pattern": SEMVER_REGEX }),
        Ty::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Ty::Number { min, max } => json!({ "type": "number", "minimum": min, "maximum": max }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Duration { .. } => json!({ "type": "string", "pattern": DURATION_REGEX }),
        Ty::Bytes { min, max } => json!({
            "anyOf": [
                { "type": "integer", "minimum": min, "maximum": max },
                { "type": "string", "pattern": BYTES_REGEX },
            ]
        }),
        Ty::StrList => json!({ "type": "array", "items": { "type": "string" } }),
        Ty::Enum(values) => json!({ "type": "string", "enum": values }),
        Ty::EnumList(values) => json!({ "type": "array", "items": { "type": "string", "enum": values } }),
        Ty::BoolOrName(rule) => {
            json!({ "anyOf": [{ "type": "boolean" }, { "type": "string", "pattern": rule.regex }] })
        }
        Ty::StrListMap => {
            json!({ "type": "object", "additionalProperties": { "type": "array", "items": { "type": "string" } } })
        }
        Ty::StrMap => {
            json!({ "type": "object", "additionalProperties": { "type": "string", "pattern": "^(env|file):.+$" } })
        }
        Ty::Table(spec) => reference(spec, defs),
        Ty::Named(spec, rule) => json!({
            "type": "object",
            "propertyNames": { "pattern": rule.regex },
            "additionalProperties": reference(spec, defs),
        }),
        Ty::Array(spec) => json!({ "type": "array", "items": reference(spec, defs) }),
        Ty::JsonSchema => json!({ "type": "object" }),
        Ty::Any => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::spec::TableSpec;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `schemas/workflow.schema.json` is the generated schema; `TOLLGATE_BLESS=1` rewrites it.
    #[test]
    fn schema_file_is_current() {
        let path = repo().join("schemas/workflow.schema.json");
        let text = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("TOLLGATE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(on_disk == text, "{} is stale: run `TOLLGATE_BLESS=1 cargo test -p tollgate-workflow`", path.display());
    }

    fn toml_json(text: &str) -> Value {
        let root = toml::de::DeTable::parse(text).unwrap();
        let node = toml::Spanned::new(root.span(), toml::de::DeValue::Table(root.into_inner()));
        crate::spans::to_json(&node).unwrap()
    }

    #[test]
    fn schema_accepts_the_example_and_rejects_what_the_parser_rejects() {
        let schema = json_schema();
        jsonschema::meta::validate(&schema).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/valid_campaign_review.toml"),
        )
        .unwrap();
        let doc = toml_json(&example);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:?}");
        for bad in [
            "name = 't'\nversion = '1.0.0'\nsourc = 1",
            "name = 'T'\nversion = '1.0.0'",
            "name = 't'\nversion = '1.0'",
            "name = 't'\nversion = '1.0.0'\n[run]\nmax_steps = 0",
            "name = 't'\nversion = '1.0.0'\n[run]\ndeadline = '30'",
            "name = 't'\nversion = '1.0.0'\n[[steps]]\nid = 'a'\ntool = 'x.y'\nagent = 'b'",
            "name = 't'\nversion = '1.0.0'\n[plugins.ads]\nsource = 'a'\ngrants.credentials = { meta = 'META' }",
            "name = 't'\nversion = '1.0.0'\n[[policy.approvals]]\naction = 'maybe'",
        ] {
            assert!(!validator.is_valid(&toml_json(bad)), "the schema should reject:\n{bad}");
        }
    }

    fn all_specs(spec: &'static TableSpec, out: &mut Vec<&'static TableSpec>) {
        if out.iter().any(|s| std::ptr::eq(*s, spec)) {
            return;
        }
        out.push(spec);
        for k in spec.keys {
            if let Ty::Table(s) | Ty::Named(s, _) | Ty::Array(s) = &k.ty {
                all_specs(s, out);
            }
        }
    }

    /// The README is the format's reference: it must name every key of every table, and its
    /// complete example must load.
    #[test]
    fn readme_documents_every_key_and_its_example_loads() {
        let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
        let mut specs = Vec::new();
        all_specs(&ROOT, &mut specs);
        let mut missing = Vec::new();
        for spec in specs {
            for k in spec.keys {
                if !readme.contains(&format!("`{}`", k.name)) {
                    missing.push(format!("{}.{}", spec.title, k.name));
                }
            }
        }
        assert!(missing.is_empty(), "README.md does not document: {missing:?}");
        let section = readme.find("## Complete example").expect("README has the complete example");
        let start = section + readme[section..].find("```toml\n").unwrap() + "```toml\n".len();
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let loaded = crate::parse(example, Path::new("README.md"));
        assert!(loaded.as_ref().is_ok_and(|w| w.warnings.is_empty()), "{:?}", loaded.err().map(|d| d.to_string()));
    }
}
