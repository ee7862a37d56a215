//! What converting a plain component's values costs the host stays within the call's memory
//! limit (issue 13 §1): a guest returning a list whose lifted values cost many times its own
//! memory is refused with a typed error, an input whose values would is refused before the
//! guest runs, and an output over the output limit is reported with its exact size. The
//! components are written in WAT: they return lists of zeroed guest memory.

use crate::common;

use serde_json::{Value, json};
use tollgate_sandbox::{CallError, Grants, Limits, Plugin, ValueSide};

/// A plain component exporting `make: func(n: u32) -> list<ELEMENT>`: it grows its memory to
/// hold `n` zeroed elements of `size` bytes and returns them (zero is a valid value of every
/// element type used here).
fn returns_list(element: &str, size: usize) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m
                (memory (export "memory") 1)
                (func (export "make") (param $n i32) (result i32)
                    (local $pages i32)
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
    .unwrap()
}

/// `result<result<…<u8>>>`, `depth` deep (31 is the deepest whose schema derives), and its
/// size in guest memory: one discriminant byte per level.
fn nested_results(depth: usize) -> (String, usize) {
    (format!("{}u8{}", "(result ".repeat(depth), ")".repeat(depth)), depth + 1)
}

fn nested_ok(depth: usize) -> Value {
    (0..depth).fold(json!(0), |inner, _| json!({ "ok": inner }))
}

async fn load(bytes: &[u8], limits: Limits) -> Plugin {
    common::sandbox().load(bytes, Grants::new().limits(limits)).await.unwrap()
}

fn with_memory(memory_bytes: usize) -> Limits {
    Limits { memory_bytes, ..Limits::default() }
}

/// 1,000 elements nested 31 deep are 32 KiB of guest memory and 1.5 MiB of host memory once
/// lifted: over a 1 MiB memory limit, refused. Before the bound this call succeeded, and the
/// same list from a 64 MiB guest cost the host tens of gigabytes.
#[tokio::test]
async fn a_result_costing_more_than_the_memory_limit_is_refused() {
    let (element, size) = nested_results(31);
    let p = load(&returns_list(&element, size), with_memory(1 << 20)).await;
    let o = common::call(&p, "make", json!({ "n": 1000 })).await;
    assert_eq!(o.result, Err(CallError::ValueTooLarge { side: ValueSide::Output, limit: 1 << 20 }));
    assert_eq!(o.report.outcome, "value-too-large");
    assert!(o.report.peak_memory_bytes <= 1 << 20, "{}", o.report.peak_memory_bytes);
    let message = o.report.error.unwrap();
    assert!(message.contains("handed the host would take more than 1MiB of host memory"), "{message}");

    // Within the budget, the same function returns its values.
    let o = common::call(&p, "make", json!({ "n": 100 })).await;
    assert_eq!(o.result.unwrap(), Value::Array(vec![nested_ok(31); 100]));
}

/// The budget follows the memory limit: the default 64 MiB takes the list the 1 MiB limit
/// refused.
#[tokio::test]
async fn the_budget_is_the_calls_memory_limit() {
    let (element, size) = nested_results(31);
    let p = load(&returns_list(&element, size), Limits::default()).await;
    let o = common::call(&p, "make", json!({ "n": 1000 })).await;
    assert_eq!(o.result.unwrap().as_array().map(Vec::len), Some(1000));
}

/// The output is written as text that stops growing at the output limit, and is reported
/// with the size it would have had.
#[tokio::test]
async fn an_output_over_the_limit_is_reported_with_its_exact_size() {
    let p = load(&returns_list("u8", 1), Limits::default()).await;
    // `[0,0,…,0]`: two bytes per element, one comma fewer, two brackets.
    let o = common::call(&p, "make", json!({ "n": 600_000 })).await;
    assert_eq!(o.result, Err(CallError::OutputTooLarge { size: 1_200_001, limit: 1 << 20 }));
    let (element, size) = nested_results(3);
    let p = load(&returns_list(&element, size), Limits { output_bytes: 1000, ..Limits::default() }).await;
    // `{"ok":{"ok":{"ok":0}}}` is 22 bytes: 45 of them and 44 commas are 1,036 bytes.
    let o = common::call(&p, "make", json!({ "n": 45 })).await;
    assert_eq!(o.result, Err(CallError::OutputTooLarge { size: 1_036, limit: 1000 }));
    let o = common::call(&p, "make", json!({ "n": 43 })).await;
    assert_eq!(o.result.unwrap(), Value::Array(vec![nested_ok(3); 43]));
}

/// `count: func(xs: list<u8>) -> u32`, with a bump allocator for the host to copy `xs` in.
fn counts_a_list() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (core module $m
                (memory (export "memory") 1)
                (global $next (mut i32) (i32.const 1024))
                (func (export "realloc") (param i32 i32 i32 i32) (result i32)
                    (global.get $next)
                    (global.set $next (i32.add (global.get $next) (local.get 3))))
                (func (export "count") (param $ptr i32) (param $len i32) (result i32)
                    (local.get $len)))
            (core instance $i (instantiate $m))
            (alias core export $i "memory" (core memory $mem))
            (alias core export $i "realloc" (core func $realloc))
            (func $count (param "xs" (list u8)) (result u32)
                (canon lift (core func $i "count") (memory $mem) (realloc $realloc)))
            (export "count" (func $count)))"#,
    )
    .unwrap()
}

/// 40,000 bytes are 80 KB of JSON and 40 KB of guest memory, but 1.6 MB of values on the host:
/// over a 1 MiB memory limit, refused before the guest runs.
#[tokio::test]
async fn an_input_costing_more_than_the_memory_limit_is_refused_before_the_guest_runs() {
    let p = load(&counts_a_list(), with_memory(1 << 20)).await;
    let o = common::call(&p, "count", json!({ "xs": vec![0; 40_000] })).await;
    assert_eq!(o.result, Err(CallError::ValueTooLarge { side: ValueSide::Input, limit: 1 << 20 }));
    assert_eq!((o.report.fuel_used, o.report.peak_memory_bytes), (0, 0));
    assert_eq!(common::call(&p, "count", json!({ "xs": vec![7; 10_000] })).await.result.unwrap(), json!(10_000));
}

/// Depth is bounded by the types: a value is as deep as its type, and a function whose types
/// nest past what its derived schema can hold (128 JSON levels: 31 `result`s) is not offered.
#[tokio::test]
async fn types_nested_past_the_schema_depth_are_not_offered() {
    let (element, size) = nested_results(32);
    let err = common::sandbox().load(&returns_list(&element, size), Grants::new()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`make`: derived schema does not compile") && text.contains("recursion limit"), "{text}");
}
