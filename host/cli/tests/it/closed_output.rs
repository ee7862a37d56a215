//! A reader that goes away (`tollgate runs list | head -3`, `tollgate run … | true`) ends the
//! command with exit 0 and no panic, and a run being advanced is left exactly as a kill -9 at
//! the same moment leaves it: the same rows, and resumable to the same end.
//!
//! A closed stdout is made deterministic: the pipe's read end is closed before the process
//! starts (the first write fails), or right after the line that precedes a slow tool call (the
//! next write, `ToolFinished`, fails — the moment of the `call_finished` pause point, when the
//! call ran and its result is not yet durable).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one `tollgate` process may take here.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// One agent: a slow `echo.slow_sum` call (long enough for the test to close the pipe while it
/// runs), then an answer.
const TURNS: &str = r#"
[[turns]]
agent = "worker"
text = "Summing."
[[turns.tool_calls]]
name = "echo__slow_sum"
input = { n = 1500000000 }

[[turns]]
agent = "worker"
text = "The sum is computed."
"#;

struct Fixture {
    dir: tempfile::TempDir,
    workflow: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let echo = crate::built_plugins::path("echo").canonicalize().expect("echo plugin");
    let workflow = format!(
        r#"
name = "closed-output"
version = "1.0.0"
entry = "worker"
goal = "Sum."

[plugins.echo]
source = "{}"

[plugins.echo.limits]
fuel = 1000000000000
timeout = "5m"

[agents.worker]
model = "scripted:turns.toml"
instructions = "Sum."
tools = ["echo.slow_sum"]
"#,
        echo.display()
    );
    std::fs::write(dir.path().join("workflow.toml"), workflow).expect("write workflow");
    std::fs::write(dir.path().join("turns.toml"), TURNS).expect("write turns");
    let workflow = dir.path().join("workflow.toml");
    Fixture { dir, workflow }
}

impl Fixture {
    fn command(&self, data: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(args)
            .env("TOLLGATE_DATA_DIR", data)
            .env("TOLLGATE_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("TOLLGATE_TEST_PAUSE_AT")
            .stdin(Stdio::null());
        cmd
    }

    fn workflow(&self) -> &str {
        self.workflow.to_str().expect("UTF-8 path")
    }

    /// `tollgate ARGS` to the end, with stdout and stderr captured.
    fn output(&self, data: &Path, args: &[&str]) -> (Option<i32>, String, String) {
        let mut child =
            self.command(data, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn tollgate");
        let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
        let code = wait_bounded(&mut child, args);
        (code, out.join().unwrap_or_default(), err.join().unwrap_or_default())
    }

    /// `tollgate ARGS` whose stdout is a pipe nobody reads: its read end is closed before the
    /// process starts. Returns the exit status and stderr.
    fn with_stdout_closed(&self, data: &Path, args: &[&str]) -> (Option<i32>, String) {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut child = self.command(data, args).stdout(writer).stderr(Stdio::piped()).spawn().expect("spawn tollgate");
        let err = drain(child.stderr.take());
        let code = wait_bounded(&mut child, args);
        (code, err.join().unwrap_or_default())
    }

    fn show(&self, data: &Path, id: &str) -> Value {
        let (code, out, err) = self.output(data, &["runs", "show", id, "--json"]);
        assert_eq!(code, Some(0), "runs show: {err}");
        serde_json::from_str(&out).expect("runs show --json prints JSON")
    }

    fn only_run(&self, data: &Path) -> String {
        let (code, out, err) = self.output(data, &["runs", "list", "--json"]);
        assert_eq!(code, Some(0), "runs list: {err}");
        let runs: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
        runs[0]["id"].as_str().expect("run id").to_string()
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn wait_bounded(child: &mut Child, args: &[&str]) -> Option<i32> {
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for tollgate") {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`tollgate {}` did not finish within {PROCESS_TIMEOUT:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_clean_exit(what: &str, code: Option<i32>, stderr: &str) {
    assert_eq!(code, Some(0), "{what} with stdout closed: exit 0, as Unix tools do; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{what}: {stderr}");
}

/// What the store says about a run, without ids and times: must be the same after a closed
/// pipe as after a kill -9 at the same moment.
fn shape(show: &Value) -> Value {
    let calls: Vec<Value> = show["tool_calls"]
        .as_array()
        .expect("tool_calls")
        .iter()
        .map(|c| {
            serde_json::json!({
                "step": c["step"], "index": c["index"], "tool": c["tool"], "status": c["status"],
                "input": c["input"], "has_result": !c["result"].is_null(),
            })
        })
        .collect();
    let steps: Vec<Value> =
        show["steps"].as_array().expect("steps").iter().map(|s| serde_json::json!([s["step"], s["agent"]])).collect();
    serde_json::json!({
        "status": show["run"]["status"],
        "steps": show["run"]["counters"]["steps"],
        "tool_calls": show["run"]["counters"]["tool_calls"],
        "step_rows": steps,
        "calls": calls,
    })
}

#[test]
fn listing_commands_end_with_exit_0_when_the_reader_is_gone() {
    let fx = fixture();
    let data = fx.dir.path().join("data");
    // A finished run, so every listing has something to print.
    let (code, _, err) = fx.output(&data, &["run", fx.workflow()]);
    assert_eq!(code, Some(0), "{err}");
    let id = fx.only_run(&data);
    for args in [
        vec!["runs", "list"],
        vec!["runs", "list", "--json"],
        vec!["runs", "show", &id],
        vec!["runs", "show", &id, "--json"],
        vec!["approvals", "list", "--all"],
        vec!["audit", "verify"],
        vec!["audit", "export"],
    ] {
        let (code, stderr) = fx.with_stdout_closed(&data, &args);
        assert_clean_exit(&args.join(" "), code, &stderr);
    }
}

/// `tollgate run … | true`: the first line meets a closed pipe right after the run was
/// created; the run is left where it was, says how to continue, and resumes to the end.
#[test]
fn run_into_a_closed_pipe_stops_where_it_is_and_resumes() {
    let fx = fixture();
    let data = fx.dir.path().join("data");
    let (code, stderr) = fx.with_stdout_closed(&data, &["run", fx.workflow()]);
    assert_clean_exit("run", code, &stderr);
    let id = fx.only_run(&data);
    assert!(stderr.contains(&format!("tollgate runs resume {id}")), "says how to continue: {stderr}");
    let left = fx.show(&data, &id);
    assert_eq!(left["run"]["status"], "running", "{left}");
    assert_eq!(left["run"]["counters"]["steps"], 0, "nothing ran after the failed write: {left}");

    let (code, out, err) = fx.output(&data, &["runs", "resume", &id]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let done = fx.show(&data, &id);
    assert_eq!(done["run"]["status"], "completed", "{done}");
    assert_eq!(done["run"]["counters"]["tool_calls"], 1, "{done}");
}

/// The pipe closes while a tool call runs: the process ends at the next write (the call's
/// `ToolFinished` line, before its result is durable) and leaves the very rows a kill -9 at the
/// `call_finished` pause point leaves; both resume to the same completed run.
#[test]
fn a_pipe_closed_mid_step_leaves_the_run_as_a_kill_9_would() {
    let fx = fixture();

    let closed = fx.dir.path().join("closed");
    let mut child = fx
        .command(&closed, &["run", fx.workflow()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tollgate");
    let stderr = drain(child.stderr.take());
    let mut lines = BufReader::new(child.stdout.take().expect("stdout pipe")).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("the gate line comes before stdout ends").expect("read stdout");
        let gate = line.contains("echo.slow_sum") && line.contains("gate: allow");
        seen.push(line);
        if gate {
            break;
        }
    }
    // The call now runs for a while; the reader goes away before it returns.
    drop(lines);
    let code = wait_bounded(&mut child, &["run"]);
    let stderr = stderr.join().unwrap_or_default();
    assert_clean_exit("run (closed mid-step)", code, &stderr);

    let killed = fx.dir.path().join("killed");
    let mut child = fx
        .command(&killed, &["run", fx.workflow()])
        .env("TOLLGATE_TEST_PAUSE_AT", "call_finished:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tollgate");
    let mut err_lines = BufReader::new(child.stderr.take().expect("stderr pipe")).lines();
    let paused = err_lines.any(|l| l.is_ok_and(|l| l.contains("paused at call_finished#1")));
    assert!(paused, "the armed run never reached call_finished");
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    let (closed_id, killed_id) = (fx.only_run(&closed), fx.only_run(&killed));
    let (after_close, after_kill) = (fx.show(&closed, &closed_id), fx.show(&killed, &killed_id));
    assert_eq!(shape(&after_close), shape(&after_kill), "closed pipe:\n{after_close}\nkill -9:\n{after_kill}");
    assert_eq!(after_close["run"]["status"], "running");

    let mut ends = Vec::new();
    for (data, id) in [(&closed, &closed_id), (&killed, &killed_id)] {
        let (code, out, err) = fx.output(data, &["runs", "resume", id]);
        assert_eq!(code, Some(0), "{out}\n{err}");
        ends.push(shape(&fx.show(data, id)));
    }
    assert_eq!(ends[0], ends[1]);
    assert_eq!(ends[0]["status"], "completed", "{}", ends[0]);
}
