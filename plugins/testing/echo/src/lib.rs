//! `echo`: a pure, well-behaved Tollgate test plugin.
//!
//! The benchmark and the host's concurrency tests use it as the baseline plugin: it computes and
//! returns, and nothing else. It imports no `tollgate:plugin` interface and no `wasi:http` (the
//! world's `log`, `kv` and `secrets` imports are never called, so the component encoder drops
//! them), which makes it the plugin a host must load with an empty grant.
//!
//! Tools:
//! - `echo` — returns its input document unchanged (byte for byte).
//! - `add` — `{a, b}` → `{sum}`.
//! - `slow_sum` — `{n}` → `{sum}`, the sum of `0..n` computed by an honest CPU loop, so a call can
//!   be kept busy while another call on the same host is killed.
//! - `calls` — `{}` → `{calls}`: how many calls this instance has served, this one included (1 on
//!   a fresh instance), so tests can see whether the host reused an instance.
//!
//! It uses `wit-bindgen` directly rather than the Tollgate SDK so that the host's tests do not
//! depend on the SDK.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin-core",
});

use exports::tollgate::plugin::tool::Guest;
use serde::Deserialize;
use tollgate::plugin::types::{CallContext, Effects, Manifest, Tool, ToolError};

/// Input schema of `echo`: any object.
const ECHO_INPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "description": "Any JSON object; it is returned unchanged."
}"#;

/// Output schema of `echo`: the input, so any object.
const ECHO_OUTPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object"
}"#;

const ADD_INPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "a": { "type": "number", "description": "First addend." },
    "b": { "type": "number", "description": "Second addend." }
  },
  "required": ["a", "b"],
  "additionalProperties": false
}"#;

const ADD_OUTPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "sum": { "type": "number" }
  },
  "required": ["sum"],
  "additionalProperties": false
}"#;

const SLOW_SUM_INPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "n": {
      "type": "integer",
      "minimum": 0,
      "maximum": 9007199254740991,
      "description": "Sum the integers 0..n (exclusive), one loop iteration each."
    }
  },
  "required": ["n"],
  "additionalProperties": false
}"#;

const CALLS_INPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false
}"#;

const CALLS_OUTPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "calls": { "type": "integer", "minimum": 1, "description": "Calls this instance has served." }
  },
  "required": ["calls"],
  "additionalProperties": false
}"#;

/// Calls served by this instance: guest memory, so it lives exactly as long as the instance.
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const SLOW_SUM_OUTPUT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "sum": { "type": "integer", "minimum": 0, "description": "Sum of 0..n, wrapping at 2^64." }
  },
  "required": ["sum"],
  "additionalProperties": false
}"#;

fn tool(name: &str, description: &str, input: &str, output: &str) -> Tool {
    Tool {
        name: name.to_string(),
        description: description.to_string(),
        input_schema: input.to_string(),
        output_schema: Some(output.to_string()),
        effects: Effects::empty(),
        idempotent: true,
        compensation: None,
    }
}

fn manifest() -> Manifest {
    Manifest {
        name: "echo".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: "Pure test tools: echo, add and a CPU-bound slow_sum. No capabilities.".to_string(),
        tools: vec![
            tool("echo", "Returns the input object unchanged.", ECHO_INPUT, ECHO_OUTPUT),
            tool("add", "Adds two numbers and returns {\"sum\": a + b}.", ADD_INPUT, ADD_OUTPUT),
            tool(
                "slow_sum",
                "Sums the integers 0..n with one CPU loop iteration each and returns {\"sum\"}. \
                 Takes time proportional to n.",
                SLOW_SUM_INPUT,
                SLOW_SUM_OUTPUT,
            ),
            tool(
                "calls",
                "Returns {\"calls\"}: how many calls this instance has served, this one included.",
                CALLS_INPUT,
                CALLS_OUTPUT,
            ),
        ],
        hosts: Vec::new(),
        credentials: Vec::new(),
    }
}

#[derive(Deserialize)]
struct AddInput {
    a: f64,
    b: f64,
}

#[derive(Deserialize)]
struct SlowSumInput {
    n: u64,
}

fn parse<'a, T: Deserialize<'a>>(input: &'a str) -> Result<T, ToolError> {
    serde_json::from_str(input).map_err(|e| ToolError::InvalidInput(e.to_string()))
}

/// Sums `0..n`, one iteration at a time. `black_box` keeps the optimiser from replacing the
/// loop with the closed form, so the time taken really grows with `n`.
fn slow_sum(n: u64) -> u64 {
    let mut sum: u64 = 0;
    let mut i: u64 = 0;
    while i < n {
        sum = std::hint::black_box(sum.wrapping_add(i));
        i += 1;
    }
    sum
}

fn add(input: &str) -> Result<String, ToolError> {
    let AddInput { a, b } = parse(input)?;
    let sum = a + b;
    if !sum.is_finite() {
        return Err(ToolError::InvalidInput("the sum is not a finite number".to_string()));
    }
    Ok(serde_json::json!({ "sum": sum }).to_string())
}

fn dispatch(tool: &str, input: String) -> Result<String, ToolError> {
    // Counted before the tool runs, so every call this instance serves is counted.
    let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    match tool {
        "echo" => Ok(input),
        "calls" => Ok(serde_json::json!({ "calls": calls }).to_string()),
        "add" => add(&input),
        "slow_sum" => {
            let SlowSumInput { n } = parse(&input)?;
            Ok(serde_json::json!({ "sum": slow_sum(n) }).to_string())
        }
        other => Err(ToolError::NotFound(format!("unknown tool: {other}"))),
    }
}

struct Echo;

impl Guest for Echo {
    fn manifest() -> Manifest {
        manifest()
    }

    fn call(tool: String, input: String, _context: CallContext) -> Result<String, ToolError> {
        dispatch(&tool, input)
    }
}

export!(Echo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_returns_input_byte_for_byte() {
        let input = r#"{ "x": [1, 2.50, "é"],  "y": null }"#.to_string();
        assert_eq!(dispatch("echo", input.clone()).unwrap(), input);
    }

    #[test]
    fn add_adds() {
        let out: serde_json::Value =
            serde_json::from_str(&dispatch("add", r#"{"a": 2, "b": 0.5}"#.into()).unwrap()).unwrap();
        assert_eq!(out, serde_json::json!({ "sum": 2.5 }));
    }

    #[test]
    fn slow_sum_matches_closed_form() {
        for n in [0u64, 1, 2, 10, 12_345] {
            assert_eq!(slow_sum(n), n * n.saturating_sub(1) / 2);
        }
        let out = dispatch("slow_sum", r#"{"n": 101}"#.into()).unwrap();
        assert_eq!(out, r#"{"sum":5050}"#);
    }

    #[test]
    fn unknown_tool_is_not_found() {
        assert!(matches!(dispatch("nope", "{}".into()), Err(ToolError::NotFound(_))));
    }

    #[test]
    fn bad_input_is_invalid_input() {
        assert!(matches!(dispatch("add", r#"{"a": "x"}"#.into()), Err(ToolError::InvalidInput(_))));
    }

    #[test]
    fn schemas_are_valid_and_accept_examples() {
        let m = manifest();
        assert_eq!(m.name, "echo");
        let examples = [
            ("echo", r#"{"anything": [1, {"b": true}]}"#, r#"{"k": 1}"#),
            ("add", r#"{"a": 1, "b": 2.5}"#, r#"{"sum": 3.5}"#),
            ("slow_sum", r#"{"n": 1000}"#, r#"{"sum": 499500}"#),
            ("calls", r#"{}"#, r#"{"calls": 1}"#),
        ];
        assert_eq!(m.tools.len(), examples.len());
        for (tool, (name, input, output)) in m.tools.iter().zip(examples) {
            assert_eq!(tool.name, name);
            for (schema, doc) in [(tool.input_schema.as_str(), input), (tool.output_schema.as_deref().unwrap(), output)]
            {
                let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
                jsonschema::meta::validate(&schema).unwrap();
                let validator = jsonschema::validator_for(&schema).unwrap();
                let doc: serde_json::Value = serde_json::from_str(doc).unwrap();
                assert!(validator.is_valid(&doc), "{name}: {doc} against {schema}");
            }
        }
        // The schemas reject what they should.
        let add = jsonschema::validator_for(&serde_json::from_str(ADD_INPUT).unwrap()).unwrap();
        assert!(!add.is_valid(&serde_json::json!({ "a": 1 })));
        let echo = jsonschema::validator_for(&serde_json::from_str(ECHO_INPUT).unwrap()).unwrap();
        assert!(!echo.is_valid(&serde_json::json!([1])));
    }
}
