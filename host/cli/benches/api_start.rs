//! A run started over the API against the same run started in-process (issue 15 §9: "a run
//! started over the API reaches its first tool call within 1.5× the in-process path"), side by
//! side in one run, alternating so machine noise lands on both.
//!
//! - **in-process**: this process opens the workflow's runtime on the store (plugins from the
//!   warm compilation cache), starts a run and advances it; the time is taken when the
//!   observer sees the first tool call finish.
//! - **API**: `POST /v1/runs` to a release `tollgate serve` on the same data dir (the deployed
//!   snapshot of the same workflow); the server opens the deployment, starts the run, its
//!   worker takes the run's lease and advances it. The time is taken when `GET /v1/runs/{id}`
//!   first shows the tool call done (polled every millisecond over loopback, so the figure
//!   bounds the server's time from above).
//!
//! Both paths include opening the runtime (reading and checking the workflow and its
//! components). The workflow: one agent whose scripted first turn makes one `echo` call.
//!
//! `cargo bench -p tollgate --bench api_start [-- --runs N]`

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_runtime::{Event, Observer, RunOptions, Runtime};
use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_store::SqliteStore;
use tollgate_store::audit::Signer;

const WORKFLOW: &str = r#"
name = "bench-start"
version = "1.0.0"
entry = "ops"
goal = "Echo once."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Echo."
tools = ["echo.*"]

[plugins.echo]
source = "plugins/echo.wasm"
"#;

const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Echo it."
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "hi" }

[[turns]]
agent = "ops"
text = "Done."
"#;

#[path = "../../../tests/support/built_plugins.rs"]
mod built_plugins;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn tollgate(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env("TOLLGATE_DATA_DIR", dir.join("data"))
        .env("TOLLGATE_CACHE_DIR", dir.join("cache"))
        .env("HOME", dir.join("home"))
        .output()
        .expect("tollgate runs");
    assert!(out.status.success(), "tollgate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Notes when the first tool call finished.
struct FirstCall(Mutex<Option<Instant>>);

impl Observer for FirstCall {
    fn event(&self, event: &Event) {
        if matches!(event, Event::ToolFinished { .. }) {
            let mut at = self.0.lock().unwrap();
            at.get_or_insert_with(Instant::now);
        }
    }
}

fn percentile(times: &mut [f64], q: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1).min(times.len() - 1)]
}

fn main() {
    let runs = arg("--runs", 30);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("flows/plugins")).unwrap();
    std::fs::copy(built_plugins::path("echo"), root.join("flows/plugins/echo.wasm")).unwrap();
    std::fs::write(root.join("flows/workflow.toml"), WORKFLOW).unwrap();
    std::fs::write(root.join("flows/turns.toml"), TURNS).unwrap();
    tollgate(root, &["workflows", "deploy", "flows/workflow.toml"]);
    let operator = tollgate(root, &["tokens", "create", "--name", "ops", "--role", "operator"]);
    let auditor = tollgate(root, &["tokens", "create", "--name", "audit", "--role", "auditor"]);
    std::fs::write(root.join("server.toml"), "listen = \"127.0.0.1:0\"\n[limits]\nrequests_per_minute = 1000000\n")
        .unwrap();
    let mut server: Child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config", "server.toml"])
        .current_dir(root)
        .env("TOLLGATE_DATA_DIR", root.join("data"))
        .env("TOLLGATE_CACHE_DIR", root.join("cache"))
        .env("HOME", root.join("home"))
        .env("TOLLGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.split("listening on ").nth(1).and_then(|r| r.split(' ').next()).expect(&line).to_string();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (mut api, mut local) = (Vec::new(), Vec::new());
    rt.block_on(async {
        let c = reqwest::Client::new();
        let signer = Signer::load(&root.join("data/audit-signing.key")).unwrap();
        let store = Arc::new(SqliteStore::open(&root.join("data/tollgate.db"), Some(signer)).await.unwrap());
        let config = SandboxConfig { cache_dir: Some(root.join("cache")), ..SandboxConfig::default() };
        let sandbox = Sandbox::new(config).unwrap();
        for i in 0..runs + 2 {
            // In-process.
            let started = Instant::now();
            let workflow = tollgate_workflow::load(&root.join("flows/workflow.toml")).unwrap();
            let runtime = Runtime::open(store.clone(), &sandbox, workflow, RunOptions::default()).await.unwrap();
            let id = runtime.start(None).await.unwrap();
            let first = FirstCall(Mutex::new(None));
            runtime.advance(&id, &first).await.unwrap();
            let in_process = first.0.lock().unwrap().expect("a tool call").duration_since(started);
            // Over the API.
            let started = Instant::now();
            let made: Value = c
                .post(format!("{base}/v1/runs"))
                .bearer_auth(&operator)
                .json(&json!({"workflow": "bench-start"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let url = format!("{base}/v1/runs/{}", made["id"].as_str().expect("started"));
            let over_api = loop {
                let run: Value = c.get(&url).bearer_auth(&auditor).send().await.unwrap().json().await.unwrap();
                if run["tool_calls"].as_array().is_some_and(|calls| calls.iter().any(|c| c["status"] == "done")) {
                    break started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            // The first two of each are warm-up.
            if i >= 2 {
                local.push(in_process.as_secs_f64() * 1000.0);
                api.push(over_api.as_secs_f64() * 1000.0);
            }
        }
    });
    let _ = server.kill();
    let _ = server.wait();
    let (l50, a50) = (percentile(&mut local, 0.5), percentile(&mut api, 0.5));
    let (l90, a90) = (percentile(&mut local, 0.9), percentile(&mut api, 0.9));
    println!("start → first tool call done, {runs} runs each, alternating, release build");
    println!("| path | p50 | p90 |");
    println!("|---|---|---|");
    println!("| in-process (open runtime, start, advance) | {l50:.1} ms | {l90:.1} ms |");
    println!("| over the API (POST /v1/runs → worker, lease → call done, polled) | {a50:.1} ms | {a90:.1} ms |");
    println!("| ratio API / in-process | {:.2}× | {:.2}× |", a50 / l50, a90 / l90);
}
