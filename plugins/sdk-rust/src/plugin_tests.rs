//! Unit tests for schema generation, input parsing, dispatch and manifest validation; they run
//! natively and never touch a capability.

use super::*;
use crate::Deserialize;

/// Input of the test tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchInput {
    /// What to look for.
    query: String,
    /// At most this many results.
    limit: Option<u32>,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Filter {
    property: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct SearchOutput {
    /// Echo of the query.
    query: String,
    limit: u32,
    key: String,
}

fn search(ctx: &Context, input: SearchInput) -> Result<SearchOutput, ToolError> {
    if input.query == "boom" {
        return Err(ToolError::upstream(Some(502), "bad gateway"));
    }
    Ok(SearchOutput {
        query: input.query,
        limit: input.limit.unwrap_or(10) + input.filters.iter().filter(|f| !f.property.is_empty()).count() as u32,
        key: ctx.idempotency_key().to_owned(),
    })
}

fn plugin() -> Plugin {
    Plugin::new("test", "1.0.0", "Test plugin")
        .host("https://api.example.com")
        .credential(Credential::bearer("example", "api.example.com", "token"))
        .tool(Tool::new("search", "Search things.", search).effects(Effects::READ).idempotent())
        .tool(
            Tool::new("create", "Create things.", search)
                .effects(Effects::WRITE | Effects::SPEND)
                .compensation("search"),
        )
}

fn context() -> CallContext {
    CallContext { run_id: "run-1".into(), call_id: "call-1".into(), idempotency_key: "key-1".into() }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn input_schema_is_draft_2020_12_with_descriptions_and_closed_objects() {
    let schema = json(&schema_for::<SearchInput>());
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["query"]));
    assert_eq!(schema["properties"]["query"]["description"], "What to look for.");
    assert_eq!(schema["properties"]["limit"]["description"], "At most this many results.");
    // Nested types land in `$defs` and keep `deny_unknown_fields`.
    assert_eq!(schema["$defs"]["Filter"]["additionalProperties"], false);
}

#[test]
fn output_schema_is_generated_from_the_output_type() {
    let schema = json(&schema_for::<SearchOutput>());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["query"]["description"], "Echo of the query.");
    assert!(schema.get("additionalProperties").is_none());
}

#[test]
fn manifest_carries_tools_hosts_and_credentials() {
    let manifest = manifest(&plugin());
    assert_eq!(manifest.name, "test");
    assert_eq!(manifest.hosts, vec!["https://api.example.com".to_owned()]);
    assert_eq!(manifest.credentials.len(), 1);
    assert_eq!(manifest.credentials[0].header, "authorization");
    assert_eq!(manifest.credentials[0].value_prefix, "Bearer ");
    let search = &manifest.tools[0];
    assert_eq!(search.effects, Effects::READ);
    assert!(search.idempotent);
    assert_eq!(search.compensation, None);
    assert_eq!(json(&search.input_schema)["additionalProperties"], false);
    assert!(search.output_schema.is_some());
    let create = &manifest.tools[1];
    assert_eq!(create.effects, Effects::WRITE | Effects::SPEND);
    assert!(!create.idempotent);
    assert_eq!(create.compensation.as_deref(), Some("search"));
}

#[test]
fn call_runs_the_tool_with_context() {
    let out = call(&plugin(), "search", r#"{"query":"ada","limit":3}"#, context()).unwrap();
    assert_eq!(json(&out), serde_json::json!({"query": "ada", "limit": 3, "key": "key-1"}));
}

#[test]
fn unknown_tool_is_not_found() {
    let error = call(&plugin(), "nope", "{}", context()).unwrap_err();
    assert!(matches!(error, WitToolError::NotFound(m) if m.contains("nope")));
}

#[test]
fn bad_input_is_invalid_input_with_the_field_path() {
    let error = call(&plugin(), "search", r#"{"query":"a","limit":"x"}"#, context()).unwrap_err();
    let WitToolError::InvalidInput(message) = error else {
        panic!("expected invalid-input, got {error:?}");
    };
    assert!(message.starts_with("invalid input: limit: invalid type"), "{message}");

    let error =
        call(&plugin(), "search", r#"{"query":"a","filters":[{"property":"p","extra":1}]}"#, context()).unwrap_err();
    let WitToolError::InvalidInput(message) = error else {
        panic!("expected invalid-input, got {error:?}");
    };
    assert!(message.contains("filters[0]"), "{message}");
    assert!(message.contains("unknown field `extra`"), "{message}");

    let error = call(&plugin(), "search", r#"{"limit":1}"#, context()).unwrap_err();
    assert!(matches!(error, WitToolError::InvalidInput(m) if m.contains("missing field `query`")));

    let error = call(&plugin(), "search", r#"{"query":"a"} trailing"#, context()).unwrap_err();
    assert!(matches!(error, WitToolError::InvalidInput(_)));
}

#[test]
fn tool_errors_reach_the_host_typed() {
    let error = call(&plugin(), "search", r#"{"query":"boom"}"#, context()).unwrap_err();
    let WitToolError::Upstream(upstream) = error else {
        panic!("expected upstream, got {error:?}");
    };
    assert_eq!(upstream.status, Some(502));
    assert_eq!(upstream.message, "bad gateway");
}

#[test]
fn validate_accepts_a_good_plugin() {
    plugin().validate().unwrap();
}

#[test]
fn validate_reports_every_problem() {
    let bad = Plugin::new("Bad Name", "", "x")
        .credential(Credential::bearer("ok", "https://api.example.com", "t"))
        .tool(Tool::new("Search", "x", search))
        .tool(Tool::new("dup", "x", search).compensation("missing"))
        .tool(Tool::new("dup", "x", search))
        .tool(Tool::new("scalar", "x", |_: &Context, n: u32| Ok(n)));
    let problems = bad.validate().unwrap_err();
    for expected in [
        "plugin name `Bad Name`",
        "plugin version is empty",
        "needs a bare host name",
        "tool name `Search`",
        "compensation `missing`",
        "`dup` is used twice",
        "`scalar` input schema must describe an object",
    ] {
        assert!(problems.contains(expected), "missing {expected:?} in:\n{problems}");
    }
}
