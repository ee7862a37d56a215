//! `tollgate serve` under load, the real binary on 127.0.0.1 (issue 15 §9, the parts the server
//! has so far): idle RSS on an empty store and with 10,000 parked runs, and request latency —
//! health, an authenticated no-op (`whoami`: token read + signature check), a page of 100
//! pending approvals out of 10,000 (first and middle page), and a run's detail. Latencies are
//! client round trips on loopback, so they bound the server time from above. One run measures
//! everything side by side; the numbers go to BENCHMARKS.md.
//!
//! `cargo bench -p tollgate --bench serve [-- --parked N --requests N]`

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_store::audit::Signer;
use tollgate_store::{Commit, Durability, SqliteStore, Store};

#[path = "../../../tests/support/parked_runs.rs"]
mod parked_runs;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn tollgate(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_DATA_DIR", data)
        .env("HOME", data.join("home"))
        .output()
        .expect("tollgate runs")
}

/// A started `tollgate serve` and its URL; killed on drop.
struct Server(Child, String);

impl Server {
    fn start(dir: &Path) -> Server {
        let config = dir.join("server.toml");
        std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[limits]\nrequests_per_minute = 1000000\n").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("TOLLGATE_DATA_DIR", dir.join("data"))
            .env("HOME", dir.join("home"))
            .env("TOLLGATE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split("listening on ").nth(1).and_then(|r| r.split(' ').next()).expect(&line).to_string();
        Server(child, url)
    }

    /// Resident set size, from /proc.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` runs, each waiting on one pending approval, written straight into the store: created
/// from `now` on, one a millisecond, their approvals expiring a year later, so the server's
/// expiry timer leaves them pending for the whole run.
async fn park(data: &Path, n: usize, now: i64) {
    let signer = Signer::load(&data.join("audit-signing.key")).unwrap();
    let store = Arc::new(SqliteStore::open(&data.join("tollgate.db"), Some(signer)).await.unwrap());
    let mut approvals = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("run_bench{i:07}");
        let at = now + i as i64;
        store.create_run(&parked_runs::waiting_run(&id, at), &[]).await.unwrap();
        approvals.push(parked_runs::pending_approval(&format!("ap_bench{i:07}"), &id, 1, at, now + 86_400_000 * 365));
    }
    for chunk in approvals.chunks(1000) {
        let commit = Commit { new_approvals: chunk.to_vec(), durability: Durability::Immediate, ..Commit::default() };
        store.commit(commit).await.unwrap();
    }
    store.close().await;
}

/// p50 and p99 of `requests` GETs of `url`, in milliseconds.
async fn latency(c: &reqwest::Client, url: &str, token: &str, requests: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let resp = c.get(url).bearer_auth(token).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        let _ = resp.bytes().await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
    (at(0.50), at(0.99))
}

fn main() {
    let parked = arg("--parked", 10_000);
    let requests = arg("--requests", 500);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let made = tollgate(&data, &["tokens", "create", "--name", "bench", "--role", "auditor"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let c = reqwest::Client::new();

    let idle_empty = {
        let server = Server::start(dir.path());
        std::thread::sleep(Duration::from_secs(1));
        server.rss_mib()
    };
    let started = Instant::now();
    let now = tollgate_runtime::now_ms();
    rt.block_on(park(&data, parked, now));
    let parking = started.elapsed();

    let server = Server::start(dir.path());
    std::thread::sleep(Duration::from_secs(1));
    let idle_parked = server.rss_mib();
    let base = server.1.clone();
    let rows = rt.block_on(async {
        let first = format!("{base}/v1/approvals?limit=100");
        let page: Value = c.get(&first).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(page["approvals"].as_array().map(Vec::len), Some(100.min(parked)));
        let middle =
            format!("{base}/v1/approvals?limit=100&after={}.ap_bench{:07}", now + (parked / 2) as i64, parked / 2);
        let run = format!("{base}/v1/runs/run_bench{:07}", parked / 2);
        // Full pages, or the numbers would time something else (an expired store, a bad cursor).
        let count = |page: Value| page["approvals"].as_array().map_or(0, Vec::len);
        let full = |url: String| {
            let c = c.clone();
            let token = token.clone();
            async move { count(c.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()) }
        };
        let want = 100.min(parked / 2);
        assert_eq!(full(middle.clone()).await, want, "the middle page");
        let measured = vec![
            ("GET /healthz (no token)", latency(&c, &format!("{base}/healthz"), &token, requests).await),
            ("GET /v1/whoami (token check)", latency(&c, &format!("{base}/v1/whoami"), &token, requests).await),
            ("GET /v1/approvals?limit=100, first page", latency(&c, &first, &token, requests).await),
            ("GET /v1/approvals?limit=100, middle page", latency(&c, &middle, &token, requests).await),
            ("GET /v1/runs/{id}", latency(&c, &run, &token, requests).await),
        ];
        assert_eq!(full(middle.clone()).await, want, "still pending after the requests");
        measured
    });
    let after_load = server.rss_mib();
    println!("tollgate serve, release build, loopback, {requests} sequential requests each");
    println!("parked runs with one pending approval each: {parked} (written in {:.1} s)", parking.as_secs_f64());
    println!("| measure | value |");
    println!("|---|---|");
    println!("| idle RSS, empty store | {idle_empty:.1} MiB |");
    println!("| idle RSS, {parked} parked runs | {idle_parked:.1} MiB |");
    println!("| RSS after the requests below | {after_load:.1} MiB |");
    for (what, (p50, p99)) in rows {
        println!("| {what} | p50 {p50:.2} ms, p99 {p99:.2} ms |");
    }
}
