//! The generator against the validator the host uses: valid values are valid, invalid ones
//! are not, seeds repeat, and hostile schemas stay cheap.

use super::*;
use serde_json::json;

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap()
}

/// Schemas shaped like real tools' inputs.
fn schemas() -> Vec<Value> {
    vec![
        json!({"type": "object", "properties": {
            "query": {"type": ["string", "null"], "maxLength": 100},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "sort": {"enum": ["asc", "desc"]}}, "additionalProperties": false}),
        json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 5,
            "items": {"type": "object", "required": ["sku", "qty"], "properties": {"sku": {"type": "string", "minLength": 1}, "qty": {"type": "integer", "minimum": 1}}, "additionalProperties": false}}}}),
        json!({"type": "object", "required": ["email", "at", "id"], "properties": {"email": {"type": "string", "format": "email"}, "at": {"type": "string", "format": "date-time"}, "id": {"type": "string", "format": "uuid"}}}),
        json!({"type": "object", "required": ["code", "account"], "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"}, "account": {"type": "string", "pattern": "^act_[0-9]+$"}}}),
        json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "multipleOf": 7, "minimum": -1e18, "maximum": 1e18}}}),
        json!({"oneOf": [{"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}, "additionalProperties": false},
                         {"type": "object", "required": ["b"], "properties": {"b": {"type": "integer"}}, "additionalProperties": false}]}),
        json!({"$defs": {"Address": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}, "name": {"type": ["string", "null"]}}, "additionalProperties": false}},
               "type": "object", "required": ["to", "from"], "properties": {"to": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"$ref": "#/$defs/Address"}}, "from": {"$ref": "#/$defs/Address"}}, "additionalProperties": false}),
        json!({"$defs": {"Node": {"type": "object", "required": ["v"], "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
               "$ref": "#/$defs/Node"}),
        json!({"type": "object", "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}, "props": {"type": "object", "additionalProperties": {"type": "string"}}}, "required": ["id", "props"]}),
        json!({"type": "object", "properties": {"x": {"type": "number", "minimum": 0.5, "maximum": 2.5}, "flag": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}}}),
        json!({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {"properties": {"b": {"const": 3}}, "required": ["b"]}]}),
        json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(foo|bar)-[a-f0-9]{2,4}(\\.x)?$"}}, "required": ["s"], "additionalProperties": false}),
        json!({"type": "object", "properties": {"ts": {"type": ["string", "null"], "format": "date-time"}, "body": {"type": "string", "minLength": 1}}, "required": ["body"]}),
        json!({"type": "string", "minLength": 2, "maxLength": 3}),
        json!({"type": "object", "additionalProperties": false, "required": ["id", "properties"], "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "properties": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}}}}),
        json!({"type": "object", "properties": {"preset": {"$ref": "#/$defs/P"}}, "$defs": {"P": {"enum": ["today", "last_7d"], "type": "string"}}, "additionalProperties": false}),
    ]
}

#[test]
fn almost_every_value_is_valid_and_every_invalid_one_is_invalid() {
    for schema in schemas() {
        let v = validator(&schema);
        let mut valid = 0;
        for seed in 0..100 {
            let mut rng = Rng::new(seed);
            if let Some(value) = valid_value(&schema, &schema, &mut rng)
                && v.is_valid(&value)
            {
                valid += 1;
            }
            for (why, bad) in invalid_values(&schema, &schema, &mut rng, 8) {
                assert!(!v.is_valid(&bad), "{schema}: `{why}` is valid: {bad}");
            }
        }
        assert!(valid >= 95, "{schema}: only {valid} of 100 valid");
    }
}

#[test]
fn invalid_values_name_what_is_wrong() {
    let schema = &schemas()[0];
    let mut rng = Rng::new(3);
    let whys: Vec<String> = invalid_values(schema, schema, &mut rng, 50).into_iter().map(|(w, _)| w).collect();
    for want in [
        "`/limit`: above maximum 100",
        "`/limit`: below minimum 1",
        "`/sort`: a value outside its enum",
        "unexpected property `zzz_unexpected`",
        "`/query`: longer than maxLength 100",
    ] {
        assert!(whys.iter().any(|w| w.starts_with(want)), "{want} in {whys:?}");
    }
    assert!(invalid_values(&json!({}), &json!({}), &mut rng, 8).is_empty(), "`{{}}` accepts everything");
    assert!(invalid_values(&json!(true), &json!(true), &mut rng, 8).is_empty());
}

#[test]
fn the_same_seed_makes_the_same_values() {
    for schema in schemas() {
        let a: Vec<Option<Value>> = (0..20).map(|s| valid_value(&schema, &schema, &mut Rng::new(s))).collect();
        let b: Vec<Option<Value>> = (0..20).map(|s| valid_value(&schema, &schema, &mut Rng::new(s))).collect();
        assert_eq!(a, b);
    }
    assert_eq!(Rng::new(42).next_u64(), Rng::new(42).next_u64());
    assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
}

#[test]
fn hostile_schemas_cost_little_and_never_panic() {
    let mut rng = Rng::new(1);
    let cyclic = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
    assert_eq!(valid_value(&cyclic, &cyclic, &mut rng), None);
    let self_required = json!({"$defs": {"n": {"type": "object", "required": ["n"], "properties": {"n": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"});
    assert_eq!(valid_value(&self_required, &self_required, &mut rng), None, "an infinite required chain");
    for schema in [
        json!({"type": "integer", "minimum": 1e300}),
        json!({"type": "integer", "maximum": -1e300, "minimum": -1e301}),
        json!({"type": "integer", "multipleOf": 1e300}),
        json!({"type": "number", "minimum": 1e308, "maximum": 1.7e308}),
        json!({"type": "string", "minLength": 1_000_000}),
        json!({"type": "array", "minItems": 1000}),
        json!({"type": "string", "pattern": "(a{1000}){1000}"}),
        json!({"type": "string", "pattern": "(?=x)x\\1"}),
        json!({"type": "integer", "minimum": 5, "maximum": 1}),
        json!(false),
        json!({"not": {}}),
        json!({"type": "object", "properties": {"a": false}, "required": ["a"]}),
    ] {
        let _ = valid_value(&schema, &schema, &mut rng);
        let _ = invalid_values(&schema, &schema, &mut rng, 8);
    }
    assert_eq!(valid_value(&json!(false), &json!(false), &mut rng), None);
    assert_eq!(
        valid_value(&json!({"type": "array", "minItems": 1000}), &json!({"type": "array", "minItems": 1000}), &mut rng),
        None
    );
    // A wide, deep schema stays within the node budget.
    let mut deep = json!({"type": "integer"});
    for _ in 0..12 {
        deep = json!({"type": "object", "required": ["a", "b"], "properties": {"a": deep.clone(), "b": deep}});
    }
    let _ = valid_value(&deep, &deep, &mut rng);
}

#[test]
fn patterns_in_the_subset_generate_matching_strings() {
    for pattern in [
        "^[A-Z]{3}-\\d{4}$",
        "^act_[0-9]+$",
        "^(foo|bar)-[a-f0-9]{2,4}$",
        "^[^@\\s]+@[^@\\s]+$",
        "x?y*z+",
        "^\\w{1,3}\\.\\d$",
        "^(?:ab|cd){2}$",
    ] {
        let re = jsonschema::validator_for(&json!({"type": "string", "pattern": pattern})).unwrap();
        for seed in 0..50 {
            let mut out = String::new();
            regex::generate(pattern, &mut Rng::new(seed), &mut out).unwrap_or_else(|| panic!("{pattern}"));
            assert!(re.is_valid(&Value::String(out.clone())), "{pattern}: {out:?}");
        }
    }
    for unsupported in ["(?=a)", "(a)\\1", "\\p{L}"] {
        assert!(regex::generate(unsupported, &mut Rng::new(1), &mut String::new()).is_none(), "{unsupported}");
    }
}
