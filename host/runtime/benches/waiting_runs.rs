//! Memory of runs waiting for approval: what 1,000 runs waiting for a human cost one process.
//!
//! Run: `cargo bench -p tollgate-runtime --bench waiting_runs` (needs `target/plugins/echo.wasm`,
//! built by `cargo xtask plugins`). Prints numbers; asserts only that every run really waited for approval
//! and really completed after its approval, never anything about memory or speed. See
//! BENCHMARKS.md.
//!
//! One process, one `Runtime` over a `SqliteStore` (WAL, `synchronous=FULL`, audit signer) in a
//! temp dir. The workflow's agent (scripted model, replay) calls `echo.echo` first, and a policy
//! rule requires approval for it, so every run waits for approval (`waiting_approval`) after its first turn.
//! `RUNS` runs are started and advanced until they wait for approval, one after another; RSS (`VmRSS`) is read
//! before and after, with `VmHWM`. Then every approval is granted and every run resumed to
//! completion, which proves the runs waited with everything they need in the store.

mod common;
use common::echo_path;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tollgate_runtime::{Quiet, RunOptions, Runtime};
use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_store::{ApprovalFilter, ApprovalStatus, RunFilter, RunStatus, Signer, SqliteStore, Store};

/// Runs waiting for approval at once.
const RUNS: usize = 1000;
/// The issue's target for the whole process with `RUNS` runs waiting.
const TARGET_RSS_MIB: f64 = 150.0;
/// Runs at either end compared to see whether waiting or resuming slows as runs accumulate.
const EDGE: usize = 100;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `(VmRSS, VmHWM)` in MiB, from `/proc/self/status`.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
        let kib: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
        kib / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn files_mib(dir: &Path) -> (f64, f64) {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64;
    (size("tollgate.db"), size("tollgate.db-wal"))
}

fn write_workflow(dir: &Path, echo: &Path) -> PathBuf {
    let workflow = format!(
        r#"name = "bench-waiting"
version = "1.0.0"
entry = "worker"
goal = "Echo the greeting once a human agrees, then report."

[run]
approval_expiry = "24h"

[plugins.echo]
source = "{echo}"

[agents.worker]
model = "scripted:turns.toml"
instructions = "Echo the greeting, then say what came back."
tools = ["echo.echo"]

[[policy.approvals]]
tool = "echo.echo"
action = "require_approval"
reason = "Every echo needs a human (benchmark)."
"#,
        echo = echo.display(),
    );
    let turns = r#"# Replayed model turns for the waiting-runs benchmark: not a model.
[[turns]]
agent = "worker"
text = "I will echo the greeting."
usage = { input_tokens = 120, output_tokens = 20 }
[[turns.tool_calls]]
name = "echo__echo"
input = { msg = "hello", to = "team@example.com" }

[[turns]]
agent = "worker"
text = "The echo came back unchanged."
usage = { input_tokens = 160, output_tokens = 10 }
"#;
    std::fs::write(dir.join("turns.toml"), turns).expect("write turns.toml");
    let path = dir.join("workflow.toml");
    std::fs::write(&path, workflow).expect("write workflow.toml");
    path
}

fn main() {
    let echo = echo_path();
    let dir = tempfile::tempdir().expect("temp dir");
    let workflow_path = write_workflow(dir.path(), &echo);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    println!("waiting_runs: {RUNS} runs, data in {}", dir.path().display());

    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox starts");
    let (runtime, store) = rt.block_on(async {
        let signer = Signer::load_or_create(&dir.path().join("audit-signing.key")).expect("signing key");
        let store = SqliteStore::open(&dir.path().join("tollgate.db"), Some(signer)).await.expect("store opens");
        let workflow = tollgate_workflow::load(&workflow_path).unwrap_or_else(|d| panic!("workflow: {d}"));
        let runtime = Runtime::open(Arc::new(store.clone()), &sandbox, workflow, RunOptions::default())
            .await
            .expect("runtime opens");
        (runtime, store)
    });

    // One run through the whole path first, so the baseline includes what any first run
    // allocates once (provider, compiled policy, connection caches, the first instance).
    rt.block_on(async {
        let id = runtime.start(None).await.expect("warm-up run starts");
        let waiting = runtime.advance(&id, &Quiet).await.expect("warm-up advances");
        assert_eq!(waiting.status, RunStatus::WaitingApproval);
        runtime.approve(&waiting.pending_approvals[0].id, "bench", None).await.expect("warm-up approved");
        let done = runtime.advance(&id, &Quiet).await.expect("warm-up resumes");
        assert_eq!(done.status, RunStatus::Completed, "{:?}", done.detail);
    });

    let (rss_before, hwm_before) = rss_mib();
    println!("\nbefore: VmRSS {rss_before:.1} MiB, VmHWM {hwm_before:.1} MiB");

    println!("[1] starting {RUNS} runs, each advanced until it waits for approval…");
    let mut wait_ms = Vec::with_capacity(RUNS);
    let start = Instant::now();
    let ids: Vec<String> = rt.block_on(async {
        let mut ids = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let one = Instant::now();
            let id = runtime.start(None).await.expect("run starts");
            let outcome = runtime.advance(&id, &Quiet).await.expect("run advances");
            assert_eq!(outcome.status, RunStatus::WaitingApproval, "{:?}", outcome.detail);
            assert_eq!(outcome.pending_approvals.len(), 1);
            wait_ms.push(one.elapsed().as_secs_f64() * 1e3);
            ids.push(id);
        }
        ids
    });
    let wait_time = start.elapsed();
    let (rss_waiting, hwm_waiting) = rss_mib();
    let (db_waiting, wal_waiting) = files_mib(dir.path());

    let (waiting, pending) = rt.block_on(async {
        let filter = RunFilter { status: Some(RunStatus::WaitingApproval), limit: None, ..RunFilter::default() };
        let waiting = store.runs(&filter).await.expect("runs");
        let pending = store
            .approvals(&ApprovalFilter {
                status: Some(ApprovalStatus::Pending),
                run_id: None,
                ..ApprovalFilter::default()
            })
            .await
            .expect("approvals");
        (waiting.len(), pending)
    });
    assert_eq!(waiting, RUNS);
    assert_eq!(pending.len(), RUNS);
    println!(
        "  {waiting} runs waiting for approval after {:.1} s ({:.1} ms per run); VmRSS {rss_waiting:.1} MiB, VmHWM {hwm_waiting:.1} MiB",
        wait_time.as_secs_f64(),
        wait_time.as_secs_f64() * 1e3 / RUNS as f64
    );

    println!("[2] approving all {RUNS} and resuming each to completion…");
    let mut resume_ms = Vec::with_capacity(RUNS);
    let start = Instant::now();
    let completed = rt.block_on(async {
        for approval in &pending {
            runtime.approve(&approval.id, "bench", None).await.expect("approve");
        }
        let mut completed = 0usize;
        for id in &ids {
            let one = Instant::now();
            let outcome = runtime.advance(id, &Quiet).await.expect("resume");
            resume_ms.push(one.elapsed().as_secs_f64() * 1e3);
            assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.detail);
            assert_eq!(outcome.output.as_deref(), Some("The echo came back unchanged."));
            completed += 1;
        }
        completed
    });
    let resume_time = start.elapsed();
    let (rss_done, hwm_done) = rss_mib();
    let done_in_store = rt.block_on(async {
        let filter = RunFilter { status: Some(RunStatus::Completed), limit: None, ..RunFilter::default() };
        store.runs(&filter).await.expect("runs").len()
    });
    // The warm-up run completed too.
    assert_eq!(done_in_store, RUNS + 1);
    let (db_done, wal_done) = files_mib(dir.path());
    println!(
        "  completed {completed} runs in {:.1} s ({:.1} ms per approve + resume); VmRSS {rss_done:.1} MiB",
        resume_time.as_secs_f64(),
        resume_time.as_secs_f64() * 1e3 / RUNS as f64
    );

    drop(runtime);
    rt.block_on(store.close());
    let (db_closed, _) = files_mib(dir.path());

    let verdict = if rss_waiting <= TARGET_RSS_MIB { "met" } else { "NOT met" };
    let per_run_kib = (rss_waiting - rss_before) * 1024.0 / RUNS as f64;
    let row = |what: &str, value: String, target: &str| println!("| {what:<44} | {value:>16} | {target:<18} |");
    println!("\n== summary ==");
    println!("| {:<44} | {:>16} | {:<18} |", "measurement", "value", "target");
    println!("|{:-<46}|{:-<18}|{:-<20}|", "", "", "");
    row("VmRSS before (runtime open, one run done)", format!("{rss_before:.1} MiB"), "");
    row(
        &format!("VmRSS with {RUNS} runs waiting"),
        format!("{rss_waiting:.1} MiB"),
        &format!("≤ {TARGET_RSS_MIB} MiB: {verdict}"),
    );
    row("VmRSS growth per waiting run", format!("{per_run_kib:.2} KiB"), "");
    row("VmHWM (peak) with runs waiting", format!("{hwm_waiting:.1} MiB"), "");
    row("VmRSS after all completed", format!("{rss_done:.1} MiB"), "");
    row("VmHWM at the end", format!("{hwm_done:.1} MiB"), "");
    row("wait: start + advance, per run", format!("{:.2} ms", wait_time.as_secs_f64() * 1e3 / RUNS as f64), "");
    row(
        "approve + resume to completion, per run",
        format!("{:.2} ms", resume_time.as_secs_f64() * 1e3 / RUNS as f64),
        "",
    );
    let edge = |v: &[f64], last: bool| {
        let part = if last { &v[v.len() - EDGE..] } else { &v[..EDGE] };
        format!("{:.2} ms", median(part.to_vec()))
    };
    row(&format!("wait, median of the first {EDGE} runs"), edge(&wait_ms, false), "");
    row(&format!("wait, median of the last {EDGE} runs"), edge(&wait_ms, true), "");
    row(&format!("resume after approval, median of first {EDGE}"), edge(&resume_ms, false), "");
    row(&format!("resume after approval, median of last {EDGE}"), edge(&resume_ms, true), "");
    row("runs completed after approval", format!("{completed}/{RUNS}"), "");
    row("store with runs waiting: db + wal", format!("{db_waiting:.2} + {wal_waiting:.2} MiB"), "");
    row("store at the end: db + wal", format!("{db_done:.2} + {wal_done:.2} MiB"), "");
    row("store after close (wal folded in)", format!("{db_closed:.2} MiB"), "");
}
