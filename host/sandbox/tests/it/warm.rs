//! Warm instances: guest state persists across the calls of one set and nowhere else; every
//! per-call limit and every part of the report stays per call; an instance that trapped or hit
//! a limit is never reused.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_sandbox::{
    CallContext, CallError, CallOutcome, Limits, Plugin, SecretSource, ToolError, Upstream, WarmInstances,
};

fn limits() -> Limits {
    Limits { timeout: Duration::from_secs(5), ..Limits::default() }
}

async fn misbehave(l: Limits) -> Plugin {
    common::load(&common::sandbox(), "misbehave", common::misbehave_grants(&[]).limits(l)).await
}

async fn call(warm: &WarmInstances, tool: &str, input: Value) -> CallOutcome {
    warm.call(tool, &input.to_string(), &common::ctx("k1")).await
}

/// The guest's counter after one more increment, and whether the call reused an instance.
async fn count(warm: &WarmInstances) -> (u64, bool) {
    let o = call(warm, "counter", json!({})).await;
    let v = o.result.unwrap_or_else(|e| panic!("counter: {e}"));
    (v["count"].as_u64().expect("count"), o.report.reused_instance)
}

#[tokio::test]
async fn state_persists_within_a_set_only() {
    let p = misbehave(limits()).await;
    let warm = p.warm_instances();
    assert_eq!(warm.idle(), 0, "nothing is instantiated before a call");
    assert_eq!(count(&warm).await, (1, false));
    assert_eq!(warm.idle(), 1);
    assert_eq!(count(&warm).await, (2, true));
    assert_eq!(count(&warm).await, (3, true));
    assert_eq!(warm.idle(), 1);

    // Fresh calls never see it, nor does another set of the same plugin.
    for _ in 0..2 {
        let o = common::call(&p, "counter", json!({})).await;
        assert_eq!(o.result.unwrap(), json!({"count": 1}));
        assert!(!o.report.reused_instance);
    }
    let other = p.warm_instances();
    assert_eq!(count(&other).await, (1, false));
    assert_eq!(count(&other).await, (2, true));
    assert_eq!(count(&warm).await, (4, true));

    // A tool error the guest returns itself keeps the instance.
    let o = call(&warm, "secret", json!({"name": "not-granted"})).await;
    assert!(matches!(o.result, Err(CallError::Tool(ToolError::Denied { .. }))), "{:?}", o.result);
    assert!(o.report.reused_instance);
    assert_eq!(count(&warm).await, (5, true));

    // Dropping the set drops its instances: a new set starts from nothing.
    drop(warm);
    assert_eq!(count(&p.warm_instances()).await, (1, false));
}

#[tokio::test]
async fn fuel_is_refilled_before_each_call() {
    let fuel = 40_000_000;
    let p = misbehave(Limits { fuel, ..limits() }).await;
    // Measure one burn, then size two calls at ~70% of the limit each: together they would
    // run out if the tank were not refilled.
    let probe = common::call(&p, "burn", json!({"iterations": 100_000})).await;
    assert!(probe.result.is_ok(), "{:?}", probe.result);
    let per_iteration = probe.report.fuel_used as f64 / 100_000.0;
    let iterations = (fuel as f64 * 0.7 / per_iteration) as u64;

    let warm = p.warm_instances();
    let first = call(&warm, "burn", json!({"iterations": iterations})).await;
    assert!(first.result.is_ok(), "{:?}", first.result);
    assert!(first.report.fuel_used > fuel / 2, "fuel used {}", first.report.fuel_used);
    let second = call(&warm, "burn", json!({"iterations": iterations})).await;
    assert!(second.result.is_ok(), "{:?}", second.result);
    assert!(second.report.reused_instance);
    assert!(second.report.fuel_used > fuel / 2 && second.report.fuel_used <= fuel);
    // fuel_used is this call's alone.
    let diff = first.report.fuel_used.abs_diff(second.report.fuel_used);
    assert!(diff < fuel / 20, "first {} second {}", first.report.fuel_used, second.report.fuel_used);
}

#[tokio::test]
async fn the_timeout_is_per_call() {
    let p = misbehave(Limits { timeout: Duration::from_millis(500), ..limits() }).await;
    let warm = p.warm_instances();
    // Together the calls outlast one timeout; each alone is well within it.
    for i in 0..3 {
        let o = call(&warm, "sleep", json!({"ms": 250})).await;
        assert!(o.result.is_ok(), "call {i}: {:?}", o.result);
        assert_eq!(o.report.reused_instance, i > 0);
    }
}

#[tokio::test]
async fn a_trapped_or_stopped_instance_is_not_reused() {
    let p = misbehave(Limits { fuel: 50_000_000, timeout: Duration::from_millis(400), ..limits() }).await;
    let warm = p.warm_instances();
    for (tool, input) in [
        ("panic", json!({})),
        ("burn", json!({"iterations": 1_000_000_000u64})),
        ("sleep", json!({"ms": 10_000})),
        ("recurse", json!({"depth": 100_000_000u64})),
        ("bad_output", json!({})),
    ] {
        assert_eq!(count(&warm).await, (1, false), "before {tool}");
        assert_eq!(count(&warm).await, (2, true), "before {tool}");
        let o = call(&warm, tool, input).await;
        let e = o.result.expect_err(tool);
        let expected = match tool {
            "panic" | "recurse" => matches!(e, CallError::Trap { .. } | CallError::StackOverflow),
            "burn" => matches!(e, CallError::FuelExhausted { .. }),
            "sleep" => matches!(e, CallError::Timeout { .. }),
            _ => matches!(e, CallError::InvalidOutput { .. }),
        };
        assert!(expected, "{tool}: {e:?}");
        assert!(o.report.reused_instance, "{tool} ran on the warm instance");
        assert_eq!(warm.idle(), 0, "{tool}: the instance was dropped");
    }
    // And the next call works on a fresh one.
    assert_eq!(count(&warm).await, (1, false));
}

#[tokio::test]
async fn a_refused_memory_grow_drops_the_instance_and_is_reported_once() {
    let p = misbehave(Limits { memory_bytes: 32 << 20, ..limits() }).await;
    let warm = p.warm_instances();
    assert_eq!(count(&warm).await, (1, false));
    let o = call(&warm, "alloc", json!({"mib": 256, "fallible": true})).await;
    assert_eq!(o.result, Err(CallError::MemoryLimit { limit: 32 << 20 }));
    assert!(o.report.memory_refused && o.report.reused_instance);
    assert_eq!(warm.idle(), 0);

    // On a reused instance, `memory_refused` is about this call only, and the peak is the
    // instance's.
    let grown = call(&warm, "alloc", json!({"mib": 8})).await;
    assert!(grown.result.is_ok() && !grown.report.reused_instance, "{:?}", grown.result);
    let next = call(&warm, "echo", json!({})).await;
    assert!(next.result.is_ok() && next.report.reused_instance);
    assert!(!next.report.memory_refused);
    assert!(next.report.peak_memory_bytes >= 8 << 20, "peak {}", next.report.peak_memory_bytes);
}

#[tokio::test]
async fn the_report_holds_only_this_call() {
    let server = common::TestServer::start().await;
    let host = format!("http://127.0.0.1:{}", server.port());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s");
    std::fs::write(&file, "very-secret-value-42").unwrap();
    let grants = common::misbehave_grants(&[&host])
        .secret("demo", SecretSource::File(file))
        .limits(Limits { stdio_bytes: 1000, ..limits() });
    let p = common::load(&common::sandbox(), "misbehave", grants).await;
    let warm = p.warm_instances();

    let a = call(&warm, "log_spam", json!({"count": 3, "bytes": 20})).await;
    assert_eq!(a.report.logs.len(), 3);
    let b = call(&warm, "fetch", json!({"url": format!("{host}/ok")})).await;
    assert_eq!(b.result.unwrap()["status"], json!(200));
    assert!(b.report.reused_instance);
    assert!(b.report.logs.is_empty(), "{:?}", b.report.logs);
    assert_eq!(b.report.egress.len(), 1);
    let c = call(&warm, "print", json!({"bytes": 800})).await;
    assert!(c.report.egress.is_empty(), "{:?}", c.report.egress);
    assert_eq!((c.report.stdout.len(), c.report.stderr.len()), (800, 800));
    // The stdio cap is per call too: a second 800 bytes fits again, and only it is reported.
    let d = call(&warm, "print", json!({"bytes": 800})).await;
    assert_eq!((d.report.stdout.len(), d.report.stderr.len()), (800, 800));
    assert!(!d.report.stdio_truncated);
    let e = call(&warm, "kv_roundtrip", json!({"key": "k", "value": "v"})).await;
    assert!(e.report.stdout.is_empty() && e.report.stderr.is_empty());
    assert_eq!(e.report.kv_ops, 2);
    let f = call(&warm, "leak_secret", json!({"name": "demo", "via": "all"})).await;
    assert_eq!(f.report.secrets_read, vec!["demo"]);
    assert_eq!(f.report.kv_ops, 0);
    let everything = format!("{:?} {}", f.result, serde_json::to_string(&f.report).unwrap());
    assert!(!everything.contains("very-secret-value-42") && everything.contains("[REDACTED:demo]"), "{everything}");
    let g = call(&warm, "echo", json!({})).await;
    assert!(g.report.reused_instance);
    assert!(g.report.secrets_read.is_empty() && g.report.stdout.is_empty() && g.report.logs.is_empty());

    // The guest sees each call's own context.
    let ctx = CallContext { run_id: "r2".into(), call_id: "c7".into(), idempotency_key: "r2:c7".into() };
    let o = warm.call("context", "{}", &ctx).await;
    assert!(o.report.reused_instance);
    assert_eq!(o.result.unwrap(), json!({"run_id": "r2", "call_id": "c7", "idempotency_key": "r2:c7"}));
    assert_eq!(o.report.call_id, "c7");
}

#[tokio::test]
async fn a_secret_kept_in_guest_memory_is_redacted_from_later_calls() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s");
    std::fs::write(&file, "kept-secret-value-77").unwrap();
    let grants = common::misbehave_grants(&[]).secret("demo", SecretSource::File(file)).limits(limits());
    let p = common::load(&common::sandbox(), "misbehave", grants).await;
    let warm = p.warm_instances();
    assert_eq!(call(&warm, "secret", json!({"name": "demo"})).await.result.unwrap(), json!({"length": 20}));
    // The next call reads no secret, but returns the one the guest kept.
    let o = call(&warm, "recall_secret", json!({})).await;
    assert!(o.report.reused_instance && o.report.secrets_read.is_empty());
    assert_eq!(o.result.unwrap(), json!({"value": "[REDACTED:demo]"}));
    // A fresh instance has nothing to recall.
    assert_eq!(common::call(&p, "recall_secret", json!({})).await.result.unwrap(), json!({"value": ""}));
}

#[tokio::test]
async fn credentials_are_read_at_each_call() {
    let server = common::TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-FIRST-111").unwrap();
    let grants = common::misbehave_grants(&["https://api.example.test"])
        .upstream("api.example.test", Upstream::parse(&format!("http://127.0.0.1:{}", server.port())).unwrap())
        .credential("api", SecretSource::File(token.clone()))
        .limits(limits());
    let p = common::load(&common::sandbox(), "misbehave", grants).await;
    let warm = p.warm_instances();
    let input = json!({"url": "https://api.example.test/ok"});
    let first = call(&warm, "fetch", input.clone()).await;
    assert_eq!(first.result.as_ref().unwrap()["status"], json!(200), "{:?}", first.result);
    std::fs::write(&token, "tok-SECOND-222").unwrap();
    let second = call(&warm, "fetch", input).await;
    assert!(second.report.reused_instance);
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].header("authorization"), Some("Bearer tok-FIRST-111"));
    assert_eq!(hits[1].header("authorization"), Some("Bearer tok-SECOND-222"));
    // The server echoes the headers: the rotated value is redacted in the second output.
    let out = second.result.unwrap().to_string();
    assert!(out.contains("[REDACTED:api]") && !out.contains("tok-SECOND-222"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_each_take_an_instance() {
    let p = misbehave(limits()).await;
    let warm = Arc::new(p.warm_instances());
    // Each call sleeps, so the two overlap and neither can find the other's instance idle.
    // Each call sleeps, so the two overlap and neither can find the other's instance idle.
    let round = |warm: Arc<WarmInstances>| async move {
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let warm = warm.clone();
                tokio::spawn(async move { warm.call("sleep", r#"{"ms":300}"#, &common::ctx(&format!("c{i}"))).await })
            })
            .collect();
        let mut reused = Vec::new();
        for t in tasks {
            let o = t.await.unwrap();
            assert!(o.result.is_ok(), "{:?}", o.result);
            reused.push(o.report.reused_instance);
        }
        reused
    };
    assert_eq!(round(warm.clone()).await, [false, false]);
    assert_eq!(warm.idle(), 2);
    // The next overlapping pair takes one idle instance each.
    assert_eq!(round(warm.clone()).await, [true, true]);
    assert_eq!(warm.idle(), 2);
}

#[tokio::test]
async fn plain_components_reuse_instances_too() {
    let l = Limits { fuel: 50_000_000, ..limits() };
    let p = common::load(&common::sandbox(), "plain", tollgate_sandbox::Grants::new().limits(l)).await;
    let warm = p.warm_instances();
    let greet = |name: &str| json!({"name": name}).to_string();
    let first = warm.call("greet", &greet("a"), &common::ctx("a")).await;
    let second = warm.call("greet", &greet("b"), &common::ctx("b")).await;
    assert_eq!((first.result.unwrap(), second.result.unwrap()), (json!("Hello, a."), json!("Hello, b.")));
    assert!(!first.report.reused_instance && second.report.reused_instance);
    // The function's own `err` keeps the instance; a trap drops it.
    let refused = warm.call("pricing_check_class", r#"{"class":"7"}"#, &common::ctx("c")).await;
    assert!(matches!(refused.result, Err(CallError::Tool(_))), "{:?}", refused.result);
    assert!(refused.report.reused_instance);
    assert_eq!(warm.idle(), 1);
    let crashed = warm.call("stress_crash", r#"{"message":"boom"}"#, &common::ctx("d")).await;
    assert!(matches!(crashed.result, Err(CallError::Trap { .. })), "{:?}", crashed.result);
    assert_eq!(warm.idle(), 0);
    let after = warm.call("greet", &greet("e"), &common::ctx("e")).await;
    assert_eq!(after.result.unwrap(), json!("Hello, e."));
    assert!(!after.report.reused_instance);
}
