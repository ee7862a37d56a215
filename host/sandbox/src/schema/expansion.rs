//! How much work one value can cost a schema, computed at load so that a schema whose
//! validation would explode is refused before any value reaches it.
//!
//! The cost that matters is how many schema nodes are evaluated against *one location* of the
//! value. `allOf`/`anyOf`/`oneOf`/`not`/`if`/`then`/`else`/`dependentSchemas` and `$ref` apply
//! their subschemas in place, so `$defs` that nest `allOf` of two `$ref`s per level make one
//! location cost 2^depth evaluations from a schema of a few hundred bytes. Keywords that
//! descend (`properties`, `items`, `additionalProperties`, …) apply subschemas to the value's
//! children, where a recursive schema can multiply again at every level of nesting.
//!
//! [`analyse`] walks the schema as a graph (nodes are JSON pointers, so shared `$defs` are one
//! node), refuses in-place cycles (`{"allOf": [{"$ref": "#"}]}` never terminates), and then
//! bounds, for values nested as deep as `serde_json` will parse (128), how many schema nodes
//! apply to one location whose path the adversary picks. That bound is the schema's
//! *expansion*; a schema whose expansion exceeds the limit is refused. Counts saturate
//! instead of overflowing.

use std::collections::HashMap;

use serde_json::Value;

/// The deepest nesting `serde_json` parses (its recursion limit): values are never deeper.
const MAX_DEPTH: usize = 129;
/// Nodes a schema document may have (a 64 KiB schema has far fewer).
const MAX_NODES: usize = 100_000;
/// Entries the analysis may compute over all levels (well under a second).
const MAX_ANALYSIS_WORK: usize = 5_000_000;

/// Keywords whose subschemas apply to the same location (an array or a map of them, or one).
const IN_PLACE_LISTS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
const IN_PLACE_ONE: [&str; 4] = ["not", "if", "then", "else"];
const IN_PLACE_MAPS: [&str; 2] = ["dependentSchemas", "dependencies"];

/// Which child of a value a descending keyword applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// `properties/<name>`: the member with that name.
    Named(String),
    /// `patternProperties`, `additionalProperties`, `unevaluatedProperties`: possibly any
    /// member (counting `additionalProperties` for named members too over-estimates, safely).
    AnyMember,
    /// `items`, `prefixItems`, `additionalItems`, `contains`, `unevaluatedItems`.
    Element,
    /// `propertyNames`: a member's name (a string).
    Name,
}

#[derive(Default)]
struct Node {
    in_place: Vec<usize>,
    descending: Vec<(Key, usize)>,
}

struct Graph<'a> {
    doc: &'a Value,
    ids: HashMap<String, usize>,
    pointers: Vec<String>,
    nodes: Vec<Node>,
    anchors: HashMap<String, String>,
}

/// The largest number of schema-node evaluations one location of any value can cost, or why
/// the schema is refused. `limit` bounds it.
///
/// For each node `u` and remaining depth `d`, `B_d(u)` bounds the evaluations at any one
/// location of a value checked against `u` alone: either the location itself (`F(u)`, the
/// in-place expansion with multiplicity), or, for the child key the adversary picks — one key,
/// shared by everything in `u`'s in-place closure — the sum over the subschemas that key
/// reaches of their own `B_{d-1}`. Letting each of those pick its own later keys only
/// over-estimates, so the bound is sound; sharing the key at each level keeps a recursive tree
/// (`left`, `right`) linear while two branches descending into the same member double.
pub(crate) fn analyse(doc: &Value, limit: u64) -> Result<u64, String> {
    let mut anchors = HashMap::new();
    collect_anchors(doc, String::new(), &mut anchors, 0);
    let mut g = Graph { doc, ids: HashMap::new(), pointers: Vec::new(), nodes: Vec::new(), anchors };
    g.build()?;
    let order = g.in_place_order()?;
    let n = g.nodes.len();
    let cap = limit.saturating_add(1);
    // F(u): u and everything applied in place under it, with multiplicity (children first).
    let mut f = vec![1u64; n];
    for &u in order.iter().rev() {
        let sum = g.nodes[u].in_place.iter().fold(1u64, |a, &c| a.saturating_add(f[c]));
        f[u] = sum.min(cap);
    }
    if f[0] > limit {
        return Err(too_much(limit));
    }
    let mut b = f.clone();
    // The analysis is bounded too: a schema that needs more bookkeeping than this is refused.
    let mut work = 0usize;
    for _ in 0..MAX_DEPTH {
        // G(u)[key]: over u's in-place closure, the B of the subschemas `key` reaches.
        let mut per_key: Vec<HashMap<Key, u64>> = vec![HashMap::new(); n];
        for &u in order.iter().rev() {
            let mut mine: HashMap<Key, u64> = HashMap::new();
            for (key, target) in &g.nodes[u].descending {
                let e = mine.entry(key.clone()).or_default();
                *e = e.saturating_add(b[*target]).min(cap);
            }
            for &c in &g.nodes[u].in_place {
                for (key, value) in &per_key[c] {
                    let e = mine.entry(key.clone()).or_default();
                    *e = e.saturating_add(*value).min(cap);
                }
            }
            work = work.saturating_add(mine.len() + 1);
            if work > MAX_ANALYSIS_WORK {
                return Err(format!(
                    "the schema is too complex to bound (more than {MAX_ANALYSIS_WORK} steps of analysis): simplify it"
                ));
            }
            per_key[u] = mine;
        }
        let next: Vec<u64> = (0..n)
            .map(|u| {
                let keys = &per_key[u];
                let any = keys.get(&Key::AnyMember).copied().unwrap_or(0);
                let deepest = keys
                    .iter()
                    .map(|(key, value)| match key {
                        Key::Named(_) => value.saturating_add(any),
                        _ => *value,
                    })
                    .max()
                    .unwrap_or(0);
                f[u].max(deepest).min(cap)
            })
            .collect();
        if next[0] > limit {
            return Err(too_much(limit));
        }
        if next == b {
            // A fixed point: deeper values cost no more.
            break;
        }
        b = next;
    }
    Ok(b[0])
}

fn too_much(limit: u64) -> String {
    format!(
        "validating one value could evaluate more than {limit} subschemas at one location (allOf/anyOf/oneOf and \
         $ref fan out too much): simplify the schema"
    )
}

fn collect_anchors(v: &Value, pointer: String, out: &mut HashMap<String, String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(o) => {
            if let Some(Value::String(a)) = o.get("$anchor") {
                out.entry(a.clone()).or_insert_with(|| pointer.clone());
            }
            for (k, child) in o {
                collect_anchors(child, format!("{pointer}/{}", escape(k)), out, depth + 1);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                collect_anchors(child, format!("{pointer}/{i}"), out, depth + 1);
            }
        }
        _ => {}
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Graph<'_> {
    /// Discovers every node reachable from the root, following local `$ref`s.
    fn build(&mut self) -> Result<(), String> {
        self.id(String::new())?;
        let mut next = 0;
        while next < self.nodes.len() {
            let pointer = self.pointers[next].clone();
            self.edges(next, &pointer)?;
            next += 1;
        }
        Ok(())
    }

    fn id(&mut self, pointer: String) -> Result<usize, String> {
        if let Some(&id) = self.ids.get(&pointer) {
            return Ok(id);
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(format!("the schema has more than {MAX_NODES} subschemas"));
        }
        let id = self.nodes.len();
        self.ids.insert(pointer.clone(), id);
        self.pointers.push(pointer);
        self.nodes.push(Node::default());
        Ok(id)
    }

    fn edges(&mut self, id: usize, pointer: &str) -> Result<(), String> {
        let Some(Value::Object(o)) = self.doc.pointer(pointer) else { return Ok(()) };
        let mut in_place = Vec::new();
        let mut descending = Vec::new();
        for (kw, v) in o {
            let at = format!("{pointer}/{}", escape(kw));
            match kw.as_str() {
                "$ref" => {
                    let Value::String(r) = v else { continue };
                    in_place.push(self.reference(r)?);
                }
                "$dynamicRef" | "$recursiveRef" => {
                    return Err(format!("`{kw}` is not supported in plugin schemas; use `$ref`"));
                }
                k if IN_PLACE_LISTS.contains(&k) => {
                    for i in 0..v.as_array().map_or(0, Vec::len) {
                        in_place.push(self.id(format!("{at}/{i}"))?);
                    }
                }
                k if IN_PLACE_ONE.contains(&k) => in_place.push(self.id(at)?),
                k if IN_PLACE_MAPS.contains(&k) => {
                    for (name, s) in v.as_object().into_iter().flatten() {
                        if s.is_object() || s.is_boolean() {
                            in_place.push(self.id(format!("{at}/{}", escape(name)))?);
                        }
                    }
                }
                "properties" => {
                    for name in v.as_object().into_iter().flatten().map(|(n, _)| n) {
                        descending.push((Key::Named(name.clone()), self.id(format!("{at}/{}", escape(name)))?));
                    }
                }
                "patternProperties" => {
                    for name in v.as_object().into_iter().flatten().map(|(n, _)| n) {
                        descending.push((Key::AnyMember, self.id(format!("{at}/{}", escape(name)))?));
                    }
                }
                "additionalProperties" | "unevaluatedProperties" => descending.push((Key::AnyMember, self.id(at)?)),
                "propertyNames" => descending.push((Key::Name, self.id(at)?)),
                "items" | "prefixItems" if v.is_array() => {
                    for i in 0..v.as_array().map_or(0, Vec::len) {
                        descending.push((Key::Element, self.id(format!("{at}/{i}"))?));
                    }
                }
                "items" | "additionalItems" | "contains" | "unevaluatedItems" => {
                    descending.push((Key::Element, self.id(at)?))
                }
                _ => {}
            }
        }
        let node = &mut self.nodes[id];
        node.in_place = in_place;
        node.descending = descending;
        Ok(())
    }

    /// A local reference (`#`, `#/json/pointer`, `#anchor`) as a node.
    fn reference(&mut self, r: &str) -> Result<usize, String> {
        let Some(fragment) = r.strip_prefix('#') else {
            return Err(format!("`$ref` `{}` is not local: plugin schemas may only use `#…` references", clip(r)));
        };
        let fragment = percent_decode(fragment);
        let pointer = if fragment.is_empty() || fragment.starts_with('/') {
            fragment
        } else {
            self.anchors.get(&fragment).cloned().ok_or_else(|| format!("`$ref` `{}` names no anchor", clip(r)))?
        };
        if self.doc.pointer(&pointer).is_none() {
            return Err(format!("`$ref` `{}` points nowhere", clip(r)));
        }
        self.id(pointer)
    }

    /// The nodes in an order where every in-place parent comes before its children; an
    /// in-place cycle is refused (it would recurse forever on one location).
    fn in_place_order(&self) -> Result<Vec<usize>, String> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        for node in &self.nodes {
            for &v in &node.in_place {
                indegree[v] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(u) = ready.pop() {
            order.push(u);
            for &v in &self.nodes[u].in_place {
                indegree[v] -= 1;
                if indegree[v] == 0 {
                    ready.push(v);
                }
            }
        }
        if order.len() < n {
            return Err("the schema refers to itself without descending into the value (an in-place $ref cycle, \
                        which never terminates)"
                .into());
        }
        Ok(order)
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `$defs` nesting `allOf` of two `$ref`s per level: 2^depth evaluations per location.
    pub(crate) fn fan_out_bomb(depth: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..depth {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(format!("d{i}"), json!({"allOf": [{"$ref": next}, {"$ref": next}]}));
        }
        defs.insert(format!("d{depth}"), json!({"type": "string"}));
        json!({"$defs": defs, "$ref": "#/$defs/d0"})
    }

    #[test]
    fn ordinary_schemas_cost_little() {
        let s = json!({"type": "object", "properties": {"to": {"type": "array", "items": {"$ref": "#/$defs/a"}}},
                       "$defs": {"a": {"type": "object", "properties": {"email": {"type": "string"}}}}});
        assert!(analyse(&s, 100).unwrap() <= 5);
        // A recursive tree: linear, one schema node per location at every level.
        let tree = json!({"$defs": {"n": {"properties": {"l": {"$ref": "#/$defs/n"}, "r": {"$ref": "#/$defs/n"},
                          "kids": {"items": {"$ref": "#/$defs/n"}}}}}, "$ref": "#/$defs/n"});
        assert!(analyse(&tree, 100).unwrap() <= 3);
        assert_eq!(analyse(&json!(true), 10).unwrap(), 1);
    }

    #[test]
    fn fan_out_is_refused() {
        assert!(analyse(&fan_out_bomb(4), 10_000).is_ok());
        let e = analyse(&fan_out_bomb(40), 10_000).unwrap_err();
        assert!(e.contains("more than 10000"), "{e}");
    }

    #[test]
    fn recursion_that_doubles_per_level_is_refused() {
        // Two in-place branches each descending into the same member: 2^depth at depth.
        let s = json!({"allOf": [{"properties": {"x": {"$ref": "#"}}}, {"properties": {"x": {"$ref": "#"}}}]});
        assert!(analyse(&s, 10_000).unwrap_err().contains("more than"));
    }

    #[test]
    fn in_place_cycles_and_foreign_refs_are_refused() {
        assert!(analyse(&json!({"allOf": [{"$ref": "#"}]}), 100).unwrap_err().contains("cycle"));
        assert!(analyse(&json!({"$ref": "https://x.test/s.json"}), 100).unwrap_err().contains("not local"));
        assert!(analyse(&json!({"$ref": "#/nowhere"}), 100).unwrap_err().contains("points nowhere"));
        let anchored = json!({"$defs": {"a": {"$anchor": "x", "type": "string"}}, "$ref": "#x"});
        assert!(analyse(&anchored, 100).is_ok());
    }
}
