//! Per-call cost of plugins in each language, side by side in one process.
//!
//! Run: `cargo bench -p tollgate-pluginkit --bench per_call`. Builds the `tollgate new plugin`
//! template of each language (Rust; Python with componentize-py; JavaScript with StarlingMonkey,
//! the default engine, and with QuickJS) through `tollgate_pluginkit::build`, then measures for
//! each component: its size; the compile time with no cache; the load time from the compilation
//! cache in a fresh `Sandbox` (a restarted host); the first call after that load; the p50 /
//! p90 of a trivial call, each on a fresh instance (the default); and the p50 of the same call
//! on a warm instance (`instances = "per-run"`: a `WarmInstances` set, calls in sequence, so
//! each reuses the instance the previous one left). Rounds of calls are interleaved across
//! languages, and fresh and warm alternate within each round, so load drift hits all of them
//! alike. Prints numbers; asserts only that every call succeeds and that warm calls reused an
//! instance. See BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tollgate_pluginkit::{BuildOptions, Lang};
use tollgate_sandbox::{CallContext, CallOutcome, Grants, Plugin, Sandbox, SandboxConfig, WarmInstances};

const ROUNDS: usize = 10;
const CALLS_PER_ROUND: usize = 40;

struct Subject {
    label: &'static str,
    tool: &'static str,
    input: &'static str,
    component: PathBuf,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn build(root: &Path, name: &str, lang: Lang, quickjs: bool) -> PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    tollgate_pluginkit::new_project(&dir, name, lang).expect("template");
    if quickjs {
        let manifest = dir.join("package.json");
        let text = std::fs::read_to_string(&manifest).expect("package.json");
        let text = text.replace("\"capabilities\": []", "\"capabilities\": [],\n    \"engine\": \"quickjs\"");
        std::fs::write(&manifest, text).expect("package.json");
    }
    let options =
        BuildOptions { toolchains: Some(target_dir().join("tollgate-toolchains")), ..BuildOptions::default() };
    let started = Instant::now();
    let built = tollgate_pluginkit::build(&dir, &options).unwrap_or_else(|e| panic!("build {name}: {e}"));
    eprintln!("  built {name} in {:.1} s", started.elapsed().as_secs_f64());
    built.component
}

fn sandbox(cache: Option<&Path>) -> Sandbox {
    Sandbox::new(SandboxConfig { cache_dir: cache.map(Path::to_owned), ..SandboxConfig::default() }).expect("sandbox")
}

fn ctx() -> CallContext {
    CallContext { run_id: "bench".into(), call_id: "c".into(), idempotency_key: "bench:0:0".into() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn checked(out: CallOutcome, s: &Subject) -> CallOutcome {
    if let Err(e) = &out.result {
        panic!("{}: {e}", s.label);
    }
    out
}

async fn call(plugin: &Plugin, s: &Subject) -> (Duration, u64) {
    let started = Instant::now();
    let out = plugin.call(s.tool, s.input, &ctx()).await;
    let took = started.elapsed();
    (took, checked(out, s).report.fuel_used)
}

async fn warm_call(warm: &WarmInstances, s: &Subject) -> Duration {
    let started = Instant::now();
    let out = warm.call(s.tool, s.input, &ctx()).await;
    let took = started.elapsed();
    assert!(checked(out, s).report.reused_instance, "{}: a warm call instantiated", s.label);
    took
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let root = target_dir().join("pluginkit-bench");
    eprintln!("per_call: building the templates (toolchains install on first use)…");
    let subjects = vec![
        Subject {
            label: "Rust",
            tool: "greet",
            input: r#"{"name":"Ada"}"#,
            component: build(&root, "bench-rs", Lang::Rust, false),
        },
        Subject {
            label: "Python (componentize-py)",
            tool: "greet",
            input: r#"{"name":"Ada"}"#,
            component: build(&root, "bench-py", Lang::Python, false),
        },
        Subject {
            label: "JS (StarlingMonkey, default)",
            tool: "slugify",
            input: r#"{"text":"Hello World"}"#,
            component: build(&root, "bench-js", Lang::Js, false),
        },
        Subject {
            label: "JS (QuickJS)",
            tool: "slugify",
            input: r#"{"text":"Hello World"}"#,
            component: build(&root, "bench-qjs", Lang::Js, true),
        },
    ];

    rt.block_on(async {
        let cache = tempfile::tempdir().expect("cache dir");
        let mut rows = Vec::new();
        let mut loaded = Vec::new();
        for s in &subjects {
            let bytes = std::fs::read(&s.component).expect("component");
            // Compile with no cache, then compile into the cache, then "restart": a fresh
            // Sandbox that finds the artifact.
            let started = Instant::now();
            sandbox(None).load(&bytes, Grants::new()).await.expect("load");
            let compile = started.elapsed();
            sandbox(Some(cache.path())).load(&bytes, Grants::new()).await.expect("load into cache");
            let restarted = sandbox(Some(cache.path()));
            let started = Instant::now();
            let plugin = restarted.load(&bytes, Grants::new()).await.expect("load from cache");
            let cache_load = started.elapsed();
            let (first, _) = call(&plugin, s).await;
            rows.push((bytes.len(), compile, cache_load, first));
            loaded.push((restarted, plugin));
        }
        // One warm set per language, primed so that every measured warm call reuses.
        let mut warm = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            let set = loaded[i].1.warm_instances();
            checked(set.call(s.tool, s.input, &ctx()).await, s);
            warm.push(set);
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        let mut warm_samples: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        let mut fuel = vec![0u64; subjects.len()];
        for _ in 0..ROUNDS {
            for (i, s) in subjects.iter().enumerate() {
                for _ in 0..CALLS_PER_ROUND {
                    let (took, f) = call(&loaded[i].1, s).await;
                    samples[i].push(ms(took));
                    fuel[i] = f;
                    warm_samples[i].push(ms(warm_call(&warm[i], s).await));
                }
            }
        }
        println!(
            "\n| plugin | component | compile (no cache) | load from cache | first call after restart | call p50 (fresh instance) | call p90 | first / p50 | call p50 (warm instance) | fresh / warm | fuel per call |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (i, s) in subjects.iter().enumerate() {
            let (size, compile, cache_load, first) = rows[i];
            let p50 = quantile(&mut samples[i], 0.5);
            let p90 = quantile(&mut samples[i], 0.9);
            let warm_p50 = quantile(&mut warm_samples[i], 0.5);
            println!(
                "| {} | {:.1} MiB | {:.0} ms | {:.2} ms | {:.2} ms | {:.3} ms | {:.3} ms | {:.1}× | {:.3} ms | {:.1}× | {} |",
                s.label,
                size as f64 / (1 << 20) as f64,
                ms(compile),
                ms(cache_load),
                ms(first),
                p50,
                p90,
                ms(first) / p50,
                warm_p50,
                p50 / warm_p50,
                fuel[i],
            );
        }
        let n = ROUNDS * CALLS_PER_ROUND;
        println!("\n{n} fresh and {n} warm calls per plugin ({ROUNDS} interleaved rounds of {CALLS_PER_ROUND} each).");
    });
}
