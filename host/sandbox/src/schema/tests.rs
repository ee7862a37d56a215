//! Unit tests of schema compilation and checks, including the hostile schemas of issue 13 §1:
//! `allOf`/`$ref` fan-out and regex bombs.

use super::*;
use serde_json::json;

#[test]
fn reports_paths() {
    let s = Schema::compile(r#"{"type":"object","properties":{"to":{"type":"array","items":{"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}}},"required":["to"],"additionalProperties":false}"#).unwrap();
    assert!(s.check(&json!({"to":[{"email":"a@b"}]})).is_ok());
    let e = s.check(&json!({"to":[{"mail":"a@b"}], "x": 1})).unwrap_err();
    assert!(e.contains("/to/0"), "{e}");
    assert!(e.contains("(root)"), "{e}");
    assert!(Schema::compile("{").is_err());
    assert!(Schema::compile(r#"{"type": 5}"#).is_err());
}

/// The issue's schema: `$defs` nesting `allOf` of two `$ref`s per level (1.7 KB at depth 40;
/// validating one value took over 3 GiB and 8 s). Refused at load, in well under a second.
#[test]
fn fan_out_schema_is_refused_at_load() {
    let mut defs = serde_json::Map::new();
    for i in 0..40 {
        let next = format!("#/$defs/d{}", i + 1);
        defs.insert(format!("d{i}"), json!({"allOf": [{"$ref": next}, {"$ref": next}]}));
    }
    defs.insert("d40".into(), json!({"type": "string"}));
    let text = json!({"$defs": defs, "$ref": "#/$defs/d0"}).to_string();
    let started = Instant::now();
    let e = Schema::compile(&text).unwrap_err();
    assert!(e.contains("subschemas at one location"), "{e}");
    assert!(started.elapsed().as_secs_f64() < 1.0, "{:?}", started.elapsed());
}

/// A self-referencing `allOf` would recurse forever on one location (a stack overflow).
#[test]
fn in_place_cycle_is_refused() {
    let e = Schema::compile(r##"{"$defs":{"a":{"allOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}"##).unwrap_err();
    assert!(e.contains("cycle"), "{e}");
}

/// The issue's regex bomb: ~2,200 `\p{L}{20}` patterns in one 64 KiB schema (1.5 GiB at
/// load). Each pattern is within the old per-pattern cap; the plugin-wide budget refuses them.
#[test]
fn many_patterns_share_one_budget() {
    let props: serde_json::Map<String, Value> = (0..2_200)
        .map(|i| (format!("p{i}"), json!({"type": "string", "pattern": format!("\\p{{L}}{{20}}{i}")})))
        .collect();
    let doc = json!({"type": "object", "properties": props});
    assert_eq!(RegexBudget::count_patterns(&doc), 2_200);
    let e = Schema::compile(&doc.to_string()).unwrap_err();
    assert!(e.contains("regex budget"), "{e}");
    // A few such patterns are fine.
    let few = json!({"properties": {"a": {"pattern": "\\p{L}{20}"}, "b": {"pattern": "^[a-z]+$"}}});
    let s = Schema::compile(&few.to_string()).unwrap();
    assert!(s.check(&json!({"a": "abcdefghijklmnopqrstuvwxyz", "b": "abc"})).is_ok());
    assert!(s.check(&json!({"b": "ABC"})).is_err());
}

#[test]
fn expensive_checks_stop_at_the_first_violation() {
    // Cheap: every violation listed (up to five). Expensive: only the first.
    let s = Schema::compile(r#"{"type":"array","items":{"type":"string"}}"#).unwrap();
    let few = json!([1, 2, 3]);
    assert_eq!(s.check(&few).unwrap_err().matches("is not of type").count(), 3);
    let many = Value::Array((0..200_000).map(|i| json!(i)).collect());
    let e = s.check(&many).unwrap_err();
    assert_eq!(e.matches("is not of type").count(), 1, "{e}");
    assert!(e.contains("not listed"), "{e}");
}

#[tokio::test]
async fn checks_honour_the_deadline() {
    let s = Schema::compile(r#"{"type":"array","items":{"type":"string"}}"#).unwrap();
    let past = Instant::now() - std::time::Duration::from_millis(1);
    assert_eq!(s.check_until(Arc::new(json!(["a"])), past).await, Err(CheckError::Deadline));
    let later = Instant::now() + std::time::Duration::from_secs(5);
    let big = Arc::new(Value::Array((0..300_000).map(|_| json!("x")).collect()));
    assert_eq!(s.check_until(big, later).await, Ok(()));
    let bad = Arc::new(Value::Array((0..300_000).map(|i| json!(i)).collect()));
    assert!(matches!(s.check_until(bad, later).await, Err(CheckError::Invalid(_))));
}

/// Issue 14: a value outside a documented enum (schemars writes `oneOf` of `const`s) is told
/// the candidates, as a plain `enum` already is.
#[test]
fn enum_errors_list_the_candidates() {
    let one_of = Schema::compile(r#"{"oneOf":[{"const":"EQ","description":"equal"},{"const":"NEQ"}]}"#).unwrap();
    assert_eq!(one_of.check(&json!("EQQ")).unwrap_err(), r#"(root): "EQQ" is not one of "EQ", "NEQ""#);
    let plain = Schema::compile(r#"{"properties":{"grade":{"enum":["A","B"]}}}"#).unwrap();
    let e = plain.check(&json!({"grade": "E"})).unwrap_err();
    assert!(e.contains("/grade") && e.contains(r#""A""#) && e.contains(r#""B""#), "{e}");
    let mixed = Schema::compile(r#"{"oneOf":[{"const":1},{"type":"string"}]}"#).unwrap();
    assert!(mixed.check(&json!(2)).unwrap_err().contains("oneOf"), "mixed branches keep the keyword message");
}
