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
//! ```
//!
//! With `EXHAUST_WRITE=FILE` a component case is written to FILE instead of loaded.
//!
//! It uses only API that predates the bounds (`Schema::compile`, `Schema::check`,
//! `Sandbox::load`), so the same file measures the code before them. Prints what happened and
//! how long it took; exits 0 either way.

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
