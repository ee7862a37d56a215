//! JSON ↔ [`Val`] for plain components, by the mapping [`super::schema`] documents.
//!
//! Inputs have already passed the derived JSON Schema; this conversion is the second, exact
//! line of defence (integer ranges, one-character strings, distinct flags, …) and the one that
//! can say precisely what is wrong: `input.order.items[2].qty: expected u8 (0..=255), got 300`.
//! Outputs are written as JSON text straight from what the guest returned, with no JSON tree
//! in between, into a [`Text`] that keeps at most the call's output limit; the only thing JSON
//! cannot hold there is a non-finite float, reported with its path.
//!
//! Inputs are charged to a [`Budget`] as each value is built ([`super::budget`]).

use std::io::Write;

use serde_json::Value;
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::budget::{Budget, OverBudget};
use super::schema::F32_MAX;

/// Why an input could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// The input does not fit the parameter types; the message names the path.
    Invalid(String),
    /// Its values would cost the host more than the call's budget.
    TooLarge,
}

impl From<String> for ConvertError {
    fn from(message: String) -> ConvertError {
        ConvertError::Invalid(message)
    }
}

impl From<OverBudget> for ConvertError {
    fn from(_: OverBudget) -> ConvertError {
        ConvertError::TooLarge
    }
}

/// Converts a tool input (a JSON object with one property per parameter) into call arguments,
/// allocating at most `budget` bytes for them.
pub(crate) fn arguments(params: &[(String, Type)], input: &Value, budget: usize) -> Result<Vec<Val>, ConvertError> {
    let Value::Object(props) = input else {
        return Err(format!("input: expected an object with one property per parameter, got {}", got(input)).into());
    };
    if let Some(unknown) = props.keys().find(|k| !params.iter().any(|(n, _)| n == *k)) {
        let known: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!("input: unknown parameter `{unknown}` (parameters: {})", list_or_none(&known)).into());
    }
    let mut cx = Cx { path: String::from("input"), budget: Budget::new(budget) };
    cx.budget.values(params.len())?;
    params.iter().map(|(name, ty)| field(ty, props.get(name), name, &mut cx, "parameter")).collect()
}

/// Where the conversion is, for messages, and what it may still allocate.
struct Cx {
    path: String,
    budget: Budget,
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// A record field or parameter: absent means `none` for an `option`, an error otherwise.
fn field(ty: &Type, v: Option<&Value>, name: &str, cx: &mut Cx, what: &str) -> Result<Val, ConvertError> {
    let len = cx.path.len();
    cx.path.push('.');
    cx.path.push_str(name);
    let out = match v {
        Some(v) => from_json(ty, v, cx),
        None if matches!(ty, Type::Option(_)) => Ok(Val::Option(None)),
        None => Err(format!("{}: missing (a required {what}, expected {})", cx.path, expected(ty)).into()),
    };
    cx.path.truncate(len);
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

fn from_json(ty: &Type, v: &Value, cx: &mut Cx) -> Result<Val, ConvertError> {
    let mismatch =
        |path: &str| Err(ConvertError::Invalid(format!("{path}: expected {}, got {}", expected(ty), got(v))));
    macro_rules! int {
        ($t:ty, $variant:ident) => {
            match integer(v).and_then(|n| <$t>::try_from(n).ok()) {
                Some(n) => Ok(Val::$variant(n)),
                None => mismatch(&cx.path),
            }
        };
    }
    match ty {
        Type::Bool => v.as_bool().map(Val::Bool).map_or_else(|| mismatch(&cx.path), Ok),
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
            _ => mismatch(&cx.path),
        },
        Type::Float64 => v.as_f64().map(Val::Float64).map_or_else(|| mismatch(&cx.path), Ok),
        Type::Char => {
            let mut chars = v.as_str().unwrap_or_default().chars();
            match (v.is_string(), chars.next(), chars.next()) {
                (true, Some(c), None) => Ok(Val::Char(c)),
                _ => mismatch(&cx.path),
            }
        }
        Type::String => match v.as_str() {
            Some(s) => {
                cx.budget.text(s)?;
                Ok(Val::String(s.to_string()))
            }
            None => mismatch(&cx.path),
        },
        Type::List(l) => {
            let Some(items) = v.as_array() else { return mismatch(&cx.path) };
            Ok(Val::List(elements(&l.ty(), items, cx)?))
        }
        Type::FixedLengthList(l) => match v.as_array() {
            Some(items) if items.len() == l.len() as usize => Ok(Val::FixedLengthList(elements(&l.ty(), items, cx)?)),
            _ => mismatch(&cx.path),
        },
        Type::Tuple(t) => match v.as_array() {
            Some(items) if items.len() == t.types().len() => {
                let len = cx.path.len();
                cx.budget.values(items.len())?;
                let mut out = Vec::with_capacity(items.len());
                for (i, (ty, item)) in t.types().zip(items).enumerate() {
                    cx.path.push_str(&format!("[{i}]"));
                    let val = from_json(&ty, item, cx);
                    cx.path.truncate(len);
                    out.push(val?);
                }
                Ok(Val::Tuple(out))
            }
            _ => mismatch(&cx.path),
        },
        Type::Record(r) => {
            let Some(props) = v.as_object() else { return mismatch(&cx.path) };
            if let Some(unknown) = props.keys().find(|k| !r.fields().any(|f| f.name == k.as_str())) {
                let known: Vec<&str> = r.fields().map(|f| f.name).collect();
                return Err(format!("{}: unknown field `{unknown}` (fields: {})", cx.path, list_or_none(&known)).into());
            }
            cx.budget.fields(r.fields().len())?;
            let mut fields = Vec::with_capacity(r.fields().len());
            for f in r.fields() {
                cx.budget.text(f.name)?;
                fields.push((f.name.to_string(), field(&f.ty, props.get(f.name), f.name, cx, "field")?));
            }
            Ok(Val::Record(fields))
        }
        Type::Option(o) => match v {
            Value::Null => Ok(Val::Option(None)),
            v => {
                cx.budget.boxed()?;
                Ok(Val::Option(Some(Box::new(from_json(&o.ty(), v, cx)?))))
            }
        },
        Type::Result(r) => {
            let Some((key, inner)) = single_key(v) else { return mismatch(&cx.path) };
            let side = match key {
                "ok" => r.ok(),
                "err" => r.err(),
                _ => return mismatch(&cx.path),
            };
            let payload = payload(side.as_ref(), inner, key, cx)?;
            Ok(Val::Result(if key == "ok" { Ok(payload) } else { Err(payload) }))
        }
        Type::Variant(var) => {
            if let Some(name) = v.as_str() {
                return match var.cases().find(|c| c.name == name) {
                    Some(c) if c.ty.is_none() => {
                        cx.budget.text(name)?;
                        Ok(Val::Variant(name.to_string(), None))
                    }
                    Some(_) => {
                        Err(format!("{}: case \"{name}\" carries a value: write {{\"{name}\": …}}", cx.path).into())
                    }
                    None => mismatch(&cx.path),
                };
            }
            let Some((key, inner)) = single_key(v) else { return mismatch(&cx.path) };
            match var.cases().find(|c| c.name == key) {
                Some(c) if c.ty.is_some() => {
                    cx.budget.text(key)?;
                    Ok(Val::Variant(key.to_string(), payload(c.ty.as_ref(), inner, key, cx)?))
                }
                Some(_) => Err(format!("{}: case \"{key}\" carries no value: write \"{key}\"", cx.path).into()),
                None => mismatch(&cx.path),
            }
        }
        Type::Enum(e) => match v.as_str() {
            Some(s) if e.names().any(|n| n == s) => {
                cx.budget.text(s)?;
                Ok(Val::Enum(s.to_string()))
            }
            _ => mismatch(&cx.path),
        },
        Type::Flags(f) => {
            let Some(items) = v.as_array() else { return mismatch(&cx.path) };
            cx.budget.names(items.len())?;
            let mut set: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) if f.names().any(|n| n == s) && !set.iter().any(|x| x == s) => {
                        cx.budget.text(s)?;
                        set.push(s.to_string())
                    }
                    _ => return mismatch(&cx.path),
                }
            }
            Ok(Val::Flags(set))
        }
        // Functions with these types are never offered (see `schema::of`).
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext | Type::Map(_) => {
            Err(format!("{}: {} has no JSON form", cx.path, expected(ty)).into())
        }
    }
}

fn elements(ty: &Type, items: &[Value], cx: &mut Cx) -> Result<Vec<Val>, ConvertError> {
    let len = cx.path.len();
    cx.budget.values(items.len())?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        cx.path.push_str(&format!("[{i}]"));
        let val = from_json(ty, item, cx);
        cx.path.truncate(len);
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
fn payload(ty: Option<&Type>, v: &Value, key: &str, cx: &mut Cx) -> Result<Option<Box<Val>>, ConvertError> {
    let len = cx.path.len();
    cx.path.push('.');
    cx.path.push_str(key);
    let out = match (ty, v) {
        (Some(ty), v) => {
            cx.budget.boxed().map_err(Into::into).and_then(|()| from_json(ty, v, cx)).map(|val| Some(Box::new(val)))
        }
        (None, Value::Null) => Ok(None),
        (None, v) => Err(format!("{}: expected null (this side has no value), got {}", cx.path, got(v)).into()),
    };
    cx.path.truncate(len);
    out
}

/// JSON text as it is written: kept up to `limit` bytes, counted beyond (then nothing is kept),
/// so an output over the limit costs no more than the limit and is still reported by size.
pub(crate) struct Text {
    kept: Vec<u8>,
    len: usize,
    limit: usize,
}

impl Text {
    pub(crate) fn new(limit: usize) -> Text {
        Text { kept: Vec::new(), len: 0, limit }
    }

    /// The text, or its full length when it is over the limit.
    pub(crate) fn finish(self) -> Result<String, usize> {
        if self.len > self.limit {
            return Err(self.len);
        }
        // Only serde_json and ASCII punctuation write here, so this does not fail.
        String::from_utf8(self.kept).map_err(|e| e.as_bytes().len())
    }
}

impl Write for Text {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len = self.len.saturating_add(buf.len());
        if self.len <= self.limit {
            self.kept.extend_from_slice(buf);
        } else if !self.kept.is_empty() {
            self.kept = Vec::new();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a returned value as JSON text; `path` starts as `output`. Record fields are written
/// in name order, as a JSON object holds them.
pub(crate) fn write_json(v: &Val, out: &mut Text, path: &mut String) -> Result<(), String> {
    // Writing to a `Text` cannot fail: the results are ignored.
    let put = |out: &mut Text, bytes: &[u8]| {
        let _ = out.write_all(bytes);
    };
    let number = |out: &mut Text, f: f64, path: &str| match serde_json::Number::from_f64(f) {
        Some(n) => {
            let _ = serde_json::to_writer(&mut *out, &n);
            Ok(())
        }
        None => Err(format!("{path}: the float {f} cannot be represented in JSON")),
    };
    match v {
        Val::Bool(b) => put(out, if *b { b"true" } else { b"false" }),
        Val::S8(n) => put(out, n.to_string().as_bytes()),
        Val::S16(n) => put(out, n.to_string().as_bytes()),
        Val::S32(n) => put(out, n.to_string().as_bytes()),
        Val::S64(n) => put(out, n.to_string().as_bytes()),
        Val::U8(n) => put(out, n.to_string().as_bytes()),
        Val::U16(n) => put(out, n.to_string().as_bytes()),
        Val::U32(n) => put(out, n.to_string().as_bytes()),
        Val::U64(n) => put(out, n.to_string().as_bytes()),
        // Through the shortest decimal form, so an f32 `0.1` comes back as 0.1, not
        // 0.10000000149011612.
        Val::Float32(f) => number(out, f.to_string().parse().unwrap_or(f64::NAN), path)?,
        Val::Float64(f) => number(out, *f, path)?,
        Val::Char(c) => string(out, c.encode_utf8(&mut [0; 4])),
        Val::String(s) | Val::Variant(s, None) | Val::Enum(s) => string(out, s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            put(out, b"[");
            let len = path.len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                path.push_str(&format!("[{i}]"));
                let written = write_json(item, out, path);
                path.truncate(len);
                written?;
            }
            put(out, b"]");
        }
        Val::Record(fields) => {
            let mut sorted: Vec<&(String, Val)> = fields.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            put(out, b"{");
            for (i, (name, val)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                member(out, name, Some(val), path)?;
            }
            put(out, b"}");
        }
        Val::Option(None) => put(out, b"null"),
        Val::Option(Some(v)) => write_json(v, out, path)?,
        Val::Result(r) => {
            let (key, inner) = match r {
                Ok(v) => ("ok", v),
                Err(v) => ("err", v),
            };
            put(out, b"{");
            member(out, key, inner.as_deref(), path)?;
            put(out, b"}");
        }
        Val::Variant(name, Some(v)) => {
            put(out, b"{");
            member(out, name, Some(v), path)?;
            put(out, b"}");
        }
        Val::Flags(names) => {
            put(out, b"[");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                string(out, n);
            }
            put(out, b"]");
        }
        Val::Map(_) | Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(format!("{path}: a value with no JSON form"));
        }
    }
    Ok(())
}

fn string(out: &mut Text, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `"key":value` inside an object (`null` for a missing value); the path goes through `key`.
fn member(out: &mut Text, key: &str, v: Option<&Val>, path: &mut String) -> Result<(), String> {
    string(out, key);
    let _ = out.write_all(b":");
    let Some(v) = v else {
        let _ = out.write_all(b"null");
        return Ok(());
    };
    let len = path.len();
    path.push('.');
    path.push_str(key);
    let written = write_json(v, out, path);
    path.truncate(len);
    written
}
