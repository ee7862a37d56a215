//! Every misbehaving plugin gets its precise, typed error; the host stays up; the next call
//! works.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate_sandbox::{CallError, Limits, ToolError};

fn limits() -> Limits {
    Limits { timeout: Duration::from_secs(5), ..Limits::default() }
}

async fn misbehave(l: Limits) -> tollgate_sandbox::Plugin {
    common::load(&common::sandbox(), "misbehave", common::misbehave_grants(&[]).limits(l)).await
}

#[tokio::test]
async fn infinite_loop_hits_the_timeout() {
    let p = misbehave(Limits { fuel: u64::MAX / 2, timeout: Duration::from_millis(300), ..limits() }).await;
    let started = Instant::now();
    let o = common::call(&p, "spin", json!({})).await;
    assert!(matches!(o.result, Err(CallError::Timeout { .. })), "{:?}", o.result);
    assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
    assert_eq!(o.report.outcome, "timeout");
    // The host is fine and a fresh instance works.
    assert_eq!(common::call(&p, "echo", json!({"a": 1})).await.result.unwrap(), json!({"a": 1}));
}

#[tokio::test]
async fn cpu_hog_runs_out_of_fuel() {
    let p = misbehave(Limits { fuel: 5_000_000, ..limits() }).await;
    let o = common::call(&p, "burn", json!({"iterations": 1_000_000_000u64})).await;
    assert_eq!(o.result, Err(CallError::FuelExhausted { limit: 5_000_000 }));
    assert!(o.report.fuel_used >= 5_000_000 - 10, "fuel used {}", o.report.fuel_used);
    let ok = common::call(&p, "burn", json!({"iterations": 1000})).await;
    assert!(ok.result.is_ok(), "{:?}", ok.result);
    assert!(ok.report.fuel_used > 1000 && ok.report.fuel_used < 5_000_000);
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let p = misbehave(Limits { memory_bytes: 32 << 20, ..limits() }).await;
    let o = common::call(&p, "alloc", json!({"mib": 256})).await;
    assert_eq!(o.result, Err(CallError::MemoryLimit { limit: 32 << 20 }));
    assert!(o.report.peak_memory_bytes <= 32 << 20, "peak {}", o.report.peak_memory_bytes);
    assert!(o.report.memory_refused);
    let small = common::call(&p, "alloc", json!({"mib": 4})).await;
    assert!(small.result.is_ok(), "{:?}", small.result);
    assert!(small.report.peak_memory_bytes >= 4 << 20);
    assert!(!small.report.memory_refused);
}

#[tokio::test]
async fn a_caught_allocation_failure_is_still_the_memory_limit() {
    // `fallible`: the guest catches the failed allocation (`try_reserve`) and returns its own
    // `internal` error. The host knows the cause better.
    let p = misbehave(Limits { memory_bytes: 32 << 20, ..limits() }).await;
    let o = common::call(&p, "alloc", json!({"mib": 256, "fallible": true})).await;
    assert_eq!(o.result, Err(CallError::MemoryLimit { limit: 32 << 20 }));
    assert_eq!(o.report.outcome, "memory-limit");
    assert!(o.report.memory_refused);
    let own = o.report.guest_error.as_deref().unwrap_or_default();
    assert!(own.starts_with("internal plugin error: could not allocate 256 MiB"), "{own}");
    let stored = serde_json::to_value(&o.report).unwrap();
    assert_eq!((&stored["memory_refused"], &stored["guest_error"]), (&json!(true), &json!(own)));

    // Within the limit the same path succeeds, and a tool error is the guest's own again.
    let small = common::call(&p, "alloc", json!({"mib": 4, "fallible": true})).await;
    assert_eq!(small.result.unwrap(), json!({"mib": 4}));
    assert!(!small.report.memory_refused && small.report.guest_error.is_none());
    let stored = serde_json::to_value(&small.report).unwrap();
    assert_eq!(stored["memory_refused"], json!(false));
    assert!(stored.get("guest_error").is_none(), "{stored}");
    let o = common::call(&p, "secret", json!({"name": "not-granted"})).await;
    assert!(matches!(o.result, Err(CallError::Tool(ToolError::Denied { .. }))), "{:?}", o.result);
    assert!(!o.report.memory_refused && o.report.guest_error.is_none());
}

/// A plain component with its own memory (one page): `grow` returns `memory.grow`'s result
/// (-1 when refused) and carries on; `try-grow` returns `err` when the grow is refused.
fn grower() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (core module $m
                (memory (export "mem") 1)
                (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
                (func (export "try-grow") (param i32) (result i32)
                    (if (i32.eq (memory.grow (local.get 0)) (i32.const -1))
                        (then (i32.store (i32.const 0) (i32.const 1)))
                        (else (i32.store (i32.const 0) (i32.const 0))
                              (i32.store (i32.const 4) (memory.size))))
                    (i32.const 0)))
            (core instance $i (instantiate $m))
            (func (export "grow") (param "pages" u32) (result s32) (canon lift (core func $i "grow")))
            (func (export "try-grow") (param "pages" u32) (result (result u32))
                (canon lift (core func $i "try-grow") (memory (core memory $i "mem")))))"#,
    )
    .expect("valid WAT")
}

#[tokio::test]
async fn a_guest_that_recovers_from_a_refused_grow_succeeds_and_the_report_says_so() {
    let grants = tollgate_sandbox::Grants::new().limits(Limits { memory_bytes: 4 << 20, ..limits() });
    let p = common::sandbox().load(&grower(), grants).await.unwrap();
    // 128 pages = 8 MiB: over the 4 MiB limit. The guest sees -1 and returns it.
    let o = common::call(&p, "grow", json!({"pages": 128})).await;
    assert_eq!(o.result.unwrap(), json!(-1));
    assert_eq!(o.report.outcome, "ok");
    assert!(o.report.memory_refused && o.report.guest_error.is_none());
    let ok = common::call(&p, "grow", json!({"pages": 16})).await;
    assert_eq!(ok.result.unwrap(), json!(1), "the old size in pages");
    assert!(!ok.report.memory_refused);

    // A plain function's `err` after a refused grow: the memory limit, the err kept.
    let o = common::call(&p, "try_grow", json!({"pages": 128})).await;
    assert_eq!(o.result, Err(CallError::MemoryLimit { limit: 4 << 20 }));
    assert_eq!(o.report.guest_error.as_deref(), Some("invalid input: the function returned err"));
    assert_eq!(common::call(&p, "try_grow", json!({"pages": 16})).await.result.unwrap(), json!(17));
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let p = misbehave(limits()).await;
    let o = common::call(&p, "recurse", json!({"depth": 100_000_000u64})).await;
    // Rust guests keep a shadow stack in linear memory: depending on the frame size it is the
    // wasm stack or that shadow stack which runs out first. Either way a typed error.
    match &o.result {
        Err(CallError::StackOverflow) => {}
        Err(CallError::Trap { message, .. }) => {
            assert!(message.contains("out of bounds") || message.contains("stack"), "{message}")
        }
        other => panic!("want stack overflow, got {other:?}"),
    }
    assert!(common::call(&p, "recurse", json!({"depth": 100})).await.result.is_ok());
}

#[tokio::test]
async fn huge_output_is_refused() {
    let p = misbehave(Limits { output_bytes: 1000, ..limits() }).await;
    assert!(common::call(&p, "huge_output", json!({"bytes": 1000})).await.result.is_ok());
    let o = common::call(&p, "huge_output", json!({"bytes": 1001})).await;
    assert_eq!(o.result, Err(CallError::OutputTooLarge { size: 1001, limit: 1000 }));
}

#[tokio::test]
async fn invalid_outputs_are_refused() {
    let p = misbehave(limits()).await;
    let o = common::call(&p, "bad_output", json!({})).await;
    assert!(
        matches!(&o.result, Err(CallError::InvalidOutput { message }) if message.contains("not JSON")),
        "{:?}",
        o.result
    );
    let o = common::call(&p, "wrong_output", json!({})).await;
    assert!(
        matches!(&o.result, Err(CallError::InvalidOutput { message }) if message.contains("output schema")),
        "{:?}",
        o.result
    );
}

#[tokio::test]
async fn panic_is_a_trap_with_the_message() {
    let p = misbehave(limits()).await;
    let o = common::call(&p, "panic", json!({})).await;
    match &o.result {
        Err(CallError::Trap { message, .. }) => assert!(message.contains("panicked at"), "{message}"),
        other => panic!("want trap, got {other:?}"),
    }
    assert!(o.report.stderr.contains("panicked"), "stderr: {}", o.report.stderr);
    assert!(common::call(&p, "echo", json!({})).await.result.is_ok());
}

#[tokio::test]
async fn host_waits_are_bounded_by_the_deadline() {
    let p = misbehave(Limits { timeout: Duration::from_millis(300), ..limits() }).await;
    let started = Instant::now();
    let o = common::call(&p, "sleep", json!({"ms": 60_000})).await;
    assert!(matches!(o.result, Err(CallError::Timeout { .. })), "{:?}", o.result);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn slow_upstream_is_bounded_by_the_deadline() {
    let server = common::TestServer::start().await;
    let host = format!("http://127.0.0.1:{}", server.port());
    let sandbox = common::sandbox();
    let grants = common::misbehave_grants(&[&host]).limits(Limits { timeout: Duration::from_millis(500), ..limits() });
    let p = common::load(&sandbox, "misbehave", grants).await;
    let started = Instant::now();
    let o = common::call(&p, "fetch", json!({"url": format!("{host}/slow")})).await;
    assert!(o.result.is_err(), "{:?}", o.result);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn environment_and_files_are_empty() {
    let p = misbehave(limits()).await;
    let env = common::call(&p, "read_env", json!({})).await.result.unwrap();
    assert_eq!(env["vars"], json!({}), "env leaked: {env}");
    assert_eq!(env["args"].as_array().map(|a| a.len()).unwrap_or(0), 0, "args leaked: {env}");
    for path in ["/etc/passwd", "/proc/self/environ", "Cargo.toml", "../../Cargo.toml"] {
        let f = common::call(&p, "read_file", json!({"path": path})).await.result.unwrap();
        assert_eq!(f["ok"], json!(false), "{path} was readable: {f}");
        assert!(f["content"].is_null());
        assert_ne!(f["listings"]["/"]["ok"], json!(true), "/ was listable: {f}");
    }
}

#[tokio::test]
async fn raw_sockets_are_refused() {
    let server = common::TestServer::start().await;
    let p = misbehave(limits()).await;
    let o = common::call(&p, "raw_tcp", json!({"addr": format!("127.0.0.1:{}", server.port())})).await.result.unwrap();
    assert_eq!(o["connected"], json!(false), "{o}");
    assert_eq!(o["std_connected"], json!(false), "{o}");
    assert!(server.hits().is_empty());
}

#[tokio::test]
async fn stdio_is_captured_and_capped() {
    let p = misbehave(Limits { stdio_bytes: 4096, ..limits() }).await;
    let o = common::call(&p, "print", json!({"bytes": 100_000})).await;
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert!(o.report.stdout.len() <= 4096 && o.report.stdout.len() > 1000, "stdout {}", o.report.stdout.len());
    assert!(o.report.stdio_truncated);
}

#[tokio::test]
async fn logs_are_capped() {
    let p = misbehave(Limits { log_lines: 10, log_line_bytes: 100, ..limits() }).await;
    let o = common::call(&p, "log_spam", json!({"count": 50, "bytes": 500})).await;
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(o.report.logs.len(), 10);
    assert_eq!(o.report.logs_dropped, 40);
    assert!(o.report.logs.iter().all(|l| l.message.len() < 130));
}

#[tokio::test]
async fn input_is_checked_before_the_call() {
    let p = misbehave(Limits { input_bytes: 64, ..limits() }).await;
    let o = common::call(&p, "burn", json!({"iterations": "many"})).await;
    assert!(
        matches!(&o.result, Err(CallError::InvalidInput { message }) if message.contains("/iterations")),
        "{:?}",
        o.result
    );
    assert_eq!(o.report.fuel_used, 0, "the guest must not run on invalid input");
    let o = p.call("burn", "{not json", &common::ctx("k")).await;
    assert!(matches!(o.result, Err(CallError::InputNotJson { .. })));
    let o = common::call(&p, "echo", json!({"x": "y".repeat(100)})).await;
    assert!(matches!(o.result, Err(CallError::InputTooLarge { limit: 64, .. })));
    let o = common::call(&p, "no_such_tool", json!({})).await;
    assert!(matches!(&o.result, Err(CallError::UnknownTool { available, .. }) if available.contains("spin")));
}

#[tokio::test]
async fn kv_is_scoped_and_capped() {
    let sandbox = common::sandbox();
    let l = Limits { kv_keys: 5, kv_value_bytes: 100, ..limits() };
    let p = common::load(&sandbox, "misbehave", common::misbehave_grants(&[]).limits(l)).await;
    let o = common::call(&p, "kv_roundtrip", json!({"key": "greeting", "value": "hello"})).await;
    assert_eq!(o.result.unwrap()["value"], json!("hello"));
    let o = common::call(&p, "kv_fill", json!({"count": 20, "bytes": 10})).await.result.unwrap();
    assert_eq!(o["stored"], json!(4), "{o}");
    assert!(o["error"].as_str().unwrap().contains("full"), "{o}");
    let o = common::call(&p, "kv_fill", json!({"count": 1, "bytes": 1000, "prefix": "big/"})).await.result.unwrap();
    assert_eq!(o["stored"], json!(0), "{o}");
}

#[tokio::test]
async fn secrets_are_granted_by_name_audited_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s");
    std::fs::write(&file, "very-secret-value-42").unwrap();
    let grants =
        common::misbehave_grants(&[]).secret("demo", tollgate_sandbox::SecretSource::File(file)).limits(limits());
    let p = common::load(&common::sandbox(), "misbehave", grants).await;
    let o = common::call(&p, "secret", json!({"name": "demo"})).await;
    assert_eq!(o.result.unwrap()["length"], json!(20));
    assert_eq!(o.report.secrets_read, vec!["demo"]);
    let o = common::call(&p, "secret", json!({"name": "other"})).await;
    assert!(o.result.is_err(), "ungranted secret must fail: {:?}", o.result);
    let o = common::call(&p, "leak_secret", json!({"name": "demo", "via": "all"})).await;
    let everything = format!("{:?} {}", o.result, serde_json::to_string(&o.report).unwrap());
    assert!(!everything.contains("very-secret-value-42"), "secret leaked: {everything}");
    assert!(everything.contains("[REDACTED:demo]"), "{everything}");
    let o = common::call(&p, "leak_secret", json!({"name": "demo", "via": "error"})).await;
    match &o.result {
        Err(CallError::Tool(ToolError::Internal { message })) => {
            assert!(message.contains("[REDACTED:demo]") && !message.contains("very-secret"), "{message}")
        }
        other => panic!("want the plugin's internal error, got {other:?}"),
    }
}

#[tokio::test]
async fn call_context_reaches_the_plugin() {
    let p = misbehave(limits()).await;
    let o = p.call("context", "{}", &common::ctx("run-1:step-2:call-0")).await.result.unwrap();
    assert_eq!(o["idempotency_key"], json!("run-1:step-2:call-0"));
    assert_eq!(o["run_id"], json!("test-run"));
}

#[tokio::test]
async fn kv_namespaces_belong_to_the_operator_not_the_plugin() {
    let sandbox = common::sandbox();
    let a = common::load(&sandbox, "misbehave", common::misbehave_grants(&[]).kv_namespace("team-a")).await;
    let b = common::load(&sandbox, "misbehave", common::misbehave_grants(&[]).kv_namespace("team-b")).await;
    common::call(&a, "kv_roundtrip", json!({"key": "k", "value": "from-a"})).await.result.unwrap();
    // Same plugin name, another namespace: b cannot see a's key (its roundtrip writes its own).
    let o = common::call(&b, "kv_roundtrip", json!({"key": "k", "value": "from-b"})).await.result.unwrap();
    assert_eq!(o["value"], json!("from-b"));
    let again = common::load(&sandbox, "misbehave", common::misbehave_grants(&[]).kv_namespace("team-a")).await;
    let o = common::call(&again, "kv_fill", json!({"count": 0, "bytes": 1})).await.result.unwrap();
    assert_eq!(o["stored"], json!(0));
}
