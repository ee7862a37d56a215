//! Call-overhead benchmark: what Tollgate adds on top of wasmtime for one tool call.
//!
//! Run: `cargo bench -p tollgate-sandbox --bench call_overhead` (needs `target/plugins/echo.wasm`,
//! built by `cargo xtask plugins`). Prints numbers; asserts only that the calls return the right
//! values, never anything about speed. See BENCHMARKS.md for what each number means.
//!
//! 1. Per-call latency of the trivial `echo` tool, (a) through `Plugin::call` and (b) on a bare
//!    wasmtime floor (same engine settings, fresh store + instance per call, no gate), measured
//!    rep by rep interleaved so machine noise hits both equally.
//! 2. Throughput of (a) (and of (b), for reference) with 1 and 2 concurrent tasks on a 2-worker
//!    tokio runtime.
//! 3. First call after a restart: `Sandbox::new` + `load_file` + first `call`, with a cold
//!    cache directory, a warm one written by a previous sandbox, and no cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tollgate_sandbox::{CacheOutcome, CallContext, Grants, Limits, Plugin, Sandbox, SandboxConfig};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod floor_bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "plugin",
        exports: { default: async },
    });
}

use floor_bindings::PluginPre as FloorPre;
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
// The bare floor: wasmtime alone, configured like the sandbox's engine.
// ---------------------------------------------------------------------------------------------

/// Copy of `Sandbox::with_kv`'s engine configuration with `SandboxConfig::default()` values
/// (`max_wasm_stack` 512 KiB, 256 instances, `MAX_MEMORY_BYTES` 4 GiB), so that the compiled
/// code and the instance allocator are the same as Tollgate's.
fn floor_engine() -> Engine {
    let n: u32 = 256;
    let mut cfg = Config::new();
    cfg.wasm_component_model(true).consume_fuel(true).epoch_interruption(true).max_wasm_stack(512 << 10);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * 20)
        .total_memories(n * 4)
        .total_tables(n * 20)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(64)
        .max_memory_size(4 << 30)
        .table_elements(50_000)
        .max_component_instance_size(8 << 20)
        .max_core_instance_size(8 << 20);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg).expect("floor engine")
}

/// The same 10 ms epoch ticker the sandbox runs, so both engines see the same interruptions.
struct Ticker(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Ticker {
    fn start(engine: &Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let (e, s) = (engine.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                e.increment_epoch();
            }
        });
        Ticker(stop, Some(handle))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

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
    _ticker: Arc<Ticker>,
}

impl Clone for Floor {
    fn clone(&self) -> Floor {
        Floor {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            ctx: self.ctx.clone(),
            fuel: self.fuel,
            deadline_ticks: self.deadline_ticks,
            _ticker: self._ticker.clone(),
        }
    }
}

impl Floor {
    fn new(bytes: &[u8]) -> Floor {
        let engine = floor_engine();
        let component = Component::new(&engine, bytes).expect("echo compiles");
        let mut linker = Linker::<FloorState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link wasi");
        // The only non-WASI import of the echo component: an interface with types, no functions.
        linker.instance("tollgate:plugin/types@0.1.0").expect("types instance");
        let pre = FloorPre::new(linker.instantiate_pre(&component).expect("echo links")).expect("echo exports tool");
        let limits = Limits::default();
        Floor {
            _ticker: Arc::new(Ticker::start(&engine)),
            engine,
            pre,
            ctx: wit_ctx(),
            fuel: limits.fuel,
            deadline_ticks: limits.timeout.as_millis() as u64 / 10,
        }
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

// ---------------------------------------------------------------------------------------------
// 1. Per-call latency, interleaved
// ---------------------------------------------------------------------------------------------

struct Latency {
    tollgate: Stats,
    floor: Stats,
    ratio_of_medians: f64,
    paired_ratio: Stats,
}

async fn latency(plugin: &Plugin, floor: &Floor) -> Latency {
    let ctx = ctx();
    for _ in 0..1000 {
        tollgate_call(plugin, &ctx).await;
        floor_call(floor).await;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // Per-rep ratio of batch medians: robust to drift, since both halves of a rep are adjacent.
    let mut paired = Vec::new();
    let (mut spent_a, mut spent_b) = (Duration::ZERO, Duration::ZERO);
    let budget = Duration::from_secs_f64(LATENCY_SECS_EACH);
    let mut rep = 0usize;
    while spent_a < budget || spent_b < budget {
        let mut batch_a = Vec::with_capacity(LATENCY_BATCH);
        let mut batch_b = Vec::with_capacity(LATENCY_BATCH);
        // Alternate which side goes first, so neither always runs on a "warmer" machine.
        for side in if rep % 2 == 0 { [0, 1] } else { [1, 0] } {
            for _ in 0..LATENCY_BATCH {
                let t = Instant::now();
                if side == 0 {
                    tollgate_call(plugin, &ctx).await;
                    let d = t.elapsed();
                    spent_a += d;
                    batch_a.push(us(d));
                } else {
                    floor_call(floor).await;
                    let d = t.elapsed();
                    spent_b += d;
                    batch_b.push(us(d));
                }
            }
        }
        paired.push(stats(batch_a.clone()).median / stats(batch_b.clone()).median);
        a.extend(batch_a);
        b.extend(batch_b);
        rep += 1;
    }
    let (tollgate, floor) = (stats(a), stats(b));
    Latency { ratio_of_medians: tollgate.median / floor.median, tollgate, floor, paired_ratio: stats(paired) }
}

// ---------------------------------------------------------------------------------------------
// 2. Throughput with 1 and 2 concurrent tasks
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Tollgate,
    Floor,
}

/// Calls per second of `tasks` tasks each calling in a loop for `secs`.
async fn throughput_once(side: Side, tasks: usize, plugin: &Plugin, floor: &Floor) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(THROUGHPUT_SECS);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (plugin, floor) = (plugin.clone(), floor.clone());
            tokio::spawn(async move {
                let ctx = ctx();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    match side {
                        Side::Tollgate => tollgate_call(&plugin, &ctx).await,
                        Side::Floor => floor_call(&floor).await,
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("throughput task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

struct Throughput {
    /// `[side][tasks - 1]`: calls/s per rep.
    runs: [[Vec<f64>; 2]; 2],
}

async fn throughput(plugin: &Plugin, floor: &Floor) -> Throughput {
    let mut runs: [[Vec<f64>; 2]; 2] = Default::default();
    let configs = [(Side::Tollgate, 1), (Side::Tollgate, 2), (Side::Floor, 1), (Side::Floor, 2)];
    for rep in 0..THROUGHPUT_REPS {
        // Rotate the order each rep.
        for i in 0..configs.len() {
            let (side, tasks) = configs[(i + rep) % configs.len()];
            let r = throughput_once(side, tasks, plugin, floor).await;
            runs[(side == Side::Floor) as usize][tasks - 1].push(r);
        }
    }
    Throughput { runs }
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
    let floor = Floor::new(&bytes);

    println!(
        "\n[1] per-call latency, echo {INPUT}, interleaved batches of {LATENCY_BATCH} (~{LATENCY_SECS_EACH} s each)…"
    );
    let lat = rt.block_on(latency(&plugin, &floor));
    let row = |name: &str, s: &Stats| {
        println!("  {name:<28} median {:>7.2} µs  p10 {:>7.2}  p90 {:>7.2}  (n={})", s.median, s.p10, s.p90, s.n)
    };
    row("(a) Tollgate Plugin::call", &lat.tollgate);
    row("(b) bare wasmtime floor", &lat.floor);
    println!(
        "  ratio (a)/(b) of medians {:.2}; per-rep paired ratio median {:.2} (p10 {:.2}, p90 {:.2})",
        lat.ratio_of_medians, lat.paired_ratio.median, lat.paired_ratio.p10, lat.paired_ratio.p90
    );

    println!("\n[2] throughput, 2-worker tokio runtime, {THROUGHPUT_REPS} reps × {THROUGHPUT_SECS} s per config…");
    let tp = rt.block_on(throughput(&plugin, &floor));
    let tp_stats = |side: usize, tasks: usize| stats(tp.runs[side][tasks - 1].clone());
    for (side, name) in [(0, "(a) Tollgate"), (1, "(b) floor")] {
        for tasks in [1, 2] {
            let s = tp_stats(side, tasks);
            println!(
                "  {name:<13} {tasks} task(s): median {:>8.0} calls/s  p10 {:>8.0}  p90 {:>8.0}  (reps={})",
                s.median, s.p10, s.p90, s.n
            );
        }
    }
    let scale_a = tp_stats(0, 2).median / tp_stats(0, 1).median;
    let scale_b = tp_stats(1, 2).median / tp_stats(1, 1).median;
    println!("  scaling 2/1: Tollgate {scale_a:.2}, floor {scale_b:.2}");

    println!("\n[3] first call after a restart (Sandbox::new + load_file + call), {RESTART_REPS} reps…");
    let [cold, warm, none] = rt.block_on(restarts(&echo));
    let restart_rows = [
        ("cold cache dir (compiles)", "cold cache", &cold),
        ("warm cache dir", "warm cache", &warm),
        ("no cache", "no cache", &none),
    ];
    for (name, _, r) in restart_rows {
        let (t, n, l, c) = (stats(r.total.clone()), stats(r.new.clone()), stats(r.load.clone()), stats(r.call.clone()));
        println!(
            "  {name:<26} median {:>7.2} ms (p10 {:>6.2}, p90 {:>6.2}) = new {:.2} + load {:.2} + call {:.2} ms (n={})",
            t.median, t.p10, t.p90, n.median, l.median, c.median, t.n
        );
    }

    drop(plugin);
    drop(floor);
    drop(sandbox);
    drop(rt);

    let rss = max_rss_kib().map_or("unknown".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let (a, b) = (lat.tollgate, lat.floor);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("\n== summary ==========================================================================");
    println!("| measurement                          | median      | p10         | p90         | target          |");
    println!("|--------------------------------------|-------------|-------------|-------------|-----------------|");
    println!(
        "| (a) Tollgate call, µs                | {:>11.2} | {:>11.2} | {:>11.2} |                 |",
        a.median, a.p10, a.p90
    );
    println!(
        "| (b) bare floor call, µs              | {:>11.2} | {:>11.2} | {:>11.2} |                 |",
        b.median, b.p10, b.p90
    );
    println!(
        "| overhead ratio (a)/(b)               | {:>11.2} | {:>11.2} | {:>11.2} | ≤ 1.5: {:<8} |",
        lat.ratio_of_medians,
        lat.paired_ratio.p10,
        lat.paired_ratio.p90,
        verdict(lat.ratio_of_medians <= 1.5)
    );
    for (side, name) in [(0, "(a)"), (1, "(b)")] {
        for tasks in [1, 2] {
            let s = tp_stats(side, tasks);
            println!(
                "| {name} throughput, {tasks} task(s), calls/s    | {:>11.0} | {:>11.0} | {:>11.0} |                 |",
                s.median, s.p10, s.p90
            );
        }
    }
    println!(
        "| (a) throughput scaling 2/1           | {scale_a:>11.2} |             |             | ≥ 1.8: {:<8} |",
        verdict(scale_a >= 1.8)
    );
    println!(
        "| (b) throughput scaling 2/1           | {scale_b:>11.2} |             |             |                 |"
    );
    for (_, name, r) in restart_rows {
        let s = stats(r.total.clone());
        println!(
            "| restart→first result, {name:<10} ms     | {:>11.2} | {:>11.2} | {:>11.2} |                 |",
            s.median, s.p10, s.p90
        );
    }
    println!("max RSS (VmHWM): {rss}");
}
