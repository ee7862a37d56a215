//! Agent-loop overhead per step, against the cost of the durability it buys.
//!
//! Run: `cargo bench -p tollgate-runtime --bench step_overhead` (needs `target/plugins/echo.wasm`,
//! built by `cargo xtask plugins`). Prints numbers; asserts only that every run completes with
//! the expected steps and tool results, never anything about speed. See BENCHMARKS.md.
//!
//! A workflow with one agent whose scripted model (replay) calls the pure `echo.echo` tool once
//! per turn for `STEPS - 1` turns and then answers without calls, over a `SqliteStore` (WAL,
//! `synchronous=FULL`, audit signer) in a temp dir. One step = model turn + gate + turn commit +
//! sandboxed call + result commit. Its floor is one fsync'd SQLite commit: `BEGIN IMMEDIATE`,
//! a small `INSERT`, `COMMIT`, through sqlx with the store's pragmas, in a second database in the
//! same directory. The two are measured rep by rep, interleaved with rotating order, in one
//! process. A timing wrapper around the store and an observer split a step into store commits,
//! store reads, the sandboxed call and the rest (the runtime's own work); the scripted
//! provider's `complete` is timed on its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tollgate_models::{ModelRequest, ModelSpec, ProviderOptions};
use tollgate_runtime::{Event, Observer, RunOptions, RunState, Runtime};
use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_store::{
    ApprovalFilter, ApprovalRecord, AuditCheckpoint, Commit, RunFilter, RunRecord, RunStatus, RunSummary, SealedRecord,
    Signer, SqliteStore, StepRecord, Store, StoreFuture, ToolCallRecord, ToolCallStatus,
};

/// Model turns per run: `STEPS - 1` with one echo call each, then a final answer.
const STEPS: usize = 200;
/// Interleaved reps of (agent run, baseline batch).
const REPS: usize = 7;
/// fsync'd commits per baseline batch.
const BASELINE_COMMITS: usize = 200;
/// Steps at either end of a run compared to see whether a step costs more as the run grows.
const EDGE: usize = 20;
/// The target of the issue: one step costs at most this many fsync'd commits.
const TARGET_RATIO: f64 = 3.0;

// ---------------------------------------------------------------------------------------------
// Statistics and helpers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Stats {
    p10: f64,
    median: f64,
    p90: f64,
    n: usize,
}

fn stats(mut v: Vec<f64>) -> Stats {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Stats { p10: q(0.1), median: q(0.5), p90: q(0.9), n: v.len() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn echo_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join("plugins").join("echo.wasm");
    if !path.exists() {
        eprintln!("{} is missing: run `cargo xtask plugins` first", path.display());
        std::process::exit(2);
    }
    path
}

// ---------------------------------------------------------------------------------------------
// The workflow and its script
// ---------------------------------------------------------------------------------------------

fn write_workflow(dir: &Path, echo: &Path) -> PathBuf {
    let workflow = format!(
        r#"name = "bench-steps"
version = "1.0.0"
entry = "worker"
goal = "Echo a greeting {calls} times, then say you are done."

[run]
max_steps = {max}
max_tool_calls = {max}
max_tokens = 100_000_000
deadline = "1h"

[plugins.echo]
source = "{echo}"

[agents.worker]
model = "scripted:turns.toml"
instructions = "Call echo once per turn until told otherwise."
tools = ["echo.echo"]
"#,
        calls = STEPS - 1,
        max = STEPS + 1,
        echo = echo.display(),
    );
    let mut turns = String::from("# Replayed model turns for the step-overhead benchmark: not a model.\n");
    for i in 0..STEPS - 1 {
        turns.push_str(&format!(
            "\n[[turns]]\nagent = \"worker\"\ntext = \"Step {i}: echo the greeting.\"\n\
             usage = {{ input_tokens = 100, output_tokens = 10 }}\n\
             [[turns.tool_calls]]\nname = \"echo__echo\"\ninput = {{ msg = \"hello\", step = {i} }}\n"
        ));
    }
    turns.push_str(
        "\n[[turns]]\nagent = \"worker\"\ntext = \"Done.\"\nusage = { input_tokens = 100, output_tokens = 2 }\n",
    );
    std::fs::write(dir.join("turns.toml"), turns).expect("write turns.toml");
    let path = dir.join("workflow.toml");
    std::fs::write(&path, workflow).expect("write workflow.toml");
    path
}

// ---------------------------------------------------------------------------------------------
// Timing wrappers: the store and an observer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct OpTime {
    count: u64,
    total: Duration,
}

/// Delegates to the SQLite store and adds up the wall time of each method.
struct TimedStore {
    inner: SqliteStore,
    ops: Mutex<BTreeMap<&'static str, OpTime>>,
}

impl TimedStore {
    fn timed<'a, T: Send + 'a>(&'a self, op: &'static str, fut: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let start = Instant::now();
            let out = fut.await;
            let took = start.elapsed();
            let mut ops = self.ops.lock().expect("op times");
            let entry = ops.entry(op).or_default();
            entry.count += 1;
            entry.total += took;
            out
        })
    }

    fn take(&self) -> BTreeMap<&'static str, OpTime> {
        std::mem::take(&mut *self.ops.lock().expect("op times"))
    }
}

impl Store for TimedStore {
    fn create_run<'a>(&'a self, run: &'a RunRecord, audit: &'a [tollgate_store::AuditEvent]) -> StoreFuture<'a, ()> {
        self.timed("create_run", self.inner.create_run(run, audit))
    }
    fn run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<RunRecord>> {
        self.timed("run", self.inner.run(id))
    }
    fn runs<'a>(&'a self, filter: &'a RunFilter) -> StoreFuture<'a, Vec<RunSummary>> {
        self.timed("runs", self.inner.runs(filter))
    }
    fn commit<'a>(&'a self, commit: Commit) -> StoreFuture<'a, ()> {
        self.timed("commit", self.inner.commit(commit))
    }
    fn steps<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<StepRecord>> {
        self.timed("steps", self.inner.steps(run_id))
    }
    fn tool_calls<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        self.timed("tool_calls", self.inner.tool_calls(run_id))
    }
    fn approval<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApprovalRecord>> {
        self.timed("approval", self.inner.approval(id))
    }
    fn approvals<'a>(&'a self, filter: &'a ApprovalFilter) -> StoreFuture<'a, Vec<ApprovalRecord>> {
        self.timed("approvals", self.inner.approvals(filter))
    }
    fn expire_approvals(&self, now: i64) -> StoreFuture<'_, Vec<ApprovalRecord>> {
        self.timed("expire_approvals", self.inner.expire_approvals(now))
    }
    fn cap_usage<'a>(&'a self, scope: &'a str, now: i64, window_ms: Option<i64>) -> StoreFuture<'a, i64> {
        self.timed("cap_usage", self.inner.cap_usage(scope, now, window_ms))
    }
    fn audit_records(&self, from: u64, limit: u32) -> StoreFuture<'_, Vec<SealedRecord>> {
        self.timed("audit_records", self.inner.audit_records(from, limit))
    }
    fn audit_checkpoints(&self) -> StoreFuture<'_, Vec<AuditCheckpoint>> {
        self.timed("audit_checkpoints", self.inner.audit_checkpoints())
    }
    fn kv_get<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.timed("kv_get", self.inner.kv_get(namespace, key))
    }
    fn kv_set<'a>(&'a self, namespace: &'a str, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        self.timed("kv_set", self.inner.kv_set(namespace, key, value))
    }
    fn kv_delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        self.timed("kv_delete", self.inner.kv_delete(namespace, key))
    }
    fn kv_list<'a>(&'a self, namespace: &'a str, prefix: &'a str, limit: u32) -> StoreFuture<'a, Vec<String>> {
        self.timed("kv_list", self.inner.kv_list(namespace, prefix, limit))
    }
    fn kv_count<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, u64> {
        self.timed("kv_count", self.inner.kv_count(namespace))
    }
}

/// Timestamps of the loop's events: when each model turn was in, and each sandboxed call.
#[derive(Default)]
struct Timeline {
    turns: Mutex<Vec<Instant>>,
    calls_started: Mutex<Vec<Instant>>,
    calls: Mutex<Vec<Duration>>,
}

impl Observer for Timeline {
    fn event(&self, event: &Event) {
        let now = Instant::now();
        match event {
            Event::ModelTurn { .. } => self.turns.lock().expect("timeline").push(now),
            Event::ToolStarted { .. } => self.calls_started.lock().expect("timeline").push(now),
            Event::ToolFinished { .. } => {
                if let Some(start) = self.calls_started.lock().expect("timeline").pop() {
                    self.calls.lock().expect("timeline").push(now - start);
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The two subjects
// ---------------------------------------------------------------------------------------------

/// One agent run, start to completion.
struct RunSample {
    total: Duration,
    /// Median time between consecutive model turns among the first and the last [`EDGE`] steps.
    first_steps: f64,
    last_steps: f64,
    sandbox: Duration,
    ops: BTreeMap<&'static str, OpTime>,
}

async fn agent_run(runtime: &Runtime, store: &TimedStore) -> RunSample {
    store.take();
    let timeline = Timeline::default();
    let start = Instant::now();
    let run_id = runtime.start(None).await.expect("run starts");
    let outcome = runtime.advance(&run_id, &timeline).await.expect("run advances");
    let total = start.elapsed();
    let ops = store.take();

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.detail);
    assert_eq!(outcome.output.as_deref(), Some("Done."));
    let calls = store.inner.tool_calls(&run_id).await.expect("tool calls");
    assert_eq!(calls.len(), STEPS - 1);
    for (i, call) in calls.iter().enumerate() {
        assert_eq!(call.status, ToolCallStatus::Done);
        let want = serde_json::json!({"output": {"msg": "hello", "step": i}});
        assert_eq!(call.result.as_ref(), Some(&want), "call {i}");
    }

    let turns = timeline.turns.into_inner().expect("timeline");
    assert_eq!(turns.len(), STEPS);
    let gaps: Vec<f64> = turns.windows(2).map(|w| ms(w[1] - w[0])).collect();
    let calls = timeline.calls.into_inner().expect("timeline");
    assert_eq!(calls.len(), STEPS - 1);
    RunSample {
        total,
        first_steps: stats(gaps[..EDGE].to_vec()).median,
        last_steps: stats(gaps[gaps.len() - EDGE..].to_vec()).median,
        sandbox: calls.iter().sum(),
        ops,
    }
}

/// A second database with the store's pragmas and one small table.
async fn baseline_pool(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.expect("baseline db");
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL) STRICT",
    )
    .execute(&pool)
    .await
    .expect("baseline table");
    pool
}

/// Milliseconds per commit of each of `BASELINE_COMMITS` commits.
async fn baseline_batch(pool: &SqlitePool, next: &mut i64) -> Vec<f64> {
    let mut out = Vec::with_capacity(BASELINE_COMMITS);
    for _ in 0..BASELINE_COMMITS {
        let start = Instant::now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        sqlx::query("INSERT INTO events (at, body) VALUES (?1, ?2)")
            .bind(*next)
            .bind(r#"{"kind":"bench","n":1}"#)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        out.push(ms(start.elapsed()));
        *next += 1;
    }
    out
}

/// Microseconds per `complete` of the scripted provider, on the request of the run's middle turn.
async fn scripted_model(runtime: &Runtime, state: &RunState, dir: &Path) -> Stats {
    let spec: ModelSpec = "scripted:turns.toml".parse().expect("spec");
    let provider = tollgate_models::connect(&spec, &ProviderOptions::new(dir)).expect("scripted provider");
    let agent = &runtime.workflow().workflow.agents["worker"];
    let tools = runtime.catalogue().tools_matching(&agent.tools);
    let mid = STEPS / 2;
    // The conversation as the model saw it at the middle turn: goal, then (turn, result) pairs.
    let messages = state.conversations["worker"][..1 + 2 * mid].to_vec();
    let request = ModelRequest {
        agent: "worker".into(),
        turn_index: mid as u32,
        system: agent.instructions.clone(),
        messages,
        tools: runtime.catalogue().model_tools(&tools, &[]),
        max_output_tokens: 4096,
    };
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let start = Instant::now();
        let turn = provider.complete(&request).await.expect("scripted turn");
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(turn.tool_calls.len(), 1);
    }
    stats(samples)
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let echo = echo_path();
    let dir = tempfile::tempdir().expect("temp dir");
    let workflow_path = write_workflow(dir.path(), &echo);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    println!(
        "step_overhead: {STEPS} steps per run ({} echo calls + final answer), {REPS} reps, {} CPUs, data in {}",
        STEPS - 1,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display()
    );

    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox starts");
    let (runtime, store, pool) = rt.block_on(async {
        let signer = Signer::load_or_create(&dir.path().join("audit-signing.key")).expect("signing key");
        let inner = SqliteStore::open(&dir.path().join("tollgate.db"), Some(signer)).await.expect("store opens");
        let store = Arc::new(TimedStore { inner, ops: Mutex::new(BTreeMap::new()) });
        let workflow = tollgate_workflow::load(&workflow_path).unwrap_or_else(|d| panic!("workflow: {d}"));
        let runtime =
            Runtime::open(store.clone(), &sandbox, workflow, RunOptions::default()).await.expect("runtime opens");
        let pool = baseline_pool(&dir.path().join("baseline.db")).await;
        (runtime, store, pool)
    });

    println!("\nwarm-up: one run, {BASELINE_COMMITS} baseline commits…");
    let mut next = 0i64;
    rt.block_on(async {
        agent_run(&runtime, &store).await;
        baseline_batch(&pool, &mut next).await;
    });

    println!("\n[1] {REPS} interleaved reps of (one run of {STEPS} steps, {BASELINE_COMMITS} fsync'd commits)…");
    let mut runs = Vec::new();
    let mut commits: Vec<f64> = Vec::new();
    let mut ratios = Vec::new();
    for rep in 0..REPS {
        let (run, batch) = rt.block_on(async {
            if rep % 2 == 0 {
                let run = agent_run(&runtime, &store).await;
                (run, baseline_batch(&pool, &mut next).await)
            } else {
                let batch = baseline_batch(&pool, &mut next).await;
                (agent_run(&runtime, &store).await, batch)
            }
        });
        let step = ms(run.total) / STEPS as f64;
        let commit = stats(batch.clone()).median;
        println!(
            "  rep {rep}: {step:.3} ms/step (first {EDGE} steps {:.3}, last {EDGE} {:.3}), commit median {commit:.3} ms, ratio {:.2}",
            run.first_steps,
            run.last_steps,
            step / commit
        );
        ratios.push(step / commit);
        commits.extend(batch);
        runs.push(run);
    }

    let per_step = |f: &dyn Fn(&RunSample) -> f64| stats(runs.iter().map(f).collect());
    let op = |r: &RunSample, names: &[&str]| -> (f64, f64) {
        let picked = r.ops.iter().filter(|(k, _)| names.contains(k));
        let (count, total) = picked.fold((0u64, Duration::ZERO), |(c, t), (_, o)| (c + o.count, t + o.total));
        (count as f64 / STEPS as f64, ms(total) / STEPS as f64)
    };
    const WRITES: &[&str] = &["commit", "create_run"];
    const READS: &[&str] = &["run", "tool_calls", "approvals", "expire_approvals", "cap_usage"];
    let step = per_step(&|r| ms(r.total) / STEPS as f64);
    let commit = stats(commits);
    let ratio = step.median / commit.median;
    let writes = per_step(&|r| op(r, WRITES).1);
    let commits_per_step = per_step(&|r| op(r, WRITES).0);
    let reads = per_step(&|r| op(r, READS).1);
    let reads_per_step = per_step(&|r| op(r, READS).0);
    let sandbox_call = per_step(&|r| ms(r.sandbox) / (STEPS - 1) as f64);
    let rest = per_step(&|r| {
        (ms(r.total) - ms(r.sandbox) - ms(r.ops.values().map(|o| o.total).sum::<Duration>())) / STEPS as f64
    });
    let first = per_step(&|r| r.first_steps);
    let last = per_step(&|r| r.last_steps);

    println!("\n  store time per method over all reps:");
    let mut all: BTreeMap<&str, OpTime> = BTreeMap::new();
    for r in &runs {
        for (k, v) in &r.ops {
            let e = all.entry(k).or_default();
            e.count += v.count;
            e.total += v.total;
        }
    }
    let total_steps = (STEPS * runs.len()) as f64;
    for (k, v) in &all {
        println!(
            "    {k:<18} {:>5.2} calls/step  {:>8.1} µs/call  {:>7.3} ms/step",
            v.count as f64 / total_steps,
            v.total.as_secs_f64() * 1e6 / v.count as f64,
            ms(v.total) / total_steps
        );
    }

    let model = rt.block_on(async {
        let last_run = runtime.store().runs(&RunFilter { status: None, limit: Some(1) }).await.expect("runs");
        let run = runtime.store().run(&last_run[0].id).await.expect("run").expect("run exists");
        let state: RunState = serde_json::from_value(run.checkpoint).expect("checkpoint");
        println!(
            "\n  checkpoint JSON at the end of a run: {} bytes (written twice per step)",
            serde_json::to_string(&state).expect("json").len()
        );
        scripted_model(&runtime, &state, dir.path()).await
    });

    let db_bytes: u64 = ["tollgate.db", "tollgate.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    drop(runtime);
    rt.block_on(async {
        store.inner.close().await;
        pool.close().await;
    });

    let verdict = if ratio <= TARGET_RATIO { "met" } else { "NOT met" };
    let line = |what: &str, s: &Stats, target: &str| {
        println!("| {what:<46} | {:>9.3} | {:>9.3} | {:>9.3} | {target:<15} |", s.median, s.p10, s.p90)
    };
    println!("\n== summary (median, p10, p90 over {REPS} reps; the commit over every commit) ==");
    println!("| {:<46} | {:>9} | {:>9} | {:>9} | {:<15} |", "measurement", "median", "p10", "p90", "target");
    println!("|{:-<48}|{:-<11}|{:-<11}|{:-<11}|{:-<17}|", "", "", "", "", "");
    line(&format!("agent step, {STEPS}-step run (ms)"), &step, "");
    line(&format!("one fsync'd SQLite commit (ms, n={})", commit.n), &commit, "");
    println!(
        "| {:<46} | {ratio:>9.2} | {:>9.2} | {:>9.2} | {:<15} |",
        "ratio step / commit (p10/p90: per rep)",
        stats(ratios.clone()).p10,
        stats(ratios).p90,
        format!("≤ {TARGET_RATIO}: {verdict}")
    );
    line("  store writes per step (commits)", &commits_per_step, "");
    line("  store write time per step (ms)", &writes, "");
    line("  store reads per step (queries)", &reads_per_step, "");
    line("  store read time per step (ms)", &reads, "");
    line("  sandboxed echo call (ms)", &sandbox_call, "");
    line("  rest: runtime's own work per step (ms)", &rest, "");
    line(&format!("step time, first {EDGE} steps of a run (ms)"), &first, "");
    line(&format!("step time, last {EDGE} steps of a run (ms)"), &last, "");
    line("scripted model complete, mid-run request (µs)", &model, "");
    println!("store files after {} runs: {:.1} MiB", REPS + 1, db_bytes as f64 / (1 << 20) as f64);
}
