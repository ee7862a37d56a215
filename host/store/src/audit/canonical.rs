//! Canonical JSON: the one byte string a JSON value hashes as.
//!
//! Written out by hand rather than through `serde_json`'s serializer so the form cannot change
//! with a feature flag elsewhere in the build (`preserve_order`, `arbitrary_precision`):
//! - objects: keys sorted by their UTF-8 bytes (= Unicode code point order), no whitespace;
//! - strings: `"` and `\` escaped, `\b \f \n \r \t` short escapes, other control characters
//!   below U+0020 as `\u00xx` (lower-case hex), everything else as literal UTF-8;
//! - numbers: integers in decimal; a float with an integral value and magnitude below 2^53 as
//!   that integer (`1.0` and `1` are the same number); any other float in Rust's shortest
//!   round-trip exponent form (`1.5e-7`, `1e300`, `1.25e0`).
//!
//! For bodies without floating-point numbers this equals Python's
//! `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.

use serde_json::{Number, Value};

/// Largest magnitude below which every integer is exactly representable as an `f64`.
const SAFE_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// The canonical serialisation of `value` (see the module docs).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_number(number: &Number, out: &mut String) {
    if let Some(n) = number.as_u64() {
        out.push_str(&n.to_string());
    } else if let Some(n) = number.as_i64() {
        out.push_str(&n.to_string());
    } else if let Some(f) = number.as_f64() {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < SAFE_INTEGER {
            // `as` is exact here (integral, |f| < 2^53); `-0.0` becomes `0`.
            out.push_str(&(f as i64).to_string());
        } else {
            out.push_str(&format!("{f:e}"));
        }
    } else {
        // Unreachable without `arbitrary_precision`; with it, keep the number's own text.
        out.push_str(&number.to_string());
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::canonical_json;
    use serde_json::{Value, json};

    #[test]
    fn object_keys_are_sorted_at_every_depth_without_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": 1, "a": { "z": [3, {"y": 1, "x": 2}], "c": null } }"#).unwrap();
        assert_eq!(canonical_json(&value), r#"{"a":{"c":null,"z":[3,{"x":2,"y":1}]},"b":1}"#);
    }

    #[test]
    fn keys_sort_by_code_point_not_by_locale_or_length() {
        let value = json!({"é": 1, "z": 2, "Z": 3, "aa": 4, "a": 5, "😀": 6, "\u{ff}": 7});
        assert_eq!(canonical_json(&value), "{\"Z\":3,\"a\":5,\"aa\":4,\"z\":2,\"é\":1,\"\u{ff}\":7,\"😀\":6}");
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        let value = json!(
            "quote \" backslash \\ nl \n tab \t cr \r bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} ü 😀 \u{2028}"
        );
        assert_eq!(
            canonical_json(&value),
            "\"quote \\\" backslash \\\\ nl \\n tab \\t cr \\r bs \\b ff \\f nul \\u0000 us \\u001f del \u{7f} ü 😀 \u{2028}\""
        );
    }

    #[test]
    fn numbers_have_one_spelling() {
        let value: Value = serde_json::from_str("[0, -0, 1, -1, 1.0, -0.0, 2.50, 1e2, 18446744073709551615, -9223372036854775808, 0.1, 1.5e-7, 1e300, 9007199254740992.0]").unwrap();
        assert_eq!(
            canonical_json(&value),
            "[0,0,1,-1,1,0,2.5e0,100,18446744073709551615,-9223372036854775808,1e-1,1.5e-7,1e300,9.007199254740992e15]"
        );
    }

    #[test]
    fn canonical_form_survives_a_round_trip_through_text() {
        // What the store does: seal from a value, verify from the value parsed back from TEXT.
        let value = json!({"f": [0.1, 1.0 / 3.0, 2.0_f64.sqrt(), 1e-310, 123456.789e10], "s": "ü\n", "n": -5});
        let stored = serde_json::to_string(&value).unwrap();
        let parsed: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(canonical_json(&parsed), canonical_json(&value));
        let again: Value = serde_json::from_str(&canonical_json(&value)).unwrap();
        assert_eq!(canonical_json(&again), canonical_json(&value));
    }

    #[test]
    fn scalars_and_empty_containers() {
        assert_eq!(canonical_json(&json!(null)), "null");
        assert_eq!(canonical_json(&json!(true)), "true");
        assert_eq!(canonical_json(&json!(false)), "false");
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(canonical_json(&json!([])), "[]");
        assert_eq!(canonical_json(&json!([[], {}, ""])), r#"[[],{},""]"#);
    }
}
