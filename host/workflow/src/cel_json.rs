//! CEL values ↔ JSON, and evaluation of a [`Program`] over JSON variables. JSON integers
//! become CEL `int` (or `uint` above `i64::MAX`), other numbers `double`; objects become maps
//! with string keys. Back to JSON, map keys that are not strings are written as strings, and
//! values JSON cannot hold (bytes, NaN, functions) are an error.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use serde_json::Value as Json;

use crate::cel_cost::{DataSize, MAX_EVAL_STEPS, estimate};
use crate::expr::{Program, env};
use crate::policy::{PolicyError, PolicyErrorKind};

/// Error messages quote values of the input; keep them short.
const MAX_MESSAGE: usize = 512;

pub fn to_cel(v: &Json) -> cel::Value {
    match v {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => cel::Value::String(Arc::new(s.clone())),
        Json::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Json::Object(o) => {
            let map: HashMap<Key, cel::Value> =
                o.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v))).collect();
            cel::Value::Map(Map { map: Arc::new(map) })
        }
    }
}

pub fn to_json(v: &cel::Value) -> Result<Json, String> {
    Ok(match v {
        cel::Value::Null => Json::Null,
        cel::Value::Bool(b) => Json::Bool(*b),
        cel::Value::Int(i) => Json::from(*i),
        cel::Value::UInt(u) => Json::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| format!("{f} cannot be represented in JSON"))?,
        cel::Value::String(s) => Json::String(s.to_string()),
        cel::Value::List(l) => Json::Array(l.iter().map(to_json).collect::<Result<_, _>>()?),
        cel::Value::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m.map.iter() {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                out.insert(key, to_json(v)?);
            }
            Json::Object(out)
        }
        cel::Value::Duration(d) => Json::String(format!("{}s", d.num_milliseconds() as f64 / 1000.0)),
        cel::Value::Timestamp(t) => Json::String(t.to_rfc3339()),
        other => return Err(format!("a {} value cannot be represented in JSON", other.type_of())),
    })
}

/// Evaluates `program` with `vars` bound. The error names the expression and its location.
pub fn eval_json(program: &Program, vars: &serde_json::Map<String, Json>) -> Result<Json, PolicyError> {
    let value = execute(program, vars.iter().map(|(k, v)| (k.as_str(), to_cel(v))), None)?;
    to_json(&value).map_err(|m| PolicyError::new(program, None, PolicyErrorKind::WrongType, m))
}

/// Evaluates with CEL values bound; `rule` is only carried into errors.
pub(crate) fn execute<'a>(
    program: &Program,
    vars: impl IntoIterator<Item = (&'a str, cel::Value)>,
    rule: Option<usize>,
) -> Result<cel::Value, PolicyError> {
    let vars: Vec<(&str, cel::Value)> = vars.into_iter().collect();
    let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let steps = estimate(program.cel.expression(), &lookup, DataSize::of(vars.iter().map(|(_, v)| v)));
    if steps > MAX_EVAL_STEPS {
        return Err(PolicyError::new(
            program,
            rule,
            PolicyErrorKind::TooCostly,
            format!("evaluating it on this input could take {steps} steps, over the limit of {MAX_EVAL_STEPS}"),
        ));
    }
    let mut ctx = cel::Context::with_env(env());
    for (name, value) in vars {
        ctx.add_variable_from_value(name, value);
    }
    program.cel.execute(&ctx).map_err(|e| {
        let mut m = e.to_string();
        if m.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push('…');
        }
        PolicyError::new(program, rule, PolicyErrorKind::Evaluation, m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_cel() {
        let v = json!({"a": 1, "b": [true, null, "x", 1.5], "c": {"d": 18446744073709551615u64}, "e": -3});
        assert_eq!(to_json(&to_cel(&v)).unwrap(), v);
        assert!(matches!(to_cel(&json!(7)), cel::Value::Int(7)));
        assert!(to_json(&cel::Value::Bytes(Arc::new(vec![1]))).is_err());
        assert!(to_json(&cel::Value::Float(f64::NAN)).is_err());
        let m: HashMap<Key, cel::Value> = HashMap::from([(Key::Int(3), cel::Value::Bool(true))]);
        assert_eq!(to_json(&cel::Value::Map(Map { map: Arc::new(m) })).unwrap(), json!({"3": true}));
    }
}
