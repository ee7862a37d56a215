//! Cap windows (checked inside the commit) and the plugin kv.

use crate::common::*;
use tollgate_store::{CapCharge, Commit, Store, StoreError};

const HOUR: i64 = 3_600_000;
const WEEK: i64 = 7 * 24 * HOUR;

fn charge(scope: &str, run_id: &str, amount: i64, at: i64, limit: i64, window_ms: Option<i64>) -> CapCharge {
    CapCharge { scope: scope.into(), run_id: run_id.into(), amount, at, limit, window_ms }
}

async fn try_charge(store: &impl Store, c: CapCharge) -> Result<(), StoreError> {
    store.commit(Commit { cap_charges: vec![c], ..Commit::default() }).await
}

async fn setup(dir: &std::path::Path) -> tollgate_store::SqliteStore {
    let store = open(dir).await;
    for id in ["r1", "r2"] {
        store.create_run(&run(id, 1_000), &[]).await.unwrap();
    }
    store
}

#[tokio::test]
async fn rate_over_an_hour_counts_exactly_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    let rate = |amount, at| charge("rate:email.send_email", "r1", amount, at, 3, Some(HOUR));
    let t = 10 * HOUR;
    for at in [t, t + 1, t + 2] {
        try_charge(&store, rate(1, at)).await.unwrap();
    }
    let err = try_charge(&store, rate(1, t + 3)).await.unwrap_err();
    assert!(matches!(err, StoreError::CapExceeded { used: 3, amount: 1, limit: 3, .. }), "{err:?}");
    // The window is [at - 1h, at], both ends included: at t + 1h the charge at t still counts.
    assert!(try_charge(&store, rate(1, t + HOUR)).await.is_err());
    assert_eq!(store.cap_usage("rate:email.send_email", t + HOUR, Some(HOUR)).await.unwrap(), 3);
    // One millisecond later it has left the window.
    assert_eq!(store.cap_usage("rate:email.send_email", t + HOUR + 1, Some(HOUR)).await.unwrap(), 2);
    try_charge(&store, rate(1, t + HOUR + 1)).await.unwrap();
    // Another scope is another counter.
    try_charge(&store, charge("rate:crm.create", "r1", 3, t, 3, Some(HOUR))).await.unwrap();
}

#[tokio::test]
async fn frequency_over_a_week_spans_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    let scope = "freq:email.send_email:ana@example.com";
    try_charge(&store, charge(scope, "r1", 1, 5 * WEEK, 2, Some(WEEK))).await.unwrap();
    try_charge(&store, charge(scope, "r2", 1, 5 * WEEK + 10, 2, Some(WEEK))).await.unwrap();
    let err = try_charge(&store, charge(scope, "r2", 1, 6 * WEEK - 1, 2, Some(WEEK))).await.unwrap_err();
    assert!(matches!(err, StoreError::CapExceeded { used: 2, .. }), "{err:?}");
    // A week and a millisecond after the first, one slot is free again.
    try_charge(&store, charge(scope, "r2", 1, 6 * WEEK + 1, 2, Some(WEEK))).await.unwrap();
    assert_eq!(store.cap_usage(scope, 6 * WEEK + 1, Some(WEEK)).await.unwrap(), 2);
    assert_eq!(store.cap_usage(scope, 6 * WEEK + 1, None).await.unwrap(), 3);
}

#[tokio::test]
async fn per_run_spend_without_window_allows_exactly_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    let spend = |run: &str, amount, at| charge(&format!("spend:{run}"), run, amount, at, 100, None);
    try_charge(&store, spend("r1", 60, 1_000)).await.unwrap();
    // 60 + 40 = 100 = limit: allowed. Years later still counted: no window.
    try_charge(&store, spend("r1", 40, 100 * WEEK)).await.unwrap();
    let err = try_charge(&store, spend("r1", 1, 200 * WEEK)).await.unwrap_err();
    assert!(matches!(err, StoreError::CapExceeded { used: 100, amount: 1, limit: 100, .. }), "{err:?}");
    // Another run's spend is its own.
    try_charge(&store, spend("r2", 100, 1_000)).await.unwrap();
    assert_eq!(store.cap_usage("spend:r1", 200 * WEEK, None).await.unwrap(), 100);
    assert_eq!(store.cap_usage("spend:none", 200 * WEEK, None).await.unwrap(), 0);
}

#[tokio::test]
async fn charges_of_one_commit_count_against_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    let c = |amount| charge("spend:r1", "r1", amount, 1_000, 10, None);
    let err = store.commit(Commit { cap_charges: vec![c(6), c(5)], ..Commit::default() }).await.unwrap_err();
    assert!(matches!(err, StoreError::CapExceeded { used: 6, amount: 5, .. }), "{err:?}");
    // The first charge was rolled back with the rest.
    assert_eq!(store.cap_usage("spend:r1", 1_000, None).await.unwrap(), 0);
    store.commit(Commit { cap_charges: vec![c(6), c(4)], ..Commit::default() }).await.unwrap();
    assert_eq!(store.cap_usage("spend:r1", 1_000, None).await.unwrap(), 10);
}

#[tokio::test]
async fn a_cap_cannot_be_passed_by_racing_handles() {
    let dir = tempfile::tempdir().unwrap();
    let first = setup(dir.path()).await;
    let second = open(dir.path()).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        tasks.push(tokio::spawn(async move {
            try_charge(&store, charge("rate:email.send_email", "r1", 1, 1_000, 4, Some(HOUR))).await
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(StoreError::CapExceeded { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(allowed, 4);
    assert_eq!(first.cap_usage("rate:email.send_email", 2_000, Some(HOUR)).await.unwrap(), 4);
}

#[tokio::test]
async fn a_charge_stamped_later_by_another_process_counts_for_an_earlier_clock() {
    let dir = tempfile::tempdir().unwrap();
    let first = setup(dir.path()).await;
    let second = open(dir.path()).await;
    let scope = "freq:email.send_email:ana@example.com";
    // The first process took its time a millisecond after the second, and committed first.
    try_charge(&first, charge(scope, "r1", 1, 5 * WEEK + 1, 1, Some(WEEK))).await.unwrap();
    let err = try_charge(&second, charge(scope, "r2", 1, 5 * WEEK, 1, Some(WEEK))).await.unwrap_err();
    assert!(matches!(err, StoreError::CapExceeded { used: 1, .. }), "{err:?}");
    assert_eq!(second.cap_usage(scope, 5 * WEEK, Some(WEEK)).await.unwrap(), 1);
}

const CAP_CHILD_DIR: &str = "TOLLGATE_STORE_CAP_CHILD_DIR";
const CAP_CHILD_AT: &str = "TOLLGATE_STORE_CAP_CHILD_AT";

/// Run only as a child of `processes_charging_at_once_never_pass_a_frequency_cap`: one charge
/// of the shared cap, reported on stdout.
#[tokio::test]
#[ignore = "child process of processes_charging_at_once_never_pass_a_frequency_cap"]
async fn cap_child() {
    let (Some(dir), Some(at)) = (std::env::var_os(CAP_CHILD_DIR), std::env::var(CAP_CHILD_AT).ok()) else { return };
    let store = open(std::path::Path::new(&dir)).await;
    let at: i64 = at.parse().unwrap();
    match try_charge(&store, charge("freq:email.send_email:ana@example.com", "r1", 1, at, 1, Some(WEEK))).await {
        Ok(()) => println!("charged"),
        Err(StoreError::CapExceeded { .. }) => println!("refused"),
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn processes_charging_at_once_never_pass_a_frequency_cap() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path()).await.close().await;
    // Eight processes, each with its own idea of "now" (clocks a few ms apart), charge a cap
    // of one send per week to the same recipient at once.
    let children: Vec<_> = (0..8i64)
        .map(|i| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["caps_kv::cap_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
                .env(CAP_CHILD_DIR, dir.path())
                .env(CAP_CHILD_AT, (5 * WEEK + (i * 5) % 8).to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut charged = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("charged") || text.contains("refused"), "{text}");
        charged += usize::from(text.contains("charged"));
    }
    assert_eq!(charged, 1, "a cap of 1 let {charged} sends through");
    let store = open(dir.path()).await;
    assert_eq!(store.cap_usage("freq:email.send_email:ana@example.com", 5 * WEEK, Some(WEEK)).await.unwrap(), 1);
}

#[tokio::test]
async fn kv_is_per_namespace_and_lists_sorted_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    assert_eq!(store.kv_get("a", "k").await.unwrap(), None);
    for key in ["user:2", "user:10", "user:1", "order:1", "user_x", "user%", "users"] {
        store.kv_set("a", key, key.as_bytes()).await.unwrap();
    }
    store.kv_set("b", "user:1", b"other namespace").await.unwrap();
    store.kv_set("a", "user:1", b"overwritten").await.unwrap();

    assert_eq!(store.kv_get("a", "user:1").await.unwrap().as_deref(), Some(&b"overwritten"[..]));
    assert_eq!(store.kv_get("b", "user:1").await.unwrap().as_deref(), Some(&b"other namespace"[..]));
    assert_eq!(store.kv_count("a").await.unwrap(), 7);
    assert_eq!(store.kv_count("b").await.unwrap(), 1);
    assert_eq!(store.kv_list("a", "user:", 100).await.unwrap(), ["user:1", "user:10", "user:2"]);
    assert_eq!(store.kv_list("a", "user:", 2).await.unwrap(), ["user:1", "user:10"]);
    // `%` and `_` are plain characters, not patterns.
    assert_eq!(store.kv_list("a", "user_", 100).await.unwrap(), ["user_x"]);
    assert_eq!(store.kv_list("a", "user%", 100).await.unwrap(), ["user%"]);
    assert_eq!(store.kv_list("a", "", 100).await.unwrap().len(), 7);
    assert!(store.kv_list("c", "", 100).await.unwrap().is_empty());

    store.kv_delete("a", "user:1").await.unwrap();
    store.kv_delete("a", "never-there").await.unwrap();
    assert_eq!(store.kv_get("a", "user:1").await.unwrap(), None);
    assert_eq!(store.kv_count("a").await.unwrap(), 6);
    assert_eq!(store.kv_get("b", "user:1").await.unwrap().as_deref(), Some(&b"other namespace"[..]));
    // Empty values and non-UTF-8 bytes round-trip.
    store.kv_set("a", "empty", b"").await.unwrap();
    store.kv_set("a", "bin", &[0, 255, 10]).await.unwrap();
    assert_eq!(store.kv_get("a", "empty").await.unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(store.kv_get("a", "bin").await.unwrap().as_deref(), Some(&[0u8, 255, 10][..]));
}
