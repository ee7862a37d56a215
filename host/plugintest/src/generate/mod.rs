//! Inputs generated from a tool's JSON Schema, for conformance: [`valid_value`] aims to satisfy
//! a schema, [`invalid_values`] breaks it in one precise place each. Seeded ([`Rng`]): the same
//! seed gives the same values on every machine. Schemas are plugin data, so every walk is
//! bounded (depth, `$ref` hops, sizes, a node budget) and nothing here trusts a number in them.
//! The generator may miss (a pattern it cannot read): callers validate what it returns.

use serde_json::{Map, Number, Value};

/// splitmix64: small, fast, and the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

const MAX_DEPTH: u32 = 8;
const MAX_REF_HOPS: u32 = 32;
const MAX_ITEMS: u64 = 64;
const MAX_STRING: u64 = 4096;
const NODE_BUDGET: u32 = 10_000;
/// Text that tends to break naive code: quotes, escapes, non-ASCII, right-to-left, an emoji.
const AWKWARD: &[&str] = &["é", "日本", "\"", "\\", "\n", "🙂", "\u{202e}", "'", "<b>", " "];

struct Gen<'a> {
    root: &'a Value,
    rng: &'a mut Rng,
    budget: u32,
}

/// Follows `$ref` (local JSON pointers only) up to [`MAX_REF_HOPS`].
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> Option<&'a Value> {
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { return Some(schema) };
        let pointer = reference.strip_prefix('#')?;
        schema = if pointer.is_empty() { root } else { root.pointer(pointer)? };
    }
    None
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn num(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64).filter(|f| f.is_finite())
}

fn count(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

/// The type a schema without `type` most likely means, from its other keywords.
fn inferred(schema: &Value) -> Option<&'static str> {
    let has = |k: &str| schema.get(k).is_some();
    if has("properties") || has("required") || has("additionalProperties") {
        Some("object")
    } else if has("items") || has("prefixItems") || has("minItems") {
        Some("array")
    } else if has("pattern") || has("minLength") || has("maxLength") || has("format") {
        Some("string")
    } else if has("minimum") || has("maximum") || has("multipleOf") {
        Some("number")
    } else {
        None
    }
}

impl Gen<'_> {
    fn value(&mut self, schema: &Value, depth: u32) -> Option<Value> {
        self.budget = self.budget.checked_sub(1)?;
        if depth > MAX_DEPTH + 4 {
            return None;
        }
        let schema = resolve(self.root, schema)?;
        let obj = match schema {
            Value::Bool(true) => return Some(self.any_simple()),
            Value::Bool(false) => return None,
            Value::Object(o) => o,
            _ => return Some(self.any_simple()),
        };
        if let Some(c) = obj.get("const") {
            return Some(c.clone());
        }
        if let Some(Value::Array(options)) = obj.get("enum") {
            return self.rng.pick(options).cloned();
        }
        if let Some(Value::Array(branches)) = obj.get("anyOf").or_else(|| obj.get("oneOf")) {
            // A few branches at random: one of them may be impossible here.
            for _ in 0..3 {
                let branch = self.rng.pick(branches)?;
                if let Some(v) = self.value(&merged(schema, branch), depth + 1) {
                    return Some(v);
                }
            }
            return None;
        }
        if let Some(Value::Array(parts)) = obj.get("allOf") {
            let mut all = schema.clone();
            if let Some(o) = all.as_object_mut() {
                o.remove("allOf");
            }
            for part in parts {
                all = merged(&all, resolve(self.root, part)?);
            }
            return self.value(&all, depth + 1);
        }
        if obj.contains_key("not") && depth == 0 {
            return None;
        }
        let listed = types(schema);
        let ty = if listed.is_empty() {
            match inferred(schema) {
                Some(t) => t,
                None => return Some(self.any_simple()),
            }
        } else {
            // Null only now and then when something else is allowed.
            let non_null: Vec<&str> = listed.iter().copied().filter(|t| *t != "null").collect();
            if non_null.is_empty() || self.rng.chance(5) {
                self.rng.pick(&listed).copied()?
            } else {
                self.rng.pick(&non_null).copied()?
            }
        };
        match ty {
            "null" => Some(Value::Null),
            "boolean" => Some(Value::Bool(self.rng.chance(2))),
            "integer" => self.integer(schema),
            "number" => self.number(schema),
            "string" => self.string(schema),
            "array" => self.array(schema, depth),
            "object" => self.object(schema, depth),
            _ => None,
        }
    }

    fn any_simple(&mut self) -> Value {
        match self.rng.below(4) {
            0 => Value::from(self.rng.below(100)),
            1 => Value::String("x".repeat(self.rng.below(8) as usize)),
            2 => Value::Bool(self.rng.chance(2)),
            _ => Value::Null,
        }
    }

    fn integer(&mut self, schema: &Value) -> Option<Value> {
        let clamp = |f: f64| f.clamp(i64::MIN as f64 / 2.0, i64::MAX as f64 / 2.0);
        let mut lo = num(schema, "minimum").map(|m| clamp(m.ceil()) as i64);
        let mut hi = num(schema, "maximum").map(|m| clamp(m.floor()) as i64);
        match schema.get("exclusiveMinimum") {
            Some(Value::Bool(true)) => lo = lo.map(|l| l.saturating_add(1)),
            Some(v) if v.is_number() => lo = v.as_f64().filter(|f| f.is_finite()).map(|m| clamp(m.floor()) as i64 + 1),
            _ => {}
        }
        match schema.get("exclusiveMaximum") {
            Some(Value::Bool(true)) => hi = hi.map(|h| h.saturating_sub(1)),
            Some(v) if v.is_number() => hi = v.as_f64().filter(|f| f.is_finite()).map(|m| clamp(m.ceil()) as i64 - 1),
            _ => {}
        }
        let (lo, hi) = match (lo, hi) {
            (Some(l), Some(h)) => (l, h),
            (Some(l), None) => (l, l.saturating_add(1000)),
            (None, Some(h)) => (h.saturating_sub(1000), h),
            (None, None) => (-1000, 1000),
        };
        if lo > hi {
            return None;
        }
        let step = num(schema, "multipleOf")
            .filter(|m| *m >= 1.0 && m.fract() == 0.0)
            .map(|m| clamp(m) as i64)
            .unwrap_or(1)
            .max(1);
        // Multiples of `step` within [lo, hi].
        let first = lo.div_euclid(step).saturating_add(i64::from(lo.rem_euclid(step) != 0)).saturating_mul(step);
        if first > hi {
            return None;
        }
        let span = ((hi - first) / step) as u64;
        let k = match self.rng.below(6) {
            0 => 0,
            1 => span,
            _ => self.rng.below(span.saturating_add(1).max(1)),
        };
        Some(Value::from(first.saturating_add((k as i64).saturating_mul(step))))
    }

    fn number(&mut self, schema: &Value) -> Option<Value> {
        if num(schema, "multipleOf").is_some() || self.rng.chance(2) {
            return self.integer(schema);
        }
        let lo = num(schema, "minimum").or(num(schema, "exclusiveMinimum")).unwrap_or(-1000.0).max(-1e15);
        let hi = num(schema, "maximum").or(num(schema, "exclusiveMaximum")).unwrap_or(1000.0).min(1e15);
        if lo > hi {
            return None;
        }
        let t = (self.rng.below(1_000_000) as f64 + 0.5) / 1_000_000.0;
        Number::from_f64(lo + (hi - lo) * t).map(Value::Number)
    }

    fn string(&mut self, schema: &Value) -> Option<Value> {
        let min = count(schema, "minLength").unwrap_or(0);
        if min > MAX_STRING {
            return None;
        }
        let max = count(schema, "maxLength").unwrap_or(min.max(24) + 8).min(MAX_STRING.max(min));
        if min > max {
            return None;
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str)
            && let Some(s) = self.format(format)
        {
            return Some(Value::String(s));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let mut out = String::new();
            if regex::generate(pattern, self.rng, &mut out).is_some() {
                return Some(Value::String(out));
            }
        }
        let len = match self.rng.below(5) {
            0 => min,
            1 => max.min(min + 64),
            _ => min + self.rng.below((max - min).min(24) + 1),
        };
        let mut s = String::new();
        while (s.chars().count() as u64) < len {
            if self.rng.chance(6) {
                let piece = self.rng.pick(AWKWARD).copied().unwrap_or("x");
                if s.chars().count() + piece.chars().count() <= len as usize {
                    s.push_str(piece);
                    continue;
                }
            }
            s.push((b'a' + self.rng.below(26) as u8) as char);
        }
        Some(Value::String(s))
    }

    fn format(&mut self, format: &str) -> Option<String> {
        let n = self.rng.below(10_000);
        Some(match format {
            "email" => format!("user{n}@example.com"),
            "date-time" => format!("2026-{:02}-{:02}T{:02}:{:02}:00Z", n % 12 + 1, n % 28 + 1, n % 24, n % 60),
            "date" => format!("2026-{:02}-{:02}", n % 12 + 1, n % 28 + 1),
            "time" => format!("{:02}:{:02}:00Z", n % 24, n % 60),
            "uri" | "url" => format!("https://example.com/item/{n}"),
            "uuid" => format!("123e4567-e89b-42d3-a456-{:012}", n),
            "hostname" => format!("host{n}.example.com"),
            "ipv4" => format!("192.0.2.{}", n % 255),
            _ => return None,
        })
    }

    fn array(&mut self, schema: &Value, depth: u32) -> Option<Value> {
        let min = count(schema, "minItems").unwrap_or(0);
        if min > MAX_ITEMS {
            return None;
        }
        let max = count(schema, "maxItems").unwrap_or(MAX_ITEMS).min(MAX_ITEMS);
        if min > max {
            return None;
        }
        let wanted = if depth >= MAX_DEPTH { min } else { min + self.rng.below((max - min).min(4) + 1) };
        let prefix: Vec<Value> = match (schema.get("prefixItems"), schema.get("items")) {
            (Some(Value::Array(p)), _) | (None, Some(Value::Array(p))) => p.clone(),
            _ => Vec::new(),
        };
        let rest = match schema.get("items") {
            Some(Value::Array(_)) | None => schema.get("additionalItems").cloned().unwrap_or(Value::Bool(true)),
            Some(items) => items.clone(),
        };
        let unique = schema.get("uniqueItems") == Some(&Value::Bool(true));
        let mut out: Vec<Value> = Vec::new();
        let mut attempts = 0;
        while (out.len() as u64) < wanted.max(prefix.len() as u64).min(max) {
            attempts += 1;
            if attempts > wanted * 4 + 8 {
                return ((out.len() as u64) >= min).then_some(Value::Array(out));
            }
            let item_schema = prefix.get(out.len()).unwrap_or(&rest);
            let v = self.value(item_schema, depth + 1)?;
            if unique && out.contains(&v) {
                continue;
            }
            out.push(v);
        }
        Some(Value::Array(out))
    }

    fn object(&mut self, schema: &Value, depth: u32) -> Option<Value> {
        let empty = Map::new();
        let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let min_props = count(schema, "minProperties").unwrap_or(0);
        // Some runs give every optional property, some none, most a coin toss each.
        let mode = if depth >= MAX_DEPTH { 0 } else { self.rng.below(4) };
        let mut out = Map::new();
        for (name, prop) in props {
            let wanted = required.contains(&name.as_str())
                || match mode {
                    0 => false,
                    1 => true,
                    _ => self.rng.chance(2),
                }
                || (out.len() as u64) < min_props;
            if wanted {
                out.insert(name.clone(), self.value(prop, depth + 1)?);
            }
        }
        for name in required {
            if !out.contains_key(name) {
                // Required but not described: anything does.
                let any = schema.get("additionalProperties").cloned().unwrap_or(Value::Bool(true));
                out.insert(name.to_string(), self.value(&any, depth + 1)?);
            }
        }
        let additional = schema.get("additionalProperties");
        let closed =
            additional == Some(&Value::Bool(false)) || schema.get("unevaluatedProperties") == Some(&Value::Bool(false));
        let extra = additional.cloned().unwrap_or(Value::Bool(true));
        if !closed
            && depth < MAX_DEPTH
            && self.rng.chance(6)
            && let Some(v) = self.value(&extra, depth + 1)
        {
            out.insert(format!("extra_{}", self.rng.below(1000)), v);
        }
        // `minProperties` beyond the declared ones: extra keys, where the schema allows them.
        while (out.len() as u64) < min_props.min(16) && !closed {
            let v = self.value(&extra, depth + 1)?;
            out.insert(format!("extra_{}", out.len()), v);
        }
        if (out.len() as u64) < min_props {
            return None;
        }
        if let Some(max) = count(schema, "maxProperties")
            && out.len() as u64 > max
        {
            return None;
        }
        Some(Value::Object(out))
    }
}

/// `schema`'s keywords with `other`'s on top; properties and required are unions.
fn merged(schema: &Value, other: &Value) -> Value {
    let mut out = schema.clone();
    for key in ["anyOf", "oneOf"] {
        if let Some(o) = out.as_object_mut() {
            o.remove(key);
        }
    }
    let (Some(o), Some(add)) = (out.as_object_mut(), other.as_object()) else { return other.clone() };
    for (k, v) in add {
        match (k.as_str(), o.get_mut(k)) {
            ("properties", Some(Value::Object(mine))) => {
                if let Value::Object(theirs) = v {
                    mine.extend(theirs.clone());
                }
            }
            ("required", Some(Value::Array(mine))) => {
                if let Value::Array(theirs) = v {
                    mine.extend(theirs.iter().filter(|t| !mine.contains(t)).cloned().collect::<Vec<_>>());
                }
            }
            _ => {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// One value meant to satisfy `schema`, or `None` when this generator cannot make one.
pub fn valid_value(root: &Value, schema: &Value, rng: &mut Rng) -> Option<Value> {
    Gen { root, rng, budget: NODE_BUDGET }.value(schema, 0)
}

/// A value of a JSON type `allowed` does not include, if there is one.
fn other_type(allowed: &[&str]) -> Option<(Value, &'static str)> {
    let candidates: [(&str, Value, &'static str); 5] = [
        ("string", Value::String("not-the-right-type".into()), "a string"),
        ("number", Value::from(7), "a number"),
        ("boolean", Value::Bool(true), "a boolean"),
        ("array", Value::Array(Vec::new()), "an array"),
        ("object", Value::Object(Map::new()), "an object"),
    ];
    let covers = |t: &str| allowed.iter().any(|a| *a == t || (t == "number" && *a == "integer"));
    candidates.into_iter().find(|(t, _, _)| !covers(t)).map(|(_, v, d)| (v, d))
}

/// Values that must not satisfy `schema`, each with what is wrong; at most `max`.
pub fn invalid_values(root: &Value, schema: &Value, rng: &mut Rng, max: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(schema) = resolve(root, schema) else { return out };
    let listed = types(schema);
    if !listed.is_empty()
        && !listed.contains(&"object")
        && let Some((v, what)) = other_type(&listed)
    {
        out.push((format!("the input is {what}, not {}", listed.join(" or ")), v));
    }
    if listed != ["object"] {
        return out;
    }
    if let Some((v, what)) = other_type(&listed) {
        out.push((format!("the input is {what}, not an object"), v));
    }
    let Some(base) = valid_value(root, schema, rng).and_then(|v| v.as_object().cloned()) else { return out };
    let empty = Map::new();
    let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let mut v = base.clone();
        v.remove(name);
        out.push((format!("missing required property `{name}`"), Value::Object(v)));
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) && schema.get("patternProperties").is_none() {
        let mut v = base.clone();
        v.insert("zzz_unexpected".into(), Value::from(1));
        out.push(("unexpected property `zzz_unexpected` (additionalProperties is false)".into(), Value::Object(v)));
    }
    for (name, prop) in props {
        let Some(prop) = resolve(root, prop) else { continue };
        let mut with = |what: String, bad: Value| {
            let mut v = base.clone();
            v.insert(name.clone(), bad);
            out.push((format!("`/{name}`: {what}"), Value::Object(v)));
        };
        if ["anyOf", "oneOf", "allOf", "not", "if"].iter().any(|k| prop.get(k).is_some()) {
            continue;
        }
        let allowed = types(prop);
        if !allowed.is_empty()
            && let Some((bad, what)) = other_type(&allowed)
        {
            with(format!("{what} instead of {}", allowed.join(" or ")), bad);
        }
        if let Some(Value::Array(options)) = prop.get("enum")
            && !options.contains(&Value::String("zzz-not-allowed".into()))
        {
            with("a value outside its enum".into(), Value::String("zzz-not-allowed".into()));
        }
        // Each keyword binds values of its type whatever else the schema allows (`null`).
        if allowed.contains(&"string") {
            if let Some(min) = count(prop, "minLength").filter(|m| *m > 0 && *m <= MAX_STRING) {
                with(format!("shorter than minLength {min}"), Value::String("x".repeat(min as usize - 1)));
            }
            if let Some(max) = count(prop, "maxLength").filter(|m| *m < MAX_STRING) {
                with(format!("longer than maxLength {max}"), Value::String("x".repeat(max as usize + 1)));
            }
        }
        if allowed.iter().any(|t| *t == "integer" || *t == "number") {
            if let Some(min) = num(prop, "minimum").filter(|m| m.abs() < 1e15) {
                with(format!("below minimum {min}"), Value::from((min - 1.0).floor() as i64));
            }
            if let Some(max) = num(prop, "maximum").filter(|m| m.abs() < 1e15) {
                with(format!("above maximum {max}"), Value::from((max + 1.0).ceil() as i64));
            }
        }
        if allowed.contains(&"integer") && !allowed.contains(&"number") {
            with("not an integer".into(), Value::from(0.5));
        }
        if allowed.contains(&"array") {
            if let Some(min) = count(prop, "minItems").filter(|m| *m > 0 && *m <= MAX_ITEMS) {
                let item = prop.get("items").and_then(|i| valid_value(root, i, rng)).unwrap_or(Value::Null);
                with(format!("fewer than minItems {min}"), Value::Array(vec![item; min as usize - 1]));
            }
            if let Some(item_schema) = prop.get("items").filter(|i| i.is_object())
                && let Some(item_schema) = resolve(root, item_schema)
                && let Some((bad, what)) = other_type(&types(item_schema)).filter(|_| !types(item_schema).is_empty())
                && count(prop, "maxItems").is_none_or(|m| m >= 1)
            {
                with(format!("item `/{name}/0` is {what}"), Value::Array(vec![bad]));
            }
        }
    }
    // Mix the order so `max` does not always keep the same kinds of mistakes.
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out.truncate(max);
    out
}

mod regex;
#[cfg(test)]
mod tests;
