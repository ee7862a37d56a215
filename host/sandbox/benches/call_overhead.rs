//! Call-overhead benchmark: what Tollgate adds on top of wasmtime for one tool call.
//!
//! Run: `cargo bench -p tollgate-sandbox --bench call_overhead` (needs `target/plugins/echo.wasm`,
//! built by `cargo xtask plugins`). Prints numbers; asserts only that the calls return the right
//! values, never anything about speed. See BENCHMARKS.md for what each number means.
//!
//! 1. Per-call latency of the trivial `echo` tool, (a) through `Plugin::call` and (b) on a bare
//!    wasmtime floor (the sandbox's own engine, so the same settings and generated code; a fresh
//!    store + instance per call; no gate, no schema, no report), measured rep by rep interleaved
//!    so machine noise hits both equally.
//! 2. Throughput of (a) and (b) on 1 and 2 OS threads, each running its own current-thread tokio
//!    runtime (thread-per-core: calls never migrate, no executor state is shared).
//! 3. First call after a restart: `Sandbox::new` + `load_file` + first `call`, with a cold
//!    cache directory, a warm one written by a previous sandbox, and no cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tollgate_contract::capability::PLUGIN_TYPES;
use tollgate_sandbox::{CacheOutcome, CallContext, Grants, Limits, Plugin, Sandbox, SandboxConfig};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod floor_bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "plugin-core",
        exports: { default: async },
    });
}

use floor_bindings::PluginCorePre as FloorPre;
use floor_bindings::exports::tollgate::plugin::tool::CallContext as WitContext;

const INPUT: &str = r#"{"msg":"hello"}"#;
/// Wall time spent on each configuration of the latency measurement (section 1).
const LATENCY_SECS_EACH: f64 = 3.0;
/// Calls per configuration per rep in section 1 (the interleaving granularity).
const LATENCY_BATCH: usize = 200;
/// Reps and seconds per rep of each configuration in section 2.
const THROUGHPUT_REPS: usize = 4;
const THROUGHPUT_SECS: f64 = 1.0;
/// Repetitions of each restart scenario in section 3.
const RESTART_REPS: usize = 12;

// ---------------------------------------------------------------------------------------------
// The bare floor: wasmtime alone, on the sandbox's own engine.
// ---------------------------------------------------------------------------------------------

struct FloorState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for FloorState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

struct Floor {
    engine: Engine,
    pre: FloorPre<FloorState>,
    ctx: WitContext,
    fuel: u64,
    /// Epoch ticks until the deadline: the default 10 s timeout at 10 ms per tick.
    deadline_ticks: u64,
}

impl Clone for Floor {
    fn clone(&self) -> Floor {
        Floor {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            ctx: self.ctx.clone(),
            fuel: self.fuel,
            deadline_ticks: self.deadline_ticks,
        }
    }
}

impl Floor {
    fn new(engine: Engine, bytes: &[u8]) -> Floor {
        let component = Component::new(&engine, bytes).expect("echo compiles");
        let mut linker = Linker::<FloorState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link wasi");
        // The only non-WASI import of the echo component: an interface with types, no functions.
        linker.instance(&format!("{PLUGIN_TYPES}@0.1.1")).expect("types instance");
        let pre = FloorPre::new(linker.instantiate_pre(&component).expect("echo links")).expect("echo exports tool");
        let limits = Limits::default();
        Floor { engine, pre, ctx: wit_ctx(), fuel: limits.fuel, deadline_ticks: limits.timeout.as_millis() as u64 / 10 }
    }

    /// One call as bare as wasmtime allows: fresh store + minimal WASI context, fuel and epoch
    /// deadline, instantiate, call, drop.
    async fn call(&self, tool: &str, input: &str) -> Result<String, String> {
        let state = FloorState { wasi: WasiCtx::builder().build(), table: ResourceTable::new() };
        let mut store = Store::new(&self.engine, state);
        store.set_fuel(self.fuel).map_err(|e| e.to_string())?;
        store.set_epoch_deadline(self.deadline_ticks);
        let instance = self.pre.instantiate_async(&mut store).await.map_err(|e| format!("{e:#}"))?;
        match instance.tollgate_plugin_tool().call_call(&mut store, tool, input, &self.ctx).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(tool_error)) => Err(format!("{tool_error:?}")),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}

fn wit_ctx() -> WitContext {
    let c = ctx();
    WitContext { run_id: c.run_id, call_id: c.call_id, idempotency_key: c.idempotency_key }
}

fn ctx() -> CallContext {
    CallContext { run_id: "bench-run".into(), call_id: "bench-call".into(), idempotency_key: "bench-key".into() }
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting
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

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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

async fn tollgate_call(plugin: &Plugin, ctx: &CallContext) {
    let out = plugin.call("echo", INPUT, ctx).await;
    let value = out.result.unwrap_or_else(|e| panic!("echo through Tollgate failed: {e}"));
    assert_eq!(value, serde_json::json!({"msg": "hello"}));
}

async fn floor_call(floor: &Floor) {
    let out = floor.call("echo", INPUT).await.unwrap_or_else(|e| panic!("echo on the floor failed: {e}"));
    assert_eq!(out, INPUT);
}

/// What sections 1 and 2 measure side by side.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Subject {
    /// (a) `Plugin::call` on a loaded plugin.
    Tollgate,
    /// (b) bare wasmtime with the sandbox's engine settings.
    Floor,
}

const SUBJECTS: [Subject; 2] = [Subject::Tollgate, Subject::Floor];

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Tollgate => "(a) Tollgate Plugin::call",
            Subject::Floor => "(b) bare wasmtime floor",
        }
    }
}

#[derive(Clone)]
struct Subjects {
    plugin: Plugin,
    floor: Floor,
}

impl Subjects {
    async fn call(&self, subject: Subject, ctx: &CallContext) {
        match subject {
            Subject::Tollgate => tollgate_call(&self.plugin, ctx).await,
            Subject::Floor => floor_call(&self.floor).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Per-call latency, interleaved
// ---------------------------------------------------------------------------------------------

struct Latency {
    /// Per-call µs, indexed like [`SUBJECTS`].
    stats: [Stats; 2],
    /// (a)/(b) of the two batch medians of each rep: robust to drift, as the batches are adjacent.
    paired_ratio: Stats,
}

async fn latency(subjects: &Subjects) -> Latency {
    let ctx = ctx();
    for _ in 0..1000 {
        for s in SUBJECTS {
            subjects.call(s, &ctx).await;
        }
    }
    let mut samples: [Vec<f64>; 2] = Default::default();
    let mut spent = [Duration::ZERO; 2];
    let mut paired = Vec::new();
    let budget = Duration::from_secs_f64(LATENCY_SECS_EACH);
    let mut rep = 0usize;
    // Until both have had their budget.
    while spent[0] < budget || spent[1] < budget {
        let mut batches: [Vec<f64>; 2] = Default::default();
        // Rotate the order, so no subject always runs first (or right after another one).
        for i in 0..SUBJECTS.len() {
            let k = (i + rep) % SUBJECTS.len();
            for _ in 0..LATENCY_BATCH {
                let t = Instant::now();
                subjects.call(SUBJECTS[k], &ctx).await;
                let d = t.elapsed();
                spent[k] += d;
                batches[k].push(us(d));
            }
        }
        paired.push(stats(batches[0].clone()).median / stats(batches[1].clone()).median);
        for (all, batch) in samples.iter_mut().zip(batches) {
            all.extend(batch);
        }
        rep += 1;
    }
    let [a, b] = samples;
    Latency { stats: [stats(a), stats(b)], paired_ratio: stats(paired) }
}

// ---------------------------------------------------------------------------------------------
// 2. Throughput with 1 and 2 concurrent tasks
// ---------------------------------------------------------------------------------------------

/// Calls per second of `tasks` tasks, each calling in a loop for `THROUGHPUT_SECS`.
fn throughput_once(subject: Subject, threads: usize, subjects: &Subjects) -> f64 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(THROUGHPUT_SECS);
    // One OS thread per worker, each with its own current-thread runtime (thread-per-core):
    // calls never migrate and no executor state is shared between the workers.
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let subjects = subjects.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let ctx = ctx();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        subjects.call(subject, &ctx).await;
                        n += 1;
                    }
                    n
                })
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("throughput thread")).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// Calls/s per rep, `[subject][threads - 1]`.
type Throughput = [[Vec<f64>; 2]; 2];

fn throughput(subjects: &Subjects) -> Throughput {
    let mut runs: Throughput = Default::default();
    let configs: Vec<(usize, usize)> = (0..SUBJECTS.len()).flat_map(|k| [(k, 1), (k, 2)]).collect();
    for rep in 0..THROUGHPUT_REPS {
        for i in 0..configs.len() {
            let (k, threads) = configs[(i + rep) % configs.len()];
            runs[k][threads - 1].push(throughput_once(SUBJECTS[k], threads, subjects));
        }
    }
    runs
}

// ---------------------------------------------------------------------------------------------
// 3. First call after a restart
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Restart {
    total: Vec<f64>,
    new: Vec<f64>,
    load: Vec<f64>,
    call: Vec<f64>,
}

/// `Sandbox::new` + `load_file` + first call, then drops everything (the "restart").
async fn first_call(cache_dir: Option<&Path>, echo: &Path, expect: CacheOutcome, into: &mut Restart) {
    let t0 = Instant::now();
    let sandbox =
        Sandbox::new(SandboxConfig { cache_dir: cache_dir.map(Path::to_path_buf), ..SandboxConfig::default() })
            .expect("sandbox starts");
    let t1 = Instant::now();
    let plugin = sandbox.load_file(echo, Grants::new()).await.expect("echo loads");
    let t2 = Instant::now();
    tollgate_call(&plugin, &ctx()).await;
    let t3 = Instant::now();
    assert_eq!(plugin.cache_outcome(), expect, "unexpected cache outcome");
    into.total.push(ms(t3 - t0));
    into.new.push(ms(t1 - t0));
    into.load.push(ms(t2 - t1));
    into.call.push(ms(t3 - t2));
    drop(plugin);
    drop(sandbox);
}

async fn restarts(echo: &Path) -> [Restart; 3] {
    let mut cold = Restart::default();
    let mut warm = Restart::default();
    let mut none = Restart::default();
    for rep in 0..RESTART_REPS {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = dir.path().join("cache");
        if rep % 2 == 0 {
            first_call(None, echo, CacheOutcome::Disabled, &mut none).await;
        }
        first_call(Some(&cache), echo, CacheOutcome::Miss, &mut cold).await;
        first_call(Some(&cache), echo, CacheOutcome::Hit, &mut warm).await;
        if rep % 2 == 1 {
            first_call(None, echo, CacheOutcome::Disabled, &mut none).await;
        }
    }
    [cold, warm, none]
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let echo = echo_path();
    let bytes = std::fs::read(&echo).expect("read echo.wasm");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    println!(
        "call_overhead: echo.wasm {} bytes, {} CPUs",
        bytes.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox starts");
    let plugin = rt.block_on(sandbox.load(&bytes, Grants::new())).expect("echo loads with no grants");
    let floor = Floor::new(sandbox.engine().clone(), &bytes);
    let subjects = Subjects { plugin, floor };

    println!(
        "\n[1] per-call latency, echo {INPUT}, interleaved batches of {LATENCY_BATCH} (~{LATENCY_SECS_EACH} s each)…"
    );
    let lat = rt.block_on(latency(&subjects));
    for (subject, s) in SUBJECTS.iter().zip(&lat.stats) {
        println!(
            "  {:<36} median {:>7.2} µs  p10 {:>7.2}  p90 {:>7.2}  (n={})",
            subject.label(),
            s.median,
            s.p10,
            s.p90,
            s.n
        );
    }
    let [a, b] = lat.stats;
    let ratio = a.median / b.median;
    println!(
        "  (a)/(b): ratio of medians {ratio:.2}, gap {:.2} µs; per-rep paired ratio median {:.2} (p10 {:.2}, p90 {:.2})",
        a.median - b.median,
        lat.paired_ratio.median,
        lat.paired_ratio.p10,
        lat.paired_ratio.p90
    );

    println!(
        "\n[2] throughput, 1 or 2 OS threads each with a current-thread tokio runtime, {THROUGHPUT_REPS} reps × {THROUGHPUT_SECS} s per configuration…"
    );
    let tp = throughput(&subjects);
    let tp_stats = |k: usize, tasks: usize| stats(tp[k][tasks - 1].clone());
    let mut scaling = [0.0; 2];
    for (k, subject) in SUBJECTS.iter().enumerate() {
        for tasks in [1, 2] {
            let s = tp_stats(k, tasks);
            println!(
                "  {:<36} {tasks} thread(s): median {:>8.0} calls/s  p10 {:>8.0}  p90 {:>8.0}  (reps={})",
                subject.label(),
                s.median,
                s.p10,
                s.p90,
                s.n
            );
        }
        scaling[k] = tp_stats(k, 2).median / tp_stats(k, 1).median;
    }
    println!("  scaling 2/1: (a) {:.2}, (b) {:.2}", scaling[0], scaling[1]);

    println!("\n[3] first call after a restart (Sandbox::new + load_file + call), {RESTART_REPS} reps…");
    let [cold, warm, none] = rt.block_on(restarts(&echo));
    let restart_rows = [("cold cache dir (compiles)", &cold), ("warm cache dir", &warm), ("no cache", &none)];
    for (name, r) in restart_rows {
        let (t, n, l, c) = (stats(r.total.clone()), stats(r.new.clone()), stats(r.load.clone()), stats(r.call.clone()));
        println!(
            "  {name:<26} median {:>7.2} ms (p10 {:>6.2}, p90 {:>6.2}) = new {:.2} + load {:.2} + call {:.2} ms (n={})",
            t.median, t.p10, t.p90, n.median, l.median, c.median, t.n
        );
    }

    drop(subjects);
    drop(sandbox);
    drop(rt);

    let rss = max_rss_kib().map_or("unknown".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let line = |what: &str, s: &Stats, target: &str| {
        println!("| {what:<44} | {:>9.2} | {:>9.2} | {:>9.2} | {target:<15} |", s.median, s.p10, s.p90)
    };
    println!("\n== summary (median, p10, p90) ==");
    println!("| {:<44} | {:>9} | {:>9} | {:>9} | {:<15} |", "measurement", "median", "p10", "p90", "target");
    println!("|{:-<46}|{:-<11}|{:-<11}|{:-<11}|{:-<17}|", "", "", "", "", "");
    line("1a Tollgate call (µs)", &a, "");
    line("1b bare floor call (µs)", &b, "");
    println!(
        "| {:<44} | {ratio:>9.2} | {:>9.2} | {:>9.2} | {:<15} |",
        "1 overhead ratio (a)/(b) (p10/p90: per rep)",
        lat.paired_ratio.p10,
        lat.paired_ratio.p90,
        format!("≤ 1.5: {}", verdict(ratio <= 1.5))
    );
    for (k, name) in ["2a Tollgate", "2b floor"].into_iter().enumerate() {
        for tasks in [1, 2] {
            let s = tp_stats(k, tasks);
            println!(
                "| {:<44} | {:>9.0} | {:>9.0} | {:>9.0} | {:<15} |",
                format!("{name}, {tasks} thread(s) (calls/s)"),
                s.median,
                s.p10,
                s.p90,
                ""
            );
        }
        let target = if k == 0 { format!("≥ 1.8: {}", verdict(scaling[0] >= 1.8)) } else { String::new() };
        println!(
            "| {:<44} | {:>9.2} | {:>9} | {:>9} | {target:<15} |",
            format!("{name}, scaling 2/1"),
            scaling[k],
            "",
            ""
        );
    }
    for (name, r) in [("3i restart, cold cache dir (ms)", &cold), ("3ii restart, warm cache dir (ms)", &warm)] {
        line(name, &stats(r.total.clone()), "");
    }
    line("3iii restart, no cache (ms)", &stats(none.total.clone()), "");
    println!("max RSS (VmHWM): {rss}");
}
