//! JSON Schemas (draft 2020-12) derived from the WIT types of a plain component's functions:
//! the one place that decides how each WIT type looks in JSON. [`super::value`] converts values
//! by exactly this mapping; `docs/plugins/plain-components.md` is its table for authors.
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool` | boolean |
//! | `s8`…`s64`, `u8`…`u64` | integer with the type's `minimum`/`maximum` |
//! | `f32`, `f64` | number (`f32` within ±3.4028235e38) |
//! | `char` | string of exactly one character |
//! | `string` | string |
//! | `list<T>` | array of T (`list<u8>` too: integers 0..=255) |
//! | `tuple<A, B>` | array, `prefixItems` [A, B], exactly that long |
//! | `record` | object, WIT field names as-is, all required but `option` fields |
//! | `option<T>` | T or null (`option<option<T>>` is refused: ambiguous) |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` (`null` for `_`) |
//! | `variant` | `"case"` without payload, `{"case": payload}` with one |
//! | `enum` | string, one of the case names |
//! | `flags` | array of distinct flag names |
//!
//! Resources (`own`, `borrow`), `future`, `stream`, `error-context` and `map` have no JSON
//! form: a function using one anywhere is reported, by parameter path, and not offered.
//!
//! Recursion over types is bounded: the component validator refuses type nesting deeper than
//! 100, and WIT types cannot be recursive.

use serde_json::{Map, Value, json};
use wasmtime::component::types::{ComponentFunc, Type};

/// f32's largest finite magnitude, as the f64 that JSON numbers are parsed into.
pub(crate) const F32_MAX: f64 = f32::MAX as f64;

/// What one offered function takes and returns, with its schemas.
pub(crate) struct Signature {
    pub params: Vec<(String, Type)>,
    pub result: Option<Type>,
    /// The function returns `result<T, E>` at top level: `ok` is the output, `err` a tool error.
    pub top_result: bool,
    pub input: Value,
    pub output: Value,
}

/// Derives a function's schemas, or says which parameter (or the result) has no JSON form.
pub(crate) fn signature(func: &ComponentFunc) -> Result<Signature, String> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    for (name, ty) in func.params() {
        properties.insert(name.to_string(), of(&ty, name)?);
        if !matches!(ty, Type::Option(_)) {
            required.push(Value::String(name.to_string()));
        }
        params.push((name.to_string(), ty));
    }
    let mut input = object(properties, required);
    input["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    let result = func.results().next();
    let (output, top_result) = match &result {
        None => (json!({"type": "null"}), false),
        Some(Type::Result(r)) => {
            if let Some(err) = r.err() {
                of(&err, "result.err")?;
            }
            (r.ok().map(|ok| of(&ok, "result.ok")).transpose()?.unwrap_or(json!({"type": "null"})), true)
        }
        Some(ty) => (of(ty, "result")?, false),
    };
    let mut output = output;
    if let Value::Object(o) = &mut output {
        o.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    }
    Ok(Signature { params, result, top_result, input, output })
}

/// A closed object schema: exactly these properties, `required` ones present.
fn object(properties: Map<String, Value>, required: Vec<Value>) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// Every WIT integer's minimum fits an i64 and its maximum a u64, which serde_json holds exactly.
fn int(min: i64, max: u64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

/// The schema of `ty`; `path` names where it sits (`order.items[]`) for the refusal message.
pub(crate) fn of(ty: &Type, path: &str) -> Result<Value, String> {
    let refuse = |what: &str| Err(format!("{path}: {what} has no JSON form"));
    Ok(match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::S8 => int(i8::MIN.into(), i8::MAX as u64),
        Type::S16 => int(i16::MIN.into(), i16::MAX as u64),
        Type::S32 => int(i32::MIN.into(), i32::MAX as u64),
        Type::S64 => int(i64::MIN, i64::MAX as u64),
        Type::U8 => int(0, u8::MAX.into()),
        Type::U16 => int(0, u16::MAX.into()),
        Type::U32 => int(0, u32::MAX.into()),
        Type::U64 => int(0, u64::MAX),
        Type::Float32 => json!({"type": "number", "minimum": -F32_MAX, "maximum": F32_MAX}),
        Type::Float64 => json!({"type": "number"}),
        Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => json!({"type": "string"}),
        Type::List(l) => json!({"type": "array", "items": of(&l.ty(), &format!("{path}[]"))?}),
        Type::FixedLengthList(l) => {
            let n = l.len();
            json!({"type": "array", "items": of(&l.ty(), &format!("{path}[]"))?, "minItems": n, "maxItems": n})
        }
        Type::Tuple(t) => {
            let items =
                t.types().enumerate().map(|(i, ty)| of(&ty, &format!("{path}[{i}]"))).collect::<Result<Vec<_>, _>>()?;
            let n = items.len();
            json!({"type": "array", "prefixItems": items, "items": false, "minItems": n, "maxItems": n})
        }
        Type::Record(r) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for f in r.fields() {
                properties.insert(f.name.to_string(), of(&f.ty, &format!("{path}.{}", f.name))?);
                if !matches!(f.ty, Type::Option(_)) {
                    required.push(Value::String(f.name.to_string()));
                }
            }
            object(properties, required)
        }
        Type::Option(o) => {
            let inner = o.ty();
            if matches!(inner, Type::Option(_)) {
                return Err(format!(
                    "{path}: option<option<…>> is ambiguous in JSON (null cannot say which level is empty)"
                ));
            }
            json!({"anyOf": [of(&inner, path)?, {"type": "null"}]})
        }
        Type::Result(r) => {
            let ok = r.ok().map(|t| of(&t, &format!("{path}.ok"))).transpose()?.unwrap_or(json!({"type": "null"}));
            let err = r.err().map(|t| of(&t, &format!("{path}.err"))).transpose()?.unwrap_or(json!({"type": "null"}));
            json!({"oneOf": [
                object(Map::from_iter([("ok".to_string(), ok)]), vec![json!("ok")]),
                object(Map::from_iter([("err".to_string(), err)]), vec![json!("err")]),
            ]})
        }
        Type::Variant(v) => {
            let mut bare = Vec::new();
            let mut branches = Vec::new();
            for case in v.cases() {
                match &case.ty {
                    None => bare.push(json!(case.name)),
                    Some(t) => {
                        let payload = of(t, &format!("{path}.{}", case.name))?;
                        branches
                            .push(object(Map::from_iter([(case.name.to_string(), payload)]), vec![json!(case.name)]));
                    }
                }
            }
            if !bare.is_empty() {
                branches.insert(0, json!({"type": "string", "enum": bare}));
            }
            json!({"oneOf": branches})
        }
        Type::Enum(e) => json!({"type": "string", "enum": e.names().collect::<Vec<_>>()}),
        Type::Flags(f) => {
            json!({"type": "array", "items": {"enum": f.names().collect::<Vec<_>>()}, "uniqueItems": true})
        }
        Type::Own(_) => return refuse("an owned resource handle (own<…>)"),
        Type::Borrow(_) => return refuse("a borrowed resource handle (borrow<…>)"),
        Type::Future(_) => return refuse("a future"),
        Type::Stream(_) => return refuse("a stream"),
        Type::ErrorContext => return refuse("an error-context"),
        Type::Map(_) => return refuse("a map"),
    })
}
