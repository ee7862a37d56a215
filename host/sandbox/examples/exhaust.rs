//! Load-time exhaustion cases of issue 13 §1, one per run, for measuring time and peak memory
//! (`/usr/bin/time -v`) before and after the bounds:
//!
//! ```sh
//! cargo run -p tollgate-sandbox --example exhaust -- schema 40   # allOf/$ref fan-out, depth 40
//! cargo run -p tollgate-sandbox --example exhaust -- schema 24 invalid  # … checking a bad value
//! cargo run -p tollgate-sandbox --example exhaust -- regex 2000  # 2,000 `\p{L}{20}N` patterns
//! cargo run -p tollgate-sandbox --example exhaust -- functions 100000
//! cargo run -p tollgate-sandbox --example exhaust -- nesting 60000
//! cargo run -p tollgate-sandbox --example exhaust -- exports 20000
//! cargo run -p tollgate-sandbox --example exhaust -- plain-bytes 3000000  # returns list<u8>
//! cargo run -p tollgate-sandbox --example exhaust -- plain-pairs 1000000  # list<tuple<u8, u8>>
//! cargo run -p tollgate-sandbox --example exhaust -- plain-deep90 100000  # list<result<…u8>>, 90 deep
//! ```
//!
//! With `EXHAUST_WRITE=FILE` a component case is written to FILE instead of loaded.
//!
//! The `plain-*` cases are issue 13 §1's leftover, conversion at call time: a plain component
//! whose one function returns a list of `n` elements straight from zeroed guest memory (zero
//! is a valid value of each element type), called under the default limits (64 MiB of guest
//! memory). They print the process's peak RSS (`VmHWM`) before and after the call.
//!
//! It uses only API that predates the bounds (`Schema::compile`, `Schema::check`,
//! `Sandbox::load`, `Plugin::call`), so the same file measures the code before them. Prints
//! what happened and how long it took; exits 0 either way.

use std::time::Instant;

use serde_json::{Value, json};
use tollgate_sandbox::{Grants, Sandbox, SandboxConfig, Schema};

fn fan_out(depth: usize) -> String {
    let mut defs = serde_json::Map::new();
    for i in 0..depth {
        let next = format!("#/$defs/d{}", i + 1);
        defs.insert(format!("d{i}"), json!({"allOf": [{"$ref": next}, {"$ref": next}]}));
    }
    defs.insert(format!("d{depth}"), json!({"type": "string"}));
    json!({"$defs": defs, "$ref": "#/$defs/d0"}).to_string()
}

fn patterns(n: usize) -> String {
    let props: serde_json::Map<String, Value> =
        (0..n).map(|i| (format!("p{i}"), json!({"pattern": format!("\\p{{L}}{{20}}{i}")}))).collect();
    json!({"type": "object", "properties": props}).to_string()
}

fn component(core: &str) -> Vec<u8> {
    wat::parse_str(format!("(component (core module {core}))")).expect("valid WAT")
}

fn plain_exports(n: usize) -> Vec<u8> {
    let exports: String = (0..n).map(|i| format!("(export \"f{i}\" (func $f))")).collect();
    wat::parse_str(format!(
        r#"(component (core module $m (func (export "f") (result i32) i32.const 7))
            (core instance $i (instantiate $m))
            (func $f (result u32) (canon lift (core func $i "f"))) {exports})"#
    ))
    .expect("valid WAT")
}

/// A plain component exporting `make: func(n: u32) -> list<ELEMENT>`: it grows its memory to
/// hold `n` zeroed elements of `size` bytes and returns them all.
fn plain_list(element: &str, size: usize) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m
                (memory (export "memory") 1)
                (func (export "make") (param $n i32) (result i32)
                    (local $pages i32)
                    ;; Pages for the 8-byte (ptr, len) pair and n elements, beyond the first.
                    (local.set $pages (i32.shr_u
                        (i32.add (i32.mul (local.get $n) (i32.const {size})) (i32.const 65543))
                        (i32.const 16)))
                    (if (i32.gt_u (local.get $pages) (i32.const 1))
                        (then (if (i32.eq (memory.grow (i32.sub (local.get $pages) (i32.const 1))) (i32.const -1))
                            (then unreachable))))
                    (i32.store (i32.const 0) (i32.const 8))
                    (i32.store (i32.const 4) (local.get $n))
                    (i32.const 0)))
            (core instance $i (instantiate $m))
            (alias core export $i "memory" (core memory $mem))
            (func $make (param "n" u32) (result (list {element}))
                (canon lift (core func $i "make") (memory $mem)))
            (export "make" (func $make)))"#
    ))
    .expect("valid WAT")
}

/// `result<result<…<u8>>>`, `depth` results deep, and its size in guest memory.
fn nested_results(depth: usize) -> (String, usize) {
    (format!("{}u8{}", "(result ".repeat(depth), ")".repeat(depth)), depth + 1)
}

/// The process's peak resident set so far, from `/proc/self/status`.
fn peak_rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn plain_case(bytes: &[u8], n: usize) {
    let sandbox = Sandbox::new(SandboxConfig { max_concurrent_instances: 8, ..SandboxConfig::default() })
        .expect("sandbox starts");
    let plugin = sandbox.load(bytes, Grants::new()).await.expect("the component loads");
    println!("loaded; peak RSS {}", peak_rss());
    let started = Instant::now();
    let outcome = plugin.call("make", &json!({ "n": n }).to_string(), &Default::default()).await;
    let result = match &outcome.result {
        Ok(v) => format!("ok, {} elements", v.as_array().map_or(0, Vec::len)),
        Err(e) => format!("{}: {}", e.kind(), clip(&e.to_string())),
    };
    println!("called in {:?}: {result}; guest memory {} bytes", started.elapsed(), outcome.report.peak_memory_bytes);
    println!("peak RSS {}", peak_rss());
}

fn schema_case(text: &str, value: &Value) {
    println!("schema: {} bytes", text.len());
    let started = Instant::now();
    match Schema::compile(text) {
        Err(e) => println!("refused at load after {:?}: {}", started.elapsed(), clip(&e)),
        Ok(schema) => {
            println!("compiled in {:?}", started.elapsed());
            let started = Instant::now();
            let result = schema.check(value);
            println!("checked in {:?}: {}", started.elapsed(), clip(&format!("{result:?}")));
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("schema");
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(40);
    let bytes = match case {
        "schema" => {
            let value = if args.get(3).is_some_and(|a| a == "invalid") { json!(1) } else { json!("x") };
            return schema_case(&fan_out(n), &value);
        }
        "regex" => return schema_case(&patterns(n), &json!({"p0": "abc"})),
        "functions" => component(&"(func)".repeat(n)),
        "nesting" => component(&format!("(func {} {})", "(block ".repeat(n), ")".repeat(n))),
        "exports" => plain_exports(n),
        "plain-bytes" => return plain_case(&plain_list("u8", 1), n).await,
        "plain-pairs" => return plain_case(&plain_list("(tuple u8 u8)", 2), n).await,
        deep if deep.starts_with("plain-deep") => {
            let (element, size) = nested_results(deep["plain-deep".len()..].parse().expect("plain-deepDEPTH"));
            return plain_case(&plain_list(&element, size), n).await;
        }
        other => panic!("unknown case {other}"),
    };
    println!("component: {} bytes", bytes.len());
    if let Ok(path) = std::env::var("EXHAUST_WRITE") {
        // For measuring other loaders (`tollgate plugin inspect`) on the same bytes.
        std::fs::write(&path, &bytes).expect("writable path");
        return println!("written to {path}");
    }
    let sandbox = Sandbox::new(SandboxConfig { max_concurrent_instances: 8, ..SandboxConfig::default() })
        .expect("sandbox starts");
    let started = Instant::now();
    match sandbox.load(&bytes, Grants::new()).await {
        Ok(p) => println!("loaded in {:?}: {} tools", started.elapsed(), p.manifest().tools.len()),
        Err(e) => println!("refused after {:?}: {}", started.elapsed(), clip(&e.to_string())),
    }
}
