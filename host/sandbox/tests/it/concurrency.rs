//! One call cannot affect another: well-behaved calls running at the same time as every kind
//! of misbehaviour return exactly their own results.

use crate::common;

use std::time::Duration;

use serde_json::json;
use tollgate_sandbox::{CallError, Limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaviour_does_not_touch_concurrent_calls() {
    let sandbox = common::sandbox();
    let limits = Limits {
        timeout: Duration::from_millis(1500),
        memory_bytes: 32 << 20,
        fuel: 3_000_000_000,
        ..Limits::default()
    };
    let bad = common::load(&sandbox, "misbehave", common::misbehave_grants(&[]).limits(limits)).await;
    let good = common::load(&sandbox, "echo", tollgate_sandbox::Grants::new()).await;

    let mut tasks = Vec::new();
    for (tool, input) in [
        ("spin", json!({})),
        ("alloc", json!({"mib": 512})),
        ("panic", json!({})),
        ("recurse", json!({"depth": 100_000_000u64})),
        ("sleep", json!({"ms": 60_000})),
        ("huge_output", json!({"bytes": 4_000_000})),
    ] {
        let bad = bad.clone();
        tasks.push(tokio::spawn(
            async move { (tool, bad.call(tool, &input.to_string(), &common::ctx(tool)).await.result) },
        ));
    }
    let mut good_tasks = Vec::new();
    for i in 0..40u64 {
        let good = good.clone();
        good_tasks.push(tokio::spawn(async move {
            let n = 10_000 + i;
            let r = good.call("slow_sum", &json!({"n": n}).to_string(), &common::ctx(&format!("g{i}"))).await.result;
            (n, r)
        }));
    }
    for t in good_tasks {
        let (n, r) = t.await.unwrap();
        assert_eq!(r.unwrap()["sum"], json!(n * (n - 1) / 2), "good call n={n} was disturbed");
    }
    for t in tasks {
        let (tool, r) = t.await.unwrap();
        let e = r.expect_err(tool);
        let expected = match tool {
            "spin" | "sleep" => matches!(e, CallError::Timeout { .. } | CallError::FuelExhausted { .. }),
            "alloc" => matches!(e, CallError::MemoryLimit { .. }),
            "panic" => matches!(e, CallError::Trap { .. }),
            "recurse" => matches!(e, CallError::StackOverflow | CallError::Trap { .. }),
            "huge_output" => matches!(e, CallError::OutputTooLarge { .. }),
            _ => false,
        };
        assert!(expected, "{tool}: unexpected {e:?}");
    }
    // And afterwards everything still works.
    let sum = good.call("add", r#"{"a":1,"b":2}"#, &common::ctx("after")).await.result.unwrap();
    assert_eq!(sum["sum"].as_f64(), Some(3.0), "{sum}");
}
