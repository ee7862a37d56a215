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
//! a small `INSERT`, `COMMIT`, through sqlx with the store's pragmas, in another database in the
//! same directory. The subjects are measured rep by rep, interleaved with rotating order, in one
//! process. A timing wrapper around the store and an observer split a step into store commits,
//! store reads, the sandboxed call and the rest (the runtime's own work); the scripted
//! provider's `complete` is timed on its own.
//!
//! The floor is measured two ways, and the ratio is taken against the cheaper: through a pool,
//! one call per statement, as most applications commit; and on a dedicated connection with the
//! three statements sent as one call, the least sqlx can do per fsync'd commit.

mod common;
use common::echo_path;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tollgate_models::{ModelRequest, ModelSpec, ProviderOptions};
use tollgate_runtime::{Event, Observer, RunOptions, RunState, Runtime};
use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_store::{
    ApprovalFilter, ApprovalRecord, AuditCheckpoint, Commit, Durability, RunFilter, RunRecord, RunStatus, RunSummary,
    SealedRecord, Signer, SqliteStore, StepRecord, Store, StoreFuture, TokenRecord, ToolCallRecord, ToolCallStatus,
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

/// The store methods that read (the rest write: `commit`, `create_run`).
const READS: &[&str] =
    &["run", "messages", "step_tool_calls", "tool_calls", "approvals", "expire_approvals", "cap_usage"];

/// Delegates to the SQLite store and adds up the wall time of each method per *cycle*: cycle k
/// is the time between the k-th and the (k+1)-th model turn (0: before the first), which the
/// observer advances.
struct TimedStore {
    inner: SqliteStore,
    cycle: AtomicUsize,
    /// Method → wall time per cycle (index `0..=STEPS`).
    ops: Mutex<BTreeMap<&'static str, Vec<Duration>>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl TimedStore {
    fn timed<'a, T: Send + 'a>(&'a self, op: &'static str, fut: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let start = Instant::now();
            let out = fut.await;
            let took = start.elapsed();
            let cycle = self.cycle.load(Ordering::Relaxed).min(STEPS);
            self.ops.lock().expect("op times").entry(op).or_insert_with(|| vec![Duration::ZERO; STEPS + 1])[cycle] +=
                took;
            *self.counts.lock().expect("op counts").entry(op).or_default() += 1;
            out
        })
    }

    /// Starts a new run's accounting.
    fn reset(&self) {
        self.cycle.store(0, Ordering::Relaxed);
        self.ops.lock().expect("op times").clear();
        self.counts.lock().expect("op counts").clear();
    }
}

impl Store for TimedStore {
    fn create_run<'a>(&'a self, run: &'a RunRecord, audit: &'a [tollgate_store::AuditEntry]) -> StoreFuture<'a, ()> {
        self.timed("create_run", self.inner.create_run(run, audit))
    }
    fn run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<RunRecord>> {
        self.timed("run", self.inner.run(id))
    }
    fn runs<'a>(&'a self, filter: &'a RunFilter) -> StoreFuture<'a, Vec<RunSummary>> {
        self.timed("runs", self.inner.runs(filter))
    }
    fn commit<'a>(&'a self, commit: Commit) -> StoreFuture<'a, ()> {
        let op = match commit.durability {
            Durability::Immediate => "commit",
            Durability::Deferred => "commit_deferred",
        };
        self.timed(op, self.inner.commit(commit))
    }
    fn steps<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<StepRecord>> {
        self.timed("steps", self.inner.steps(run_id))
    }
    fn tool_calls<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        self.timed("tool_calls", self.inner.tool_calls(run_id))
    }
    fn step_tool_calls<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        self.timed("step_tool_calls", self.inner.step_tool_calls(run_id, step))
    }
    fn messages<'a>(
        &'a self,
        run_id: &'a str,
        agent: &'a str,
        from_seq: u64,
    ) -> StoreFuture<'a, Vec<serde_json::Value>> {
        self.timed("messages", self.inner.messages(run_id, agent, from_seq))
    }
    fn approval<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApprovalRecord>> {
        self.timed("approval", self.inner.approval(id))
    }
    fn approvals<'a>(&'a self, filter: &'a ApprovalFilter) -> StoreFuture<'a, Vec<ApprovalRecord>> {
        self.timed("approvals", self.inner.approvals(filter))
    }
    fn expire_approvals(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<ApprovalRecord>> {
        self.timed("expire_approvals", self.inner.expire_approvals(now, limit))
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
    fn newest_audit_checkpoint(&self) -> StoreFuture<'_, Option<AuditCheckpoint>> {
        self.timed("newest_audit_checkpoint", self.inner.newest_audit_checkpoint())
    }
    fn vouched_step_records<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<SealedRecord>> {
        self.timed("vouched_step_records", self.inner.vouched_step_records(run_id, step))
    }
    fn vouched_run_start<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<SealedRecord>> {
        self.timed("vouched_run_start", self.inner.vouched_run_start(run_id))
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
    fn create_token<'a>(
        &'a self,
        token: &'a TokenRecord,
        audit: &'a [tollgate_store::AuditEntry],
    ) -> StoreFuture<'a, TokenRecord> {
        self.inner.create_token(token, audit)
    }
    fn token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TokenRecord>> {
        self.inner.token(id)
    }
    fn tokens(&self) -> StoreFuture<'_, Vec<TokenRecord>> {
        self.inner.tokens()
    }
    fn revoke_token<'a>(
        &'a self,
        id: &'a str,
        at: i64,
        audit: &'a [tollgate_store::AuditEntry],
    ) -> StoreFuture<'a, bool> {
        self.inner.revoke_token(id, at, audit)
    }
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
        now: i64,
        ttl_ms: i64,
        take_over: Option<&'a tollgate_store::RunLease>,
    ) -> StoreFuture<'a, tollgate_store::LeaseClaim> {
        self.inner.claim_run(run_id, owner, now, ttl_ms, take_over)
    }
    fn renew_run<'a>(&'a self, lease: &'a tollgate_store::RunLease, now: i64, ttl_ms: i64) -> StoreFuture<'a, bool> {
        self.inner.renew_run(lease, now, ttl_ms)
    }
    fn release_run<'a>(&'a self, lease: &'a tollgate_store::RunLease) -> StoreFuture<'a, ()> {
        self.inner.release_run(lease)
    }
    fn unleased_runs(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<String>> {
        self.inner.unleased_runs(now, limit)
    }
    fn vouched_workflow_switch<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<tollgate_store::SealedRecord>> {
        self.inner.vouched_workflow_switch(name)
    }
    fn run_started_by_key<'a>(&'a self, caller: &'a str, key: &'a str) -> StoreFuture<'a, Option<(String, String)>> {
        self.inner.run_started_by_key(caller, key)
    }
    fn create_run_keyed<'a>(
        &'a self,
        run: &'a tollgate_store::RunRecord,
        audit: &'a [tollgate_store::AuditEntry],
        key: &'a tollgate_store::StartKey,
    ) -> StoreFuture<'a, tollgate_store::Started> {
        self.inner.create_run_keyed(run, audit, key)
    }
    fn deploy_workflow<'a>(
        &'a self,
        deployment: &'a tollgate_store::DeploymentRecord,
        audit: &'a [tollgate_store::AuditEntry],
    ) -> StoreFuture<'a, tollgate_store::Deployed> {
        self.inner.deploy_workflow(deployment, audit)
    }
    fn deployments<'a>(&'a self, name: Option<&'a str>) -> StoreFuture<'a, Vec<tollgate_store::DeploymentRecord>> {
        self.inner.deployments(name)
    }
    fn deployment<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<tollgate_store::DeploymentRecord>> {
        self.inner.deployment(name, version)
    }
    fn switch_workflow<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
        at: i64,
        audit: &'a [tollgate_store::AuditEntry],
    ) -> StoreFuture<'a, bool> {
        self.inner.switch_workflow(name, enabled, at, audit)
    }
}

/// Timestamps the loop's events: each model turn (advancing the store's cycle) and each
/// sandboxed call.
struct Timeline<'a> {
    store: &'a TimedStore,
    turns: Mutex<Vec<Instant>>,
    call_started: Mutex<Option<Instant>>,
    /// Sandboxed call time per cycle.
    calls: Mutex<Vec<Duration>>,
}

impl Observer for Timeline<'_> {
    fn event(&self, event: &Event) {
        let now = Instant::now();
        match event {
            Event::ModelTurn { .. } => {
                self.turns.lock().expect("timeline").push(now);
                self.store.cycle.fetch_add(1, Ordering::Relaxed);
            }
            Event::ToolStarted { .. } => *self.call_started.lock().expect("timeline") = Some(now),
            Event::ToolFinished { .. } => {
                if let Some(start) = self.call_started.lock().expect("timeline").take() {
                    let cycle = self.store.cycle.load(Ordering::Relaxed).min(STEPS);
                    self.calls.lock().expect("timeline")[cycle] += now - start;
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The two subjects
// ---------------------------------------------------------------------------------------------

/// Where the time of some cycles of one run went, in ms per cycle (step).
#[derive(Debug, Clone, Copy, Default)]
struct Breakdown {
    step: f64,
    commit: f64,
    commit_deferred: f64,
    run: f64,
    tool_calls: f64,
    approvals: f64,
    expire: f64,
    sandbox: f64,
    rest: f64,
}

/// One agent run, start to completion.
struct RunSample {
    /// Every step: wall time of start + advance over `STEPS`.
    all: Breakdown,
    /// Cycles `1..=EDGE` and the last `EDGE` (between model turns; all have one echo call).
    first: Breakdown,
    last: Breakdown,
    /// Calls of each store method over the run.
    counts: BTreeMap<&'static str, u64>,
}

/// Picks one part of a [`Breakdown`].
type Pick = fn(&Breakdown) -> f64;

/// `per`: how many steps the totals are divided by.
fn breakdown(
    cycles: std::ops::Range<usize>,
    per: usize,
    step_total: Duration,
    ops: &BTreeMap<&'static str, Vec<Duration>>,
    calls: &[Duration],
) -> Breakdown {
    let n = per as f64;
    let op = |name: &str| ops.get(name).map_or(0.0, |v| ms(v[cycles.clone()].iter().sum()) / n);
    let all_ops: f64 = ops.keys().map(|k| op(k)).sum();
    let sandbox = ms(calls[cycles.clone()].iter().sum()) / n;
    let step = ms(step_total) / n;
    Breakdown {
        step,
        commit: op("commit") + op("create_run"),
        commit_deferred: op("commit_deferred"),
        run: op("run") + op("messages"),
        tool_calls: op("tool_calls") + op("step_tool_calls"),
        approvals: op("approvals"),
        expire: op("expire_approvals"),
        sandbox,
        rest: step - all_ops - sandbox,
    }
}

async fn agent_run(runtime: &Runtime, store: &TimedStore) -> RunSample {
    store.reset();
    let timeline = Timeline {
        store,
        turns: Mutex::default(),
        call_started: Mutex::default(),
        calls: Mutex::new(vec![Duration::ZERO; STEPS + 1]),
    };
    let start = Instant::now();
    let run_id = runtime.start(None).await.expect("run starts");
    let outcome = runtime.advance(&run_id, &timeline).await.expect("run advances");
    let total = start.elapsed();
    let ops = std::mem::take(&mut *store.ops.lock().expect("op times"));
    let counts = std::mem::take(&mut *store.counts.lock().expect("op counts"));

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.detail);
    assert_eq!(outcome.output.as_deref(), Some("Done."));
    let rows = store.inner.tool_calls(&run_id).await.expect("tool calls");
    assert_eq!(rows.len(), STEPS - 1);
    for (i, call) in rows.iter().enumerate() {
        assert_eq!(call.status, ToolCallStatus::Done);
        let want = serde_json::json!({"output": {"msg": "hello", "step": i}});
        assert_eq!(call.result.as_ref(), Some(&want), "call {i}");
    }

    let turns = timeline.turns.into_inner().expect("timeline");
    assert_eq!(turns.len(), STEPS);
    let calls = timeline.calls.into_inner().expect("timeline");
    // Cycle k runs from turn k to turn k + 1 (k = 1..STEPS-1): `turns[k - 1]` to `turns[k]`.
    let span = |cycles: std::ops::Range<usize>| turns[cycles.end - 1] - turns[cycles.start - 1];
    let first = 1..EDGE + 1;
    let last = STEPS - EDGE..STEPS;
    RunSample {
        all: breakdown(0..STEPS + 1, STEPS, total, &ops, &calls),
        first: breakdown(first.clone(), EDGE, span(first), &ops, &calls),
        last: breakdown(last.clone(), EDGE, span(last), &ops, &calls),
        counts,
    }
}

/// A second database with the store's pragmas and one small table, through a pool as most
/// applications write: `BEGIN IMMEDIATE`, `INSERT`, `COMMIT`, one call each.
async fn baseline_pool(path: &Path) -> SqlitePool {
    let pool =
        SqlitePoolOptions::new().max_connections(4).connect_with(baseline_options(path)).await.expect("baseline db");
    sqlx::raw_sql(BASELINE_TABLE).execute(&pool).await.expect("baseline table");
    pool
}

/// The store's pragmas, on a baseline database at `path`.
fn baseline_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

const BASELINE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL) STRICT";

/// The cheapest fsync'd commit sqlx can make: a dedicated connection (no pool) to a third
/// database, `BEGIN IMMEDIATE; INSERT …; COMMIT` sent as one call.
async fn baseline_connection(path: &Path) -> SqliteConnection {
    let mut conn = baseline_options(path).connect().await.expect("baseline db");
    sqlx::raw_sql(BASELINE_TABLE).execute(&mut conn).await.expect("baseline table");
    conn
}

/// Milliseconds per commit of each of `BASELINE_COMMITS` one-call commits.
async fn baseline_one_call_batch(conn: &mut SqliteConnection, next: &mut i64) -> Vec<f64> {
    let mut out = Vec::with_capacity(BASELINE_COMMITS);
    for _ in 0..BASELINE_COMMITS {
        let start = Instant::now();
        sqlx::query("BEGIN IMMEDIATE; INSERT INTO events (at, body) VALUES (?, ?); COMMIT")
            .bind(*next)
            .bind(r#"{"kind":"bench","n":1}"#)
            .execute(&mut *conn)
            .await
            .expect("one-call commit");
        out.push(ms(start.elapsed()));
        *next += 1;
    }
    out
}

/// Milliseconds per commit of each of `BASELINE_COMMITS` pooled commits.
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
    let agent = &runtime.workflow().definition.agents["worker"];
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
        tool_choice: Default::default(),
        sampling: Default::default(),
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
    let (runtime, store, pool, mut conn) = rt.block_on(async {
        let signer = Signer::load_or_create(&dir.path().join("audit-signing.key")).expect("signing key");
        let inner = SqliteStore::open(&dir.path().join("tollgate.db"), Some(signer)).await.expect("store opens");
        let store =
            Arc::new(TimedStore { inner, cycle: AtomicUsize::new(0), ops: Mutex::default(), counts: Mutex::default() });
        let workflow = tollgate_workflow::load(&workflow_path).unwrap_or_else(|d| panic!("workflow: {d}"));
        let runtime =
            Runtime::open(store.clone(), &sandbox, workflow, RunOptions::default()).await.expect("runtime opens");
        let pool = baseline_pool(&dir.path().join("baseline.db")).await;
        let conn = baseline_connection(&dir.path().join("baseline-one-call.db")).await;
        (runtime, store, pool, conn)
    });

    println!("\nwarm-up: one run, {BASELINE_COMMITS} baseline commits of each kind…");
    let mut next = 0i64;
    rt.block_on(async {
        agent_run(&runtime, &store).await;
        baseline_batch(&pool, &mut next).await;
        baseline_one_call_batch(&mut conn, &mut next).await;
    });

    println!(
        "\n[1] {REPS} interleaved reps of (one run of {STEPS} steps, {BASELINE_COMMITS} pooled and \
         {BASELINE_COMMITS} one-call fsync'd commits), order rotating…"
    );
    let mut runs: Vec<RunSample> = Vec::new();
    let mut pooled_commits: Vec<f64> = Vec::new();
    let mut one_call_commits: Vec<f64> = Vec::new();
    let mut ratios = Vec::new();
    let mut first_ratios = Vec::new();
    for rep in 0..REPS {
        let (run, pooled, one_call) = rt.block_on(async {
            let (mut run, mut pooled, mut one_call) = (None, Vec::new(), Vec::new());
            for subject in 0..3 {
                match (rep + subject) % 3 {
                    0 => run = Some(agent_run(&runtime, &store).await),
                    1 => pooled = baseline_batch(&pool, &mut next).await,
                    _ => one_call = baseline_one_call_batch(&mut conn, &mut next).await,
                }
            }
            (run.expect("the run is one of the three subjects"), pooled, one_call)
        });
        // The floor is the cheaper of the two ways to commit.
        let commit = stats(pooled.clone()).median.min(stats(one_call.clone()).median);
        println!(
            "  rep {rep}: {:.3} ms/step (first {EDGE} steps {:.3}, last {EDGE} {:.3}), commit median {commit:.3} ms, ratio {:.2}",
            run.all.step,
            run.first.step,
            run.last.step,
            run.all.step / commit
        );
        ratios.push(run.all.step / commit);
        first_ratios.push(run.first.step / commit);
        pooled_commits.extend(pooled);
        one_call_commits.extend(one_call);
        runs.push(run);
    }

    let over_reps = |f: &dyn Fn(&RunSample) -> f64| stats(runs.iter().map(f).collect());
    let step = over_reps(&|r| r.all.step);
    let first_step = over_reps(&|r| r.first.step);
    let pooled = stats(pooled_commits);
    let one_call = stats(one_call_commits);
    let commit = if pooled.median <= one_call.median { pooled } else { one_call };
    let ratio = step.median / commit.median;
    let first_ratio = first_step.median / commit.median;
    let count = |r: &RunSample, names: &[&str]| {
        r.counts.iter().filter(|(k, _)| names.contains(k)).map(|(_, c)| *c).sum::<u64>() as f64 / STEPS as f64
    };
    let writes_per_step = over_reps(&|r| count(r, &["commit", "commit_deferred", "create_run"]));
    let reads_per_step = over_reps(&|r| count(r, READS));

    let model = rt.block_on(async {
        let last_run = runtime
            .store()
            .runs(&RunFilter { status: None, limit: Some(1), ..RunFilter::default() })
            .await
            .expect("runs");
        let run = runtime.store().run(&last_run[0].id).await.expect("run").expect("run exists");
        let state = RunState::load(&**runtime.store(), &run).await.expect("checkpoint");
        println!(
            "\n  checkpoint JSON at the end of a run: {} bytes (written twice per step); conversation: {} messages",
            run.checkpoint.to_string().len(),
            state.conversations["worker"].len()
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
        conn.close().await.expect("baseline connection closes");
    });

    let verdict = |r: f64| if r <= TARGET_RATIO { "met" } else { "NOT met" };
    let line = |what: &str, s: &Stats, target: &str| {
        println!("| {what:<46} | {:>9.3} | {:>9.3} | {:>9.3} | {target:<15} |", s.median, s.p10, s.p90)
    };
    let ratio_line = |what: &str, r: f64, per_rep: &[f64]| {
        let s = stats(per_rep.to_vec());
        println!(
            "| {what:<46} | {r:>9.2} | {:>9.2} | {:>9.2} | {:<15} |",
            s.p10,
            s.p90,
            format!("≤ {TARGET_RATIO}: {}", verdict(r))
        );
    };
    println!("\n== summary (median, p10, p90 over {REPS} reps; the commit over every commit) ==");
    println!("| {:<46} | {:>9} | {:>9} | {:>9} | {:<15} |", "measurement", "median", "p10", "p90", "target");
    println!("|{:-<48}|{:-<11}|{:-<11}|{:-<11}|{:-<17}|", "", "", "", "", "");
    line(&format!("agent step, mean over a {STEPS}-step run (ms)"), &step, "");
    line(&format!("agent step, first {EDGE} steps of a run (ms)"), &first_step, "");
    line(&format!("fsync'd commit, pool, 3 calls (ms, n={})", pooled.n), &pooled, "");
    line(&format!("fsync'd commit, one connection, 1 call (ms, n={})", one_call.n), &one_call, "");
    println!(
        "| {:<46} | {:>9.3} | {:>9} | {:>9} | {:<15} |",
        "the floor: the cheaper median", commit.median, "", "", ""
    );
    ratio_line("ratio step / commit (p10/p90: per rep)", ratio, &ratios);
    ratio_line(&format!("ratio first-{EDGE}-steps step / commit"), first_ratio, &first_ratios);
    line("store commits per step", &writes_per_step, "");
    line("store reads per step", &reads_per_step, "");
    line("scripted model complete, mid-run request (µs)", &model, "");

    println!("\n== where a step's time goes (ms per step, median over {REPS} reps) ==");
    println!(
        "| {:<36} | {:>9} | {:>13} | {:>13} |",
        "part",
        "all steps",
        format!("first {EDGE}"),
        format!("last {EDGE}")
    );
    println!("|{:-<38}|{:-<11}|{:-<15}|{:-<15}|", "", "", "", "");
    let parts: [(&str, Pick); 9] = [
        ("step (wall)", |b| b.step),
        ("store commits, fsync'd", |b| b.commit),
        ("store commits, deferred", |b| b.commit_deferred),
        ("store read: run + its messages", |b| b.run),
        ("store read: tool calls of the step", |b| b.tool_calls),
        ("store read: approvals of the run", |b| b.approvals),
        ("store: expire_approvals", |b| b.expire),
        ("sandboxed echo call", |b| b.sandbox),
        ("rest: runtime's own work", |b| b.rest),
    ];
    for (name, f) in parts {
        let m = |pick: fn(&RunSample) -> Breakdown| over_reps(&|r| f(&pick(r))).median;
        println!("| {name:<36} | {:>9.3} | {:>13.3} | {:>13.3} |", m(|r| r.all), m(|r| r.first), m(|r| r.last));
    }
    println!("store files after {} runs: {:.1} MiB", REPS + 1, db_bytes as f64 / (1 << 20) as f64);
}
