//! JSON ↔ [`Val`] for plain components, by the mapping [`super::schema`] documents.
//!
//! Inputs have already passed the derived JSON Schema; this conversion is the second, exact
//! line of defence (integer ranges, one-character strings, distinct flags, …) and the one that
//! can say precisely what is wrong: `input.order.items[2].qty: expected u8 (0..=255), got 300`.
//! Outputs are built from what the guest returned; the only thing JSON cannot hold there is a
//! non-finite float, reported with its path.

use serde_json::{Map, Value};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::schema::F32_MAX;

/// Converts a tool input (a JSON object with one property per parameter) into call arguments.
pub(crate) fn arguments(params: &[(String, Type)], input: &Value) -> Result<Vec<Val>, String> {
    let Value::Object(props) = input else {
        return Err(format!("input: expected an object with one property per parameter, got {}", got(input)));
    };
    if let Some(unknown) = props.keys().find(|k| !params.iter().any(|(n, _)| n == *k)) {
        let known: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!("input: unknown parameter `{unknown}` (parameters: {})", list_or_none(&known)));
    }
    let mut path = String::from("input");
    params.iter().map(|(name, ty)| field(ty, props.get(name), name, &mut path, "parameter")).collect()
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// A record field or parameter: absent means `none` for an `option`, an error otherwise.
fn field(ty: &Type, v: Option<&Value>, name: &str, path: &mut String, what: &str) -> Result<Val, String> {
    let len = path.len();
    path.push('.');
    path.push_str(name);
    let out = match v {
        Some(v) => from_json(ty, v, path),
        None if matches!(ty, Type::Option(_)) => Ok(Val::Option(None)),
        None => Err(format!("{path}: missing (a required {what}, expected {})", expected(ty))),
    };
    path.truncate(len);
    out
}

/// Briefly, what the JSON value is, for error messages (strings clipped: inputs can be large).
fn got(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => format!("{:?}…", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("an array of {} item(s)", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// The WIT type as the error message names it.
fn expected(ty: &Type) -> String {
    let quoted = |names: Vec<&str>| names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => format!("s8 ({}..={})", i8::MIN, i8::MAX),
        Type::S16 => format!("s16 ({}..={})", i16::MIN, i16::MAX),
        Type::S32 => format!("s32 ({}..={})", i32::MIN, i32::MAX),
        Type::S64 => format!("s64 ({}..={})", i64::MIN, i64::MAX),
        Type::U8 => format!("u8 (0..={})", u8::MAX),
        Type::U16 => format!("u16 (0..={})", u16::MAX),
        Type::U32 => format!("u32 (0..={})", u32::MAX),
        Type::U64 => format!("u64 (0..={})", u64::MAX),
        Type::Float32 => "f32 (a number within ±3.4028235e38)".into(),
        Type::Float64 => "f64 (a number)".into(),
        Type::Char => "char (a string of exactly one character)".into(),
        Type::String => "string".into(),
        Type::List(_) => "list (an array)".into(),
        Type::FixedLengthList(l) => format!("list of {} (an array of exactly {} items)", l.len(), l.len()),
        Type::Tuple(t) => format!("tuple of {} (an array of exactly {} items)", t.types().len(), t.types().len()),
        Type::Record(r) => {
            format!("record (an object with fields {})", r.fields().map(|f| f.name).collect::<Vec<_>>().join(", "))
        }
        Type::Option(o) => format!("option ({} or null)", expected(&o.ty())),
        Type::Result(_) => "result (an object with exactly one key, \"ok\" or \"err\")".into(),
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| if c.ty.is_some() { format!("{{\"{}\": …}}", c.name) } else { format!("\"{}\"", c.name) })
                .collect();
            format!("variant (one of {})", cases.join(", "))
        }
        Type::Enum(e) => format!("enum (one of {})", quoted(e.names().collect())),
        Type::Flags(f) => format!("flags (an array of distinct names from {})", quoted(f.names().collect())),
        other => format!("{other:?}"),
    }
}

/// An integer-valued JSON number (JSON Schema counts `3.0` as an integer, so this does too).
fn integer(v: &Value) -> Option<i128> {
    let n = v.as_number()?;
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)).or_else(|| {
        // Beyond ±2^64 no WIT integer can hold it; the bound keeps the cast exact.
        n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 3.0e19).map(|f| f as i128)
    })
}

fn from_json(ty: &Type, v: &Value, path: &mut String) -> Result<Val, String> {
    let mismatch = |path: &str| Err(format!("{path}: expected {}, got {}", expected(ty), got(v)));
    macro_rules! int {
        ($t:ty, $variant:ident) => {
            match integer(v).and_then(|n| <$t>::try_from(n).ok()) {
                Some(n) => Ok(Val::$variant(n)),
                None => mismatch(path),
            }
        };
    }
    match ty {
        Type::Bool => v.as_bool().map(Val::Bool).map_or_else(|| mismatch(path), Ok),
        Type::S8 => int!(i8, S8),
        Type::S16 => int!(i16, S16),
        Type::S32 => int!(i32, S32),
        Type::S64 => int!(i64, S64),
        Type::U8 => int!(u8, U8),
        Type::U16 => int!(u16, U16),
        Type::U32 => int!(u32, U32),
        Type::U64 => int!(u64, U64),
        Type::Float32 => match v.as_f64() {
            Some(f) if f.abs() <= F32_MAX => Ok(Val::Float32(f as f32)),
            _ => mismatch(path),
        },
        Type::Float64 => v.as_f64().map(Val::Float64).map_or_else(|| mismatch(path), Ok),
        Type::Char => {
            let mut chars = v.as_str().unwrap_or_default().chars();
            match (v.is_string(), chars.next(), chars.next()) {
                (true, Some(c), None) => Ok(Val::Char(c)),
                _ => mismatch(path),
            }
        }
        Type::String => v.as_str().map(|s| Val::String(s.to_string())).map_or_else(|| mismatch(path), Ok),
        Type::List(l) => {
            let Some(items) = v.as_array() else { return mismatch(path) };
            Ok(Val::List(elements(&l.ty(), items, path)?))
        }
        Type::FixedLengthList(l) => match v.as_array() {
            Some(items) if items.len() == l.len() as usize => Ok(Val::FixedLengthList(elements(&l.ty(), items, path)?)),
            _ => mismatch(path),
        },
        Type::Tuple(t) => match v.as_array() {
            Some(items) if items.len() == t.types().len() => {
                let len = path.len();
                let mut out = Vec::with_capacity(items.len());
                for (i, (ty, item)) in t.types().zip(items).enumerate() {
                    path.push_str(&format!("[{i}]"));
                    let val = from_json(&ty, item, path);
                    path.truncate(len);
                    out.push(val?);
                }
                Ok(Val::Tuple(out))
            }
            _ => mismatch(path),
        },
        Type::Record(r) => {
            let Some(props) = v.as_object() else { return mismatch(path) };
            if let Some(unknown) = props.keys().find(|k| !r.fields().any(|f| f.name == k.as_str())) {
                let known: Vec<&str> = r.fields().map(|f| f.name).collect();
                return Err(format!("{path}: unknown field `{unknown}` (fields: {})", list_or_none(&known)));
            }
            let fields = r
                .fields()
                .map(|f| Ok((f.name.to_string(), field(&f.ty, props.get(f.name), f.name, path, "field")?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Val::Record(fields))
        }
        Type::Option(o) => match v {
            Value::Null => Ok(Val::Option(None)),
            v => Ok(Val::Option(Some(Box::new(from_json(&o.ty(), v, path)?)))),
        },
        Type::Result(r) => {
            let Some((key, inner)) = single_key(v) else { return mismatch(path) };
            let side = match key {
                "ok" => r.ok(),
                "err" => r.err(),
                _ => return mismatch(path),
            };
            let payload = payload(side.as_ref(), inner, key, path)?;
            Ok(Val::Result(if key == "ok" { Ok(payload) } else { Err(payload) }))
        }
        Type::Variant(var) => {
            if let Some(name) = v.as_str() {
                return match var.cases().find(|c| c.name == name) {
                    Some(c) if c.ty.is_none() => Ok(Val::Variant(name.to_string(), None)),
                    Some(_) => Err(format!("{path}: case \"{name}\" carries a value: write {{\"{name}\": …}}")),
                    None => mismatch(path),
                };
            }
            let Some((key, inner)) = single_key(v) else { return mismatch(path) };
            match var.cases().find(|c| c.name == key) {
                Some(c) if c.ty.is_some() => {
                    Ok(Val::Variant(key.to_string(), payload(c.ty.as_ref(), inner, key, path)?))
                }
                Some(_) => Err(format!("{path}: case \"{key}\" carries no value: write \"{key}\"")),
                None => mismatch(path),
            }
        }
        Type::Enum(e) => match v.as_str() {
            Some(s) if e.names().any(|n| n == s) => Ok(Val::Enum(s.to_string())),
            _ => mismatch(path),
        },
        Type::Flags(f) => {
            let Some(items) = v.as_array() else { return mismatch(path) };
            let mut set: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) if f.names().any(|n| n == s) && !set.iter().any(|x| x == s) => set.push(s.to_string()),
                    _ => return mismatch(path),
                }
            }
            Ok(Val::Flags(set))
        }
        // Functions with these types are never offered (see `schema::of`).
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext | Type::Map(_) => {
            Err(format!("{path}: {} has no JSON form", expected(ty)))
        }
    }
}

fn elements(ty: &Type, items: &[Value], path: &mut String) -> Result<Vec<Val>, String> {
    let len = path.len();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        path.push_str(&format!("[{i}]"));
        let val = from_json(ty, item, path);
        path.truncate(len);
        out.push(val?);
    }
    Ok(out)
}

fn single_key(v: &Value) -> Option<(&str, &Value)> {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// The value under `key` of a result or variant: null when the side has no type.
fn payload(ty: Option<&Type>, v: &Value, key: &str, path: &mut String) -> Result<Option<Box<Val>>, String> {
    let len = path.len();
    path.push('.');
    path.push_str(key);
    let out = match (ty, v) {
        (Some(ty), v) => from_json(ty, v, path).map(|val| Some(Box::new(val))),
        (None, Value::Null) => Ok(None),
        (None, v) => Err(format!("{path}: expected null (this side has no value), got {}", got(v))),
    };
    path.truncate(len);
    out
}

/// Converts a returned value to JSON; `path` starts as `output`.
pub(crate) fn to_json(v: &Val, path: &mut String) -> Result<Value, String> {
    let float = |f: f64, path: &str| {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("{path}: the float {f} cannot be represented in JSON"))
    };
    Ok(match v {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => (*n).into(),
        Val::S16(n) => (*n).into(),
        Val::S32(n) => (*n).into(),
        Val::S64(n) => (*n).into(),
        Val::U8(n) => (*n).into(),
        Val::U16(n) => (*n).into(),
        Val::U32(n) => (*n).into(),
        Val::U64(n) => (*n).into(),
        // Through the shortest decimal form, so an f32 `0.1` comes back as 0.1, not
        // 0.10000000149011612.
        Val::Float32(f) => float(f.to_string().parse().unwrap_or(f64::NAN), path)?,
        Val::Float64(f) => float(*f, path)?,
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            let len = path.len();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                let j = to_json(item, path);
                path.truncate(len);
                out.push(j?);
            }
            Value::Array(out)
        }
        Val::Record(fields) => {
            let mut out = Map::new();
            for (name, val) in fields {
                out.insert(name.clone(), nested(val, name, path)?);
            }
            Value::Object(out)
        }
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => to_json(v, path)?,
        Val::Result(r) => {
            let (key, inner) = match r {
                Ok(v) => ("ok", v),
                Err(v) => ("err", v),
            };
            let inner = inner.as_deref().map(|v| nested(v, key, path)).transpose()?.unwrap_or(Value::Null);
            Value::Object(Map::from_iter([(key.to_string(), inner)]))
        }
        Val::Variant(name, None) | Val::Enum(name) => Value::String(name.clone()),
        Val::Variant(name, Some(v)) => Value::Object(Map::from_iter([(name.clone(), nested(v, name, path)?)])),
        Val::Flags(names) => Value::Array(names.iter().map(|n| Value::String(n.clone())).collect()),
        Val::Map(_) | Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(format!("{path}: a value with no JSON form"));
        }
    })
}

fn nested(v: &Val, key: &str, path: &mut String) -> Result<Value, String> {
    let len = path.len();
    path.push('.');
    path.push_str(key);
    let out = to_json(v, path);
    path.truncate(len);
    out
}
