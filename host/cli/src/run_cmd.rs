//! `tollgate run` and `tollgate runs list|show|resume|cancel`: start runs, stream them, and
//! report how they stopped through the exit status (see [`exit_for`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use tollgate_contract::units::parse_duration;
use tollgate_runtime::kv::StoreKv;
use tollgate_runtime::lease::{self, Leased};
use tollgate_runtime::{Event, Observer, RunOptions, RunOutcome, Runtime, approvals};
use tollgate_sandbox::Sandbox;
use tollgate_store::{ApprovalFilter, RunFilter, RunRecord, RunStatus, Store};

use crate::data::{DataArgs, actor};
use crate::plugin_cmd::{CacheArgs, sandbox_config};
use crate::render::{self, t};
use crate::stream::Printer;

#[derive(Args)]
pub struct RunArgs {
    /// The workflow file (TOML).
    workflow: PathBuf,
    /// What the run should achieve [default: the workflow's `goal`].
    #[arg(long)]
    goal: Option<String>,
    #[command(flatten)]
    common: AdvanceArgs,
}

/// Flags shared by `run` and `runs resume`.
#[derive(Args)]
pub struct AdvanceArgs {
    /// Model for every agent: openai:MODEL, anthropic:MODEL, openai-compatible:MODEL@URL, scripted:FILE.
    #[arg(long)]
    model: Option<String>,
    /// Send requests for HOST to URL instead (a staging API or a local stand-in); repeatable.
    #[arg(long = "upstream", value_name = "HOST=URL")]
    upstreams: Vec<String>,
    /// When the run waits for approval, keep waiting (up to this long, e.g. 10m) for a human to
    /// decide it with `tollgate approvals`, then continue.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "24h")]
    wait: Option<String>,
    /// One JSON event per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only runs in this status (running, waiting_approval, escalated, completed, failed, bound_hit, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one run: status, counters, steps and tool calls.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop a run until someone resumes it (`runs resume`); nothing advances it meanwhile.
    Pause {
        id: String,
        #[arg(long, default_value = "paused by an operator")]
        reason: String,
        /// A label for who pauses; the OS user running this command is recorded with it.
        #[arg(long = "as")]
        actor: Option<String>,
    },
    /// Continue a run from its last checkpoint (after approvals, a crash, an escalation or a
    /// pause: a paused run is resumed first, recorded as `run.resumed`).
    Resume {
        id: String,
        #[command(flatten)]
        common: AdvanceArgs,
    },
    /// Stop a run for good; its pending approvals are denied.
    Cancel {
        id: String,
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
        /// A label for who cancels; the OS user running this command is recorded with it.
        #[arg(long = "as")]
        actor: Option<String>,
    },
}

/// Exit statuses of `run` and `runs resume`, documented in the README.
pub fn exit_for(status: RunStatus) -> ExitCode {
    ExitCode::from(match status {
        RunStatus::Completed => 0,
        RunStatus::Failed => 1,
        RunStatus::WaitingApproval => 3,
        RunStatus::BoundHit => 4,
        RunStatus::Escalated => 5,
        RunStatus::Cancelled => 6,
        RunStatus::Paused => 7,
        RunStatus::Running => 1,
    })
}

fn options(common: &AdvanceArgs, base: RunOptions) -> anyhow::Result<RunOptions> {
    let mut options = base;
    if common.model.is_some() {
        options.model = common.model.clone();
    }
    for u in &common.upstreams {
        let (host, url) = u.split_once('=').with_context(|| format!("--upstream expects HOST=URL, got `{u}`"))?;
        options.upstreams.insert(host.to_string(), url.to_string());
    }
    Ok(options)
}

async fn open_runtime(
    store: Arc<dyn Store>,
    workflow: &Path,
    options: RunOptions,
    cache: &CacheArgs,
) -> anyhow::Result<Runtime> {
    let loaded = tollgate_workflow::load(workflow).map_err(|d| anyhow::anyhow!("{d}"))?;
    let sandbox = Sandbox::with_kv(sandbox_config(cache), Arc::new(StoreKv::new(store.clone())))?;
    Ok(Runtime::open(store, &sandbox, loaded, options).await?)
}

pub async fn run(args: RunArgs, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let store = data.open().await?;
    let options = options(&args.common, RunOptions::default())?;
    let runtime = open_runtime(store, &args.workflow, options, &args.common.cache).await?;
    let id = runtime.start(args.goal.clone()).await?;
    note_on_close(&id);
    let printer = Arc::new(Printer::new(args.common.json));
    let run = runtime.store().run(&id).await?.context("the new run vanished")?;
    printer.event(&Event::RunStarted {
        run_id: id.clone(),
        workflow: run.workflow_name.clone(),
        version: run.workflow_version.clone(),
        goal: run.goal.clone(),
    });
    drive(&runtime, &id, printer, args.common.wait.as_deref()).await
}

pub async fn runs(cmd: RunsCommand, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let store = data.open().await?;
    match cmd {
        RunsCommand::List { status, limit, json } => {
            let status = match status {
                Some(s) => Some(RunStatus::parse(&s).with_context(|| format!("unknown status `{s}`"))?),
                None => None,
            };
            let runs = store.runs(&RunFilter { status, limit: Some(limit), ..RunFilter::default() }).await?;
            if json {
                outln!("{}", render::json(&runs)?);
            } else if runs.is_empty() {
                outln!("no runs");
            } else {
                outln!("{:<24} {:<18} {:<22} {:>5} {:>9}  goal", "run", "status", "workflow", "steps", "calls");
                for r in runs {
                    let wf = format!("{} {}", t(&r.workflow_name), t(&r.workflow_version));
                    let goal: String = t(&r.goal).chars().take(60).collect();
                    // Run of proposed: a run whose calls were all refused shows `0/8`, not `0`.
                    let calls = format!("{}/{}", r.counters.tool_calls, r.counters.calls_proposed);
                    let steps = r.counters.steps;
                    outln!("{:<24} {:<18} {wf:<22} {steps:>5} {calls:>9}  {goal}", t(&r.id), r.status.as_str());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { id, json } => {
            let run = store.run(&id).await?.with_context(|| format!("run {id} not found"))?;
            let steps = store.steps(&id).await?;
            let calls = store.tool_calls(&id).await?;
            let approvals = store
                .approvals(&ApprovalFilter { status: None, run_id: Some(id.clone()), ..ApprovalFilter::default() })
                .await?;
            if json {
                let v = json!({"run": run, "steps": steps, "tool_calls": calls, "approvals": approvals});
                outln!("{}", render::json(&v)?);
            } else {
                out!("{}", crate::run_render::show(&run, &steps, &calls, &approvals));
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Resume { id, common } => {
            let mut run = store.run(&id).await?.with_context(|| format!("run {id} not found"))?;
            if run.status.is_terminal() {
                bail!("run {id} already ended ({}); nothing to resume", run.status.as_str());
            }
            if run.status == RunStatus::Paused {
                run = tollgate_runtime::control::unpause(&*store, &id, &actor(None)).await?;
            }
            let base: RunOptions = serde_json::from_value(run.options.clone()).unwrap_or_default();
            let options = options(&common, base)?;
            let runtime = open_runtime(store, Path::new(&run.workflow_path), options, &common.cache).await?;
            note_on_close(&id);
            let printer = Arc::new(Printer::new(common.json));
            let step = run.counters.steps as u32;
            printer.event(&Event::Resumed { run_id: id.clone(), status: run.status.as_str().into(), step });
            drive(&runtime, &id, printer, common.wait.as_deref()).await
        }
        RunsCommand::Pause { id, reason, actor: who } => {
            tollgate_runtime::control::pause(&*store, &id, &actor(who), &reason).await?;
            outln!("run {} paused; `tollgate runs resume {}` continues it", t(&id), t(&id));
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Cancel { id, reason, actor: who } => {
            let in_flight = approvals::cancel(&*store, &id, &actor(who), &reason).await?;
            outln!("run {} cancelled", t(&id));
            for call in in_flight {
                // It cannot be called back; the process running it records what it did.
                outln!("  call {} is still in flight: its result will be recorded when it returns", t(&call));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// From here on, a closed stdout ends the process where the run is, as a kill -9 would; say
/// how to see and continue it.
fn note_on_close(id: &str) {
    crate::output::note_on_close(format!(
        "standard output closed: stopped advancing run {id} where it was; \
         `tollgate runs show {id}` tells where, `tollgate runs resume {id}` continues it"
    ));
}

/// Advances the run, streaming events; with `--wait`, keeps waiting at approvals.
async fn drive(runtime: &Runtime, id: &str, printer: Arc<Printer>, wait: Option<&str>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let ticker = {
        let printer = printer.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                printer.tick(started);
            }
        })
    };
    let wait = match wait {
        Some(w) => Some(parse_duration(w)?),
        None => None,
    };
    let result = advance_until_stop(runtime, id, &printer, wait).await;
    ticker.abort();
    let outcome = result?;
    report_stop(&outcome, printer.json_mode());
    Ok(exit_for(outcome.status))
}

async fn advance_until_stop(
    runtime: &Runtime,
    id: &str,
    printer: &Printer,
    wait: Option<Duration>,
) -> anyhow::Result<RunOutcome> {
    let waited_since = Instant::now();
    loop {
        let outcome = match runtime.advance_leased(id, lease::DEFAULT_LEASE, printer).await? {
            Leased::Advanced(outcome) => outcome,
            Leased::HeldBy { owner, until } => {
                let left = until.saturating_sub(tollgate_runtime::now_ms()).max(0) / 1000;
                anyhow::bail!(
                    "run {id} is being advanced by process {owner} (a `tollgate serve`, or another command); its \
                     lease holds for {left} s more unless that process stops: try again once it has"
                )
            }
        };
        let Some(wait) = wait else { return Ok(outcome) };
        if outcome.status != RunStatus::WaitingApproval {
            return Ok(outcome);
        }
        // Waiting for approval: poll the store until every approval of the step is decided (or expires).
        let mut last_note = Instant::now();
        loop {
            if waited_since.elapsed() >= wait {
                return Ok(outcome);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let current = runtime.status(id).await?;
            if current.status != RunStatus::WaitingApproval || current.pending_approvals.is_empty() {
                break;
            }
            if last_note.elapsed() >= Duration::from_secs(30) {
                let elapsed_ms = waited_since.elapsed().as_millis() as u64;
                let ids: Vec<&str> = current.pending_approvals.iter().map(|a| a.id.as_str()).collect();
                printer.event(&Event::Waiting { what: format!("approval {}", ids.join(", ")), elapsed_ms });
                last_note = Instant::now();
            }
        }
    }
}

fn report_stop(outcome: &RunOutcome, json: bool) {
    if json {
        return;
    }
    match outcome.status {
        RunStatus::WaitingApproval => {
            outln!("\nrun {} is waiting for approval:", outcome.run_id);
            for a in &outcome.pending_approvals {
                outln!("  {}  {}  ({})", t(&a.id), t(&a.tool), t(&a.reason));
                outln!("    tollgate approvals approve {}     # or: deny {} --reason '…'", a.id, a.id);
            }
            outln!("  then: tollgate runs resume {}", outcome.run_id);
        }
        RunStatus::Escalated => {
            outln!("\nrun {} escalated: {}", outcome.run_id, t(outcome.detail.as_deref().unwrap_or_default()));
            outln!("  a human must look; `tollgate runs resume {}` continues with the call denied", outcome.run_id);
        }
        RunStatus::Paused => {
            outln!("\nrun {} is paused: {}", outcome.run_id, t(outcome.detail.as_deref().unwrap_or_default()));
            outln!("  `tollgate runs resume {}` continues it", outcome.run_id);
        }
        _ => {}
    }
}

/// Used by `runs show` and the text of `approvals list`.
/// Tool calls are counted by what became of them: proposed (by a model or a fixed step), run
/// (allowed by the gate), denied, parked (sent for approval) and failed (ran, ended in an error).
pub fn counters_line(run: &RunRecord) -> String {
    let c = &run.counters;
    format!(
        "steps {} · tool calls {} proposed, {} run, {} denied, {} parked, {} failed · fuel {} · tokens {} · spend {}",
        c.steps,
        c.calls_proposed,
        c.tool_calls,
        c.calls_denied,
        c.calls_parked,
        c.calls_failed,
        c.fuel,
        c.input_tokens.saturating_add(c.output_tokens),
        c.spend
    )
}
