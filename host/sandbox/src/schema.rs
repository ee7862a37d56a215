//! JSON Schema checks for tool inputs and outputs. Schemas are compiled once at load; an
//! invalid schema is a manifest error, not a call error.

use serde_json::Value;

/// A compiled JSON Schema, with regexes in the linear-time engine: safe for untrusted schemas.
#[derive(Debug, Clone)]
pub struct Schema {
    validator: jsonschema::Validator,
}

/// At most this many violations are listed in one error.
const MAX_LISTED: usize = 5;

impl Schema {
    /// Compiles `text` (a JSON Schema document). The error says what is wrong.
    pub fn compile(text: &str) -> Result<Schema, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if !(doc.is_object() || doc.is_boolean()) {
            return Err("a JSON Schema must be an object or a boolean".into());
        }
        // Schemas come from untrusted plugins: use the linear-time regex engine with bounded
        // compiled size, so no pattern can make validation super-linear in the document.
        let patterns = jsonschema::PatternOptions::regex().size_limit(1 << 20).dfa_size_limit(1 << 20);
        let validator = jsonschema::options()
            .with_pattern_options(patterns)
            .build(&doc)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))?;
        Ok(Schema { validator })
    }

    /// Checks `value`, listing each violation with its JSON pointer (`/to/0/email: …`).
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(value)
            .take(MAX_LISTED + 1)
            .map(|e| {
                let path = e.instance_path().to_string();
                let at = if path.is_empty() { "(root)".to_string() } else { path };
                format!("{at}: {e}")
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        let more = if errors.len() > MAX_LISTED { "; …" } else { "" };
        Err(format!("{}{more}", errors.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_paths() {
        let s = Schema::compile(r#"{"type":"object","properties":{"to":{"type":"array","items":{"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}}},"required":["to"],"additionalProperties":false}"#).unwrap();
        assert!(s.check(&serde_json::json!({"to":[{"email":"a@b"}]})).is_ok());
        let e = s.check(&serde_json::json!({"to":[{"mail":"a@b"}], "x": 1})).unwrap_err();
        assert!(e.contains("/to/0"), "{e}");
        assert!(e.contains("(root)"), "{e}");
        assert!(Schema::compile("{").is_err());
        assert!(Schema::compile(r#"{"type": 5}"#).is_err());
    }
}
