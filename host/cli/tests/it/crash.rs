//! The durability proof of the agent runtime: `tollgate` is killed with SIGKILL at every pause
//! point the campaign-review happy path reaches, in every process of that path, the run is
//! resumed to the end, and the side effects are counted at the vendor stand-ins.
//!
//! The happy path is five processes: `run` (parks at the pause approval, exit 3), `approvals
//! approve`, `runs resume` (the CRM note runs, the email parks; exit 3), `approvals approve`,
//! `runs resume` (exit 0). Scenario `k:point#n` sets `TOLLGATE_TEST_PAUSE_AT=point:n` on the
//! k-th process only, waits for its `paused at` line, kills it (`Child::kill` is SIGKILL) and
//! then drives the run to completion without knowing where it stopped: approve whatever is
//! pending, `runs resume`, repeat. For each (process, point), n counts up from 1 until the
//! process ends without pausing, so every visit of every pause point is a kill point once.
//!
//! The stand-ins do not deduplicate (`Idempotency-Key` is ignored, as real SendGrid does): a
//! repeated request is a repeated effect. A call killed while in flight runs again only if its
//! plugin declares it idempotent (the campaign update sets values; the CRM note looks for an
//! earlier attempt's note first); the email is put before a person as "in doubt", and the
//! driver answers as an operator who checked the vendor would: run it again if SendGrid has no
//! record of it, mark it done if it has.
//!
//! After every scenario: the campaign paused, one email and one new CRM note at the stand-ins
//! (requests may repeat, effects may not); the two approvals of the happy path consumed, none
//! requested again, plus at most one in-doubt question, answered; the same tool-call rows,
//! counters and audit records as an uninterrupted run (the in-doubt question's records set
//! apart); the audit chain verifies; the run completed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_standins::{RecordedRequest, StandIns, Tokens};

const POINTS: [&str; 6] =
    ["turn_committed", "calls_claimed", "call_started", "call_finished", "results_committed", "approvals_settled"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proc {
    Run,
    Approve,
    Resume,
}

/// The happy path, one process each, with the exit status each ends with when not killed.
const HAPPY_PATH: [(Proc, i32); 5] =
    [(Proc::Run, 3), (Proc::Approve, 0), (Proc::Resume, 3), (Proc::Approve, 0), (Proc::Resume, 0)];

const CAMPAIGN: &str = "120210000000000101";
/// How long a process may take to reach its pause point, or to finish.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Enumeration guard: a pause point visited more often than this means the loop is running away.
const MAX_VISITS: u32 = 24;
/// Resumes after a kill before the run must have completed (the happy path needs two).
const MAX_RESUMES: usize = 6;

/// The campaign-review example with its plugin sources made absolute, and a shared cache of
/// compiled components (compiling once, not once per process).
struct Fixture {
    workflow: PathBuf,
    /// `fixtures/crash/gated_pause.toml`: a human gate step, then the campaign update step.
    gated: PathBuf,
    cache: PathBuf,
    dir: tempfile::TempDir,
}

fn plugin(name: &str) -> PathBuf {
    crate::built_plugins::path(name).canonicalize().expect("plugin path")
}

fn fixture() -> Fixture {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/campaign-review");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut workflow = std::fs::read_to_string(example.join("workflow.toml")).expect("example workflow");
    for name in ["ads", "email", "crm"] {
        let relative = format!("\"../../target/plugins/{name}.wasm\"");
        assert!(workflow.contains(&relative), "the example no longer loads {relative}");
        workflow = workflow.replace(&relative, &format!("\"{}\"", plugin(name).display()));
    }
    let path = dir.path().join("workflow.toml");
    std::fs::write(&path, workflow).expect("write workflow");
    std::fs::copy(example.join("turns.toml"), dir.path().join("turns.toml")).expect("copy turns");
    let gated = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crash/gated_pause.toml");
    let gated_text = std::fs::read_to_string(gated).expect("gated_pause.toml");
    let gated = dir.path().join("gated_pause.toml");
    std::fs::write(&gated, gated_text.replace("@ADS_WASM@", &plugin("ads").display().to_string())).expect("write");
    Fixture { workflow: path, gated, cache: dir.path().join("cache"), dir }
}

/// Where scenario `k:point#n` kills: the `n`-th visit of `point` in happy-path process `process`.
#[derive(Clone, Copy, Debug)]
struct Kill {
    process: usize,
    point: &'static str,
    n: u32,
}

impl Kill {
    fn name(&self) -> String {
        let proc = format!("{:?}", HAPPY_PATH[self.process].0).to_lowercase();
        format!("{}:{proc} {}#{}", self.process + 1, self.point, self.n)
    }
}

/// What one scenario left behind, for the summary and the comparison with the baseline.
#[derive(Clone, Debug)]
struct Report {
    name: String,
    /// The scenario's kill point, if it had one and the process reached it.
    killed: Option<Kill>,
    resumes: usize,
    /// Requests that reached Meta, SendGrid and HubSpot.
    requests: [usize; 3],
    /// In-doubt questions answered: run again (the vendor had no record), marked done (it had).
    in_doubt: InDoubt,
    /// Requests per tool call (see [`call_of`]).
    per_call: BTreeMap<String, usize>,
    shape: Shape,
}

/// How a scenario's in-doubt questions were answered.
#[derive(Clone, Copy, Debug, Default)]
struct InDoubt {
    retried: usize,
    marked_done: usize,
}

/// What the store says about the finished run; must equal the uninterrupted run's.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    /// `(step, index, tool, status)` of every tool-call row.
    calls: Vec<(u64, u64, String, String)>,
    /// `(steps, tool_calls)` counters.
    counters: (u64, u64),
    /// Audit records of the run, by kind.
    audit: BTreeMap<String, usize>,
}

/// Runs the `tollgate` binary against one data dir and one set of stand-ins.
struct Cli<'a> {
    fx: &'a Fixture,
    data: PathBuf,
    upstreams: Vec<String>,
    tokens: Tokens,
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl<'a> Cli<'a> {
    fn new(fx: &'a Fixture, standins: &StandIns, data: &Path, tokens: Tokens) -> Self {
        let upstreams = vec![
            format!("graph.facebook.com={}", standins.meta.base_url()),
            format!("api.sendgrid.com={}", standins.sendgrid.base_url()),
            format!("api.hubapi.com={}", standins.hubspot.base_url()),
        ];
        Cli { fx, data: data.to_path_buf(), upstreams, tokens }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(args)
            .env("TOLLGATE_DATA_DIR", &self.data)
            .env("TOLLGATE_CACHE_DIR", &self.fx.cache)
            .env("META_ACCESS_TOKEN", &self.tokens.meta)
            .env("SENDGRID_API_KEY", &self.tokens.sendgrid)
            .env("HUBSPOT_TOKEN", &self.tokens.hubspot)
            .env("USER", "crash-test")
            .env_remove("TOLLGATE_TEST_PAUSE_AT")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs to the end, bounded by [`PROCESS_TIMEOUT`].
    fn run(&self, args: &[&str]) -> Result<Finished, String> {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning tollgate: {e}"))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let code = wait_bounded(&mut child, PROCESS_TIMEOUT, args)?;
        let text = |h: std::thread::JoinHandle<String>| h.join().unwrap_or_default();
        Ok(Finished { code, stdout: text(stdout), stderr: text(stderr) })
    }

    fn expect(&self, args: &[&str], code: i32) -> Result<Finished, String> {
        let out = self.run(args)?;
        if out.code != Some(code) {
            return Err(format!(
                "`tollgate {}` exited {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
                args.join(" "),
                out.code,
                out.stdout,
                out.stderr
            ));
        }
        Ok(out)
    }

    fn json(&self, args: &[&str]) -> Result<Value, String> {
        let out = self.expect(args, 0)?;
        serde_json::from_str(&out.stdout).map_err(|e| format!("`tollgate {}` printed no JSON: {e}", args.join(" ")))
    }

    /// Runs with the pause point `point:n` armed. `Ok(None)`: it paused and was killed with
    /// SIGKILL; `Ok(Some(code))`: it exited with `code` without reaching the point.
    fn run_armed(&self, args: &[&str], point: &str, n: u32) -> Result<Option<i32>, String> {
        let mut child = self
            .command(args)
            .env("TOLLGATE_TEST_PAUSE_AT", format!("{point}:{n}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning tollgate: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let wanted = format!("tollgate: paused at {point}#{n}");
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim() == wanted => {
                    child.kill().map_err(|e| format!("kill -9: {e}"))?;
                    let status = child.wait().map_err(|e| format!("reaping: {e}"))?;
                    return match status.code() {
                        None => Ok(None),
                        Some(c) => Err(format!("exited {c} although it was paused at {point}#{n} and killed")),
                    };
                }
                Ok(line) => seen.push(line),
                // Standard error closed: the process ended without pausing.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let code = wait_bounded(&mut child, PROCESS_TIMEOUT, args)?;
                    return code.map(Some).ok_or_else(|| format!("died by a signal before {point}#{n}"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("no `{wanted}` within {PROCESS_TIMEOUT:?}; stderr:\n{}", seen.join("\n")));
                }
            }
        }
    }
}

fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn wait_bounded(child: &mut Child, timeout: Duration, args: &[&str]) -> Result<Option<i32>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(|e| format!("waiting for tollgate: {e}"))? {
            Some(status) => return Ok(status.code()),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`tollgate {}` did not finish within {timeout:?}", args.join(" ")));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn scenario_name(kill: Option<Kill>) -> String {
    kill.map(|k| k.name()).unwrap_or_else(|| "baseline (no kill)".into())
}

/// Runs the happy path, killing as `kill` says (never, for the baseline), drives the run to
/// completion and checks it. Sets `*killed` as soon as it is known whether the kill happened.
fn scenario(fx: &Fixture, kill: Option<Kill>, killed: &mut bool) -> Result<Report, String> {
    run_scenario(fx, kill, killed).map_err(|e| format!("{}: {e}", scenario_name(kill)))
}

fn run_scenario(fx: &Fixture, kill: Option<Kill>, killed: &mut bool) -> Result<Report, String> {
    let tokens = Tokens::default();
    let (standins, _background) = StandIns::start_blocking(tokens.clone()).map_err(|e| format!("stand-ins: {e}"))?;
    for vendor in [&standins.meta, &standins.sendgrid, &standins.hubspot] {
        vendor.set_deduplicate(false);
    }
    let data = tempfile::tempdir_in(fx.dir.path()).map_err(|e| format!("data dir: {e}"))?;
    let cli = Cli::new(fx, &standins, data.path(), tokens);
    let workflow = fx.workflow.to_str().ok_or("workflow path is not UTF-8")?;
    let mut run_id = String::new();
    let mut resumes = 0;
    let mut in_doubt = InDoubt::default();
    for (k, (proc, code)) in HAPPY_PATH.iter().enumerate() {
        let armed = kill.filter(|kill| kill.process == k);
        let mut args: Vec<String> = match proc {
            Proc::Run => {
                let mut args = vec!["run".to_string(), workflow.to_string()];
                for u in &cli.upstreams {
                    args.extend(["--upstream".to_string(), u.clone()]);
                }
                args
            }
            Proc::Resume => vec!["runs".into(), "resume".into(), run_id.clone()],
            Proc::Approve => {
                let pending = pending_approvals(&cli, &run_id)?;
                ensure!(pending.len() == 1, "happy path: expected one pending approval, found {pending:?}");
                vec!["approvals".into(), "approve".into(), pending[0].clone()]
            }
        };
        if *proc == Proc::Approve {
            args.extend(["--as".into(), "crash-test".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exit = match armed {
            None => cli.expect(&args, *code)?.code,
            Some(kill) => cli.run_armed(&args, kill.point, kill.n)?,
        };
        if run_id.is_empty() {
            run_id = only_run(&cli)?;
        }
        if exit.is_none() {
            *killed = true;
            resumes = drive_to_completion(&cli, &standins, &run_id, &mut in_doubt)?;
            break;
        }
        ensure!(exit == Some(*code), "`tollgate {}` ended without pausing but exited {exit:?}", args.join(" "));
    }
    let shape = check(&cli, &standins, &run_id)?;
    let all: Vec<(usize, RecordedRequest)> = [&standins.meta, &standins.sendgrid, &standins.hubspot]
        .iter()
        .enumerate()
        .flat_map(|(vendor, s)| s.requests().into_iter().map(move |r| (vendor, r)))
        .collect();
    let mut requests = [0; 3];
    let mut per_call = BTreeMap::new();
    for (vendor, r) in &all {
        requests[*vendor] += 1;
        if let Some(call) = call_of(*vendor, r) {
            *per_call.entry(call).or_default() += 1;
        }
    }
    let killed = kill.filter(|_| *killed);
    Ok(Report { name: scenario_name(kill), killed, resumes, requests, in_doubt, per_call, shape })
}

/// The one run in the scenario's store (a resume must never start another).
fn only_run(cli: &Cli) -> Result<String, String> {
    let runs = cli.json(&["runs", "list", "--json"])?;
    let runs = runs.as_array().ok_or("runs list is not an array")?;
    ensure!(runs.len() == 1, "expected exactly one run in the store, found {}", runs.len());
    runs[0]["id"].as_str().map(str::to_string).ok_or_else(|| "run without id".into())
}

fn pending_approvals(cli: &Cli, run_id: &str) -> Result<Vec<String>, String> {
    Ok(pending(cli, run_id)?.into_iter().map(|(id, _)| id).collect())
}

/// The run's pending approvals: id and kind (`call` or `in_doubt`).
fn pending(cli: &Cli, run_id: &str) -> Result<Vec<(String, String)>, String> {
    let list = cli.json(&["approvals", "list", "--json", "--run", run_id])?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["id"].as_str()?.to_string(), a["kind"].as_str()?.to_string())))
        .collect())
}

/// After a kill: answer whatever is pending and resume until the run completes. Calls are
/// approved; a call in doubt is run again only if SendGrid has no record of the email, and
/// marked done if it has — what an operator who checked the vendor's log would do.
fn drive_to_completion(cli: &Cli, standins: &StandIns, run_id: &str, in_doubt: &mut InDoubt) -> Result<usize, String> {
    for resumes in 0..=MAX_RESUMES {
        let show = cli.json(&["runs", "show", run_id, "--json"])?;
        let status = show["run"]["status"].as_str().unwrap_or_default().to_string();
        match status.as_str() {
            "completed" => return Ok(resumes),
            "running" | "waiting_approval" => {}
            other => return Err(format!("after {resumes} resumes the run is {other}: {}", show["run"])),
        }
        for (id, kind) in pending(cli, run_id)? {
            if kind == "in_doubt" && !standins.sendgrid_state().sent().is_empty() {
                let deny = ["approvals", "deny", &id, "--reason", "SendGrid accepted it", "--as", "crash-test"];
                cli.expect(&deny, 0)?;
                in_doubt.marked_done += 1;
                continue;
            }
            in_doubt.retried += usize::from(kind == "in_doubt");
            cli.expect(&["approvals", "approve", &id, "--as", "crash-test"], 0)?;
        }
        let out = cli.run(&["runs", "resume", run_id])?;
        ensure!(
            matches!(out.code, Some(0 | 3)),
            "`runs resume` exited {:?}\nstdout:\n{}\nstderr:\n{}",
            out.code,
            out.stdout,
            out.stderr
        );
        ensure!(
            out.code == Some(0) || !pending_approvals(cli, run_id)?.is_empty(),
            "`runs resume` parked the run with no approval pending: an approval was lost\nstdout:\n{}",
            out.stdout
        );
    }
    Err(format!("the run did not complete within {MAX_RESUMES} resumes"))
}

/// Which tool call a stand-in request belongs to: every attempt of a call sends exactly one of
/// these (the CRM note searches for an earlier attempt's note before creating one).
fn call_of(vendor: usize, r: &RecordedRequest) -> Option<String> {
    let path = r.path.as_str();
    let call = match (vendor, r.method.as_str()) {
        (0, "GET") if path.ends_with("/campaigns") => "ads.list_campaigns".to_string(),
        (0, "GET") if path.ends_with("/insights") => {
            format!("ads.campaign_insights {}", path.split('/').rev().nth(1).unwrap_or_default())
        }
        (0, "POST") => "ads.update_campaign".to_string(),
        (1, "POST") => "email.send_email".to_string(),
        (2, "POST") if path == "/crm/v3/objects/notes/search" => "crm.add_note".to_string(),
        _ => return None,
    };
    Some(call)
}

/// The durability assertions: effects at the stand-ins, approvals, store, audit chain.
fn check(cli: &Cli, standins: &StandIns, run_id: &str) -> Result<Shape, String> {
    // Meta: the campaign is paused, by exactly one applied update, whatever was retried.
    let campaign = standins.meta_state().campaign(CAMPAIGN).ok_or("campaign vanished")?;
    ensure!(campaign.status == "PAUSED", "campaign {CAMPAIGN} is {}", campaign.status);
    // Applied more than once only when retried: the update sets values, so a repeat changes
    // nothing (the plugin declares it idempotent); every attempt carried the same key.
    ensure!(standins.meta.side_effects() >= 1, "Meta applied no update");
    let keys = |s: &tollgate_standins::StandIn, method: &str| -> BTreeSet<Option<String>> {
        s.requests().into_iter().filter(|r| r.method == method).map(|r| r.idempotency_key).collect()
    };
    let meta_keys = keys(&standins.meta, "POST");
    ensure!(meta_keys.len() == 1 && !meta_keys.contains(&None), "Meta updates carried keys {meta_keys:?}");
    // SendGrid: one email accepted.
    let sent = standins.sendgrid_state().sent();
    ensure!(sent.len() == 1, "SendGrid accepted {} emails, expected 1", sent.len());
    ensure!(standins.sendgrid.side_effects() == 1, "SendGrid side effects: {}", standins.sendgrid.side_effects());
    ensure!(sent[0].to == ["paid-social@tollgate-demo.example"], "email went to {:?}", sent[0].to);
    let mail_keys = keys(&standins.sendgrid, "POST");
    ensure!(mail_keys.len() == 1 && !mail_keys.contains(&None), "emails carried keys {mail_keys:?}");
    // HubSpot: the seeded note plus exactly one new one.
    let notes = standins.hubspot_state().notes();
    ensure!(notes.len() == 2, "HubSpot holds {} notes, expected the seeded one + 1", notes.len());
    ensure!(standins.hubspot.side_effects() == 1, "HubSpot side effects: {}", standins.hubspot.side_effects());

    // Approvals: the two the happy path asks for, each decided once and consumed once.
    let approvals = cli.json(&["approvals", "list", "--all", "--json"])?;
    let approvals = approvals.as_array().ok_or("approvals list is not an array")?;
    let (questions, approvals): (Vec<&Value>, Vec<&Value>) = approvals.iter().partition(|a| a["kind"] == "in_doubt");
    let mut tools: Vec<&str> = approvals.iter().map(|a| a["tool"].as_str().unwrap_or_default()).collect();
    tools.sort();
    ensure!(tools == ["ads.update_campaign", "email.send_email"], "approvals requested: {tools:?}");
    for a in approvals {
        ensure!(a["run_id"] == run_id && a["status"] == "consumed", "approval not consumed: {a}");
    }
    // Only the email can be in doubt (the other calls with effects are idempotent), once.
    ensure!(questions.len() <= 1, "{} in-doubt questions", questions.len());
    for q in &questions {
        ensure!(q["tool"] == "email.send_email", "in doubt about {}", q["tool"]);
        ensure!(matches!(q["status"].as_str(), Some("consumed" | "denied")), "in-doubt question left {}", q["status"]);
    }
    let question_ids: BTreeSet<&str> = questions.iter().filter_map(|q| q["id"].as_str()).collect();

    // The store: the run completed with one row per call, each done once.
    let show = cli.json(&["runs", "show", run_id, "--json"])?;
    ensure!(show["run"]["status"] == "completed", "run is {}", show["run"]["status"]);
    let rows = show["tool_calls"].as_array().ok_or("no tool_calls")?;
    let calls: Vec<(u64, u64, String, String)> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (r["step"].as_u64().unwrap_or(u64::MAX), r["index"].as_u64().unwrap_or(u64::MAX), s("tool"), s("status"))
        })
        .collect();
    let c = &show["run"]["counters"];
    let counters = (c["steps"].as_u64().unwrap_or(0), c["tool_calls"].as_u64().unwrap_or(0));

    // The audit log: intact, one `tool.call` record per idempotency key.
    cli.expect(&["audit", "verify"], 0)?;
    let export = cli.expect(&["audit", "export", "--run", run_id], 0)?;
    let mut audit = BTreeMap::new();
    let mut recorded_keys = BTreeSet::new();
    // Every call with an effect is claimed before it runs: once, or again by the process that
    // took over after a kill between its claim and its result. Counted as claimed keys.
    let mut claimed_keys = BTreeSet::new();
    for line in export.stdout.lines() {
        let record: Value = serde_json::from_str(line).map_err(|e| format!("audit export line: {e}"))?;
        let mut kind = record["kind"].as_str().unwrap_or_default().to_string();
        let body = &record["body"];
        let key = body["idempotency_key"].as_str().unwrap_or_default().to_string();
        // The in-doubt question's own records (its gate verdict and approval) are set apart;
        // marking a call done closes it as a `tool.call` would.
        let question = body["approval_id"].as_str().is_some_and(|id| question_ids.contains(id));
        let asked = kind == "gate.decision" && body["reason"].as_str().is_some_and(|r| r.starts_with("in doubt:"));
        if (question && kind != "tool.marked_done") || asked {
            continue;
        }
        if kind == "tool.marked_done" {
            kind = "tool.call".into();
        }
        if kind == "tool.call" {
            ensure!(recorded_keys.insert(key.clone()), "call {key} has two `tool.call` audit records");
        }
        if kind == "tool.claimed" {
            claimed_keys.insert(key);
            continue;
        }
        *audit.entry(kind).or_default() += 1;
    }
    ensure!(claimed_keys.is_subset(&recorded_keys), "claimed calls {claimed_keys:?} never recorded a result");
    audit.insert("tool.claimed (distinct calls)".into(), claimed_keys.len());
    Ok(Shape { calls, counters, audit })
}

/// Shared work list: scenarios to run, and how many are running (they may add the next `n`).
struct Queue {
    jobs: VecDeque<Kill>,
    running: usize,
}

#[test]
fn sigkill_at_every_pause_point_never_duplicates_a_side_effect_or_loses_an_approval() {
    let started = Instant::now();
    let fx = fixture();
    // The baseline runs first and alone: it also fills the compiled-component cache.
    let baseline = scenario(&fx, None, &mut false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((baseline.in_doubt.retried, baseline.in_doubt.marked_done), (0, 0), "an uninterrupted run was in doubt");
    assert!(baseline.per_call.values().all(|&n| n == 1), "an uninterrupted run retried: {:?}", baseline.per_call);
    assert_eq!(baseline.shape.audit.get("approval.requested"), Some(&2));

    let queue = Mutex::new(Queue {
        jobs: (0..HAPPY_PATH.len()).flat_map(|process| POINTS.map(|point| Kill { process, point, n: 1 })).collect(),
        running: 0,
    });
    let wake = Condvar::new();
    let results: Mutex<Vec<(Kill, Result<Report, String>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let kill = {
                        let mut q = queue.lock().unwrap();
                        loop {
                            if let Some(kill) = q.jobs.pop_front() {
                                q.running += 1;
                                break Some(kill);
                            }
                            if q.running == 0 {
                                break None;
                            }
                            q = wake.wait(q).unwrap();
                        }
                    };
                    let Some(kill) = kill else {
                        wake.notify_all();
                        return;
                    };
                    let mut killed = false;
                    let mut result = scenario(&fx, Some(kill), &mut killed);
                    let mut q = queue.lock().unwrap();
                    q.running -= 1;
                    if killed && kill.n < MAX_VISITS {
                        q.jobs.push_back(Kill { n: kill.n + 1, ..kill });
                    } else if killed {
                        result = Err(format!("{}: more than {MAX_VISITS} visits of one pause point", kill.name()));
                    }
                    results.lock().unwrap().push((kill, result));
                    wake.notify_all();
                }
            });
        }
    });

    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(k, _)| (k.process, POINTS.iter().position(|p| *p == k.point), k.n));
    let scenarios = results.len();
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for (kill, result) in results {
        match result {
            Ok(report) if report.shape != baseline.shape => failures.push(format!(
                "{}: the finished run differs from the uninterrupted one\n  got      {:?}\n  expected {:?}",
                kill.name(),
                report.shape,
                baseline.shape
            )),
            Ok(report) => reports.push(report),
            Err(e) => failures.push(e),
        }
    }
    let killed: Vec<&Report> = reports.iter().filter(|r| r.killed.is_some()).collect();

    println!(
        "\n{:<38} {:>7} {:>5} {:>8} {:>7} {:>8}  retried calls (requests)",
        "scenario", "resumes", "meta", "sendgrid", "hubspot", "in doubt"
    );
    let mut retried_scenarios = 0;
    let mut retried_calls = 0;
    for r in std::iter::once(&baseline).chain(killed.iter().copied()) {
        let retried: Vec<String> = r
            .per_call
            .iter()
            .filter(|(call, n)| **n > baseline.per_call.get(*call).copied().unwrap_or(0))
            .map(|(call, n)| format!("{call} ×{n}"))
            .collect();
        if r.killed.is_some() {
            retried_scenarios += usize::from(!retried.is_empty());
            retried_calls += retried.len();
        }
        let [meta, sendgrid, hubspot] = r.requests;
        let doubt = match (r.in_doubt.retried, r.in_doubt.marked_done) {
            (0, 0) => "-",
            (_, 0) => "re-sent",
            _ => "marked",
        };
        println!(
            "{:<38} {:>7} {meta:>5} {sendgrid:>8} {hubspot:>7} {doubt:>8}  {}",
            r.name,
            r.resumes,
            if retried.is_empty() { "-".to_string() } else { retried.join(", ") }
        );
    }
    let re_sent: usize = killed.iter().map(|r| r.in_doubt.retried).sum();
    let marked_done: usize = killed.iter().map(|r| r.in_doubt.marked_done).sum();
    let ended_unpaused = reports.len() - killed.len();
    println!(
        "\n{scenarios} scenarios in {:.1}s on {workers} workers: {} killed with SIGKILL at a pause point and resumed \
         to completion, {ended_unpaused} ended without reaching theirs (the end of each enumeration), {} failed.\n\
         {retried_scenarios} killed scenarios retried {retried_calls} tool calls against stand-ins that do not \
         deduplicate; {} emails were in doubt: {re_sent} re-sent (SendGrid had no record), {marked_done} marked \
         done (it had).",
        started.elapsed().as_secs_f64(),
        killed.len(),
        failures.len(),
        re_sent + marked_done,
    );
    assert!(failures.is_empty(), "{} of {scenarios} scenarios failed:\n\n{}", failures.len(), failures.join("\n\n"));
    println!("Duplicated side effects: 0. Lost or re-requested approvals: 0.");

    // The proof is only as good as its coverage: every pause point was reached and killed, some
    // kills landed between a write and its durable result (an idempotent call retried), and
    // the email was in doubt both before it went out and after.
    let points_killed: BTreeSet<&str> = killed.iter().filter_map(|r| r.killed.map(|k| k.point)).collect();
    for point in POINTS {
        assert!(points_killed.contains(point), "no scenario paused at {point}: the pause point is gone or unreachable");
    }
    assert!(retried_calls > 0, "no scenario retried a call: the retry path was never exercised");
    assert!(re_sent > 0 && marked_done > 0, "in doubt: {re_sent} re-sent, {marked_done} marked done; both must happen");
}

/// A fixed step that fails ends the run in the same commit that records the failure. Killed
/// right after that commit, the run is over: the human who said no is not asked again, and the
/// write behind the gate never runs.
#[test]
fn a_kill_after_a_denied_human_gate_neither_asks_again_nor_runs_the_gated_write() {
    let fx = fixture();
    let tokens = Tokens::default();
    let (standins, _background) = StandIns::start_blocking(tokens.clone()).expect("stand-ins");
    let data = tempfile::tempdir_in(fx.dir.path()).expect("data dir");
    let cli = Cli::new(&fx, &standins, data.path(), tokens);
    let gated = fx.gated.to_str().expect("UTF-8 path");
    let meta = &cli.upstreams[0];
    cli.expect(&["run", gated, "--upstream", meta], 3).unwrap_or_else(|e| panic!("{e}"));
    let run_id = only_run(&cli).unwrap_or_else(|e| panic!("{e}"));
    let pending = pending_approvals(&cli, &run_id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pending.len(), 1, "the gate step asks once: {pending:?}");
    let deny = ["approvals", "deny", &pending[0], "--reason", "not this week", "--as", "crash-test"];
    cli.expect(&deny, 0).unwrap_or_else(|e| panic!("{e}"));

    let paused = cli.run_armed(&["runs", "resume", &run_id], "results_committed", 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(paused, None, "the resume ended before recording the denied step");
    let show = cli.json(&["runs", "show", &run_id, "--json"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(show["run"]["status"], "cancelled", "the denial and the end of the run are one commit: {}", show["run"]);
    // What an operator does next must not bring the question back.
    let again = cli.run(&["runs", "resume", &run_id]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.code, Some(2), "an ended run is not resumed: {}", again.stdout);

    let approvals = cli.json(&["approvals", "list", "--all", "--json"]).unwrap_or_else(|e| panic!("{e}"));
    let statuses: Vec<&str> = approvals.as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["denied"], "the gate was asked again after the kill");
    assert_eq!(standins.meta.side_effects(), 0, "the write behind a denied gate ran");
    assert_eq!(standins.meta_state().campaign(CAMPAIGN).unwrap().status, "ACTIVE");
    cli.expect(&["audit", "verify"], 0).unwrap_or_else(|e| panic!("{e}"));
}
