//! `tollgate approvals list|approve|deny`: the human side of approval gates.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use tollgate_runtime::kv::StoreKv;
use tollgate_runtime::{Runtime, approvals};
use tollgate_sandbox::Sandbox;
use tollgate_store::{ApprovalFilter, ApprovalKind, ApprovalStatus};

use crate::data::{DataArgs, actor};
use crate::plugin_cmd::{CacheArgs, sandbox_config};
use crate::render::{self, j, t};

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Pending approvals (oldest first), or all with --all.
    List {
        #[arg(long)]
        all: bool,
        /// Only this run's approvals.
        #[arg(long)]
        run: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve one pending call. The run continues at `tollgate runs resume <RUN>` (or at once
    /// in a `tollgate run --wait` that is waiting for it). For a call in doubt (its process
    /// stopped while running it), approving runs it again exactly as it was.
    Approve {
        id: String,
        /// A label for who approves; the decider recorded is the OS user running this command
        /// (`root (as alice)`).
        #[arg(long = "as")]
        actor: Option<String>,
        /// Run the call with this input instead (JSON; checked against the tool's schema).
        #[arg(long)]
        edit: Option<String>,
        /// Print the decided approval as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Deny one pending call; the agent is told the reason. For a call in doubt, denying marks
    /// it done without running it again (the agent is told its outcome is unknown).
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        /// A label for who denies; the OS user running this command is recorded with it.
        #[arg(long = "as")]
        actor: Option<String>,
        /// Print the decided approval as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: ApprovalsCommand, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let store = data.open().await?;
    tollgate_runtime::approvals::expire_due(store.as_ref(), tollgate_runtime::now_ms()).await?;
    match cmd {
        ApprovalsCommand::List { all, run, json } => {
            let status = if all { None } else { Some(ApprovalStatus::Pending) };
            let approvals =
                store.approvals(&ApprovalFilter { status, run_id: run, ..ApprovalFilter::default() }).await?;
            if json {
                outln!("{}", render::json(&approvals)?);
            } else if approvals.is_empty() {
                outln!("no {}approvals", if all { "" } else { "pending " });
            } else {
                for a in approvals {
                    let left = (a.expires_at - tollgate_runtime::now_ms()).max(0) / 60_000;
                    // Names, reasons and inputs are printed escaped: a person, a model or a
                    // writer of the database typed them.
                    let by = a.decided_by.as_deref().map(|b| format!(" by {}", t(b))).unwrap_or_default();
                    outln!(
                        "{}  {}{by}  run {} step {} · {}",
                        t(&a.id),
                        a.status.as_str(),
                        t(&a.run_id),
                        a.step,
                        t(&a.agent)
                    );
                    outln!("    {} {}", t(&a.tool), j(&a.input));
                    outln!("    why: {}", t(&a.reason));
                    if a.kind == ApprovalKind::InDoubt {
                        outln!(
                            "    in doubt: approve = run it again as it was · deny = mark it done without running it"
                        );
                    }
                    if a.status == ApprovalStatus::Pending {
                        outln!("    expires in {left} min");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCommand::Approve { id, actor: who, edit, json, cache } => {
            let approval = store.approval(&id).await?.with_context(|| format!("approval {id} not found"))?;
            let run = store.run(&approval.run_id).await?.context("the approval's run is gone")?;
            let edit = match edit {
                Some(text) => Some(serde_json::from_str(&text).context("--edit must be JSON")?),
                None => None,
            };
            // Approving with an edit needs the tool's schema: load the run's workflow plugins.
            let sandbox = Sandbox::with_kv(sandbox_config(&cache), Arc::new(StoreKv::new(store.clone())))?;
            let runtime = Runtime::open_for_run(store, &sandbox, &run).await?;
            let who = actor(who);
            let decided = runtime.approve(&id, who.as_str(), edit).await?;
            if json {
                outln!("{}", render::json(&decided)?);
            } else if decided.status == ApprovalStatus::Pending {
                let (have, need) = (decided.votes.len(), decided.authority.quorum);
                outln!(
                    "approval {} as {}: {have} of the {need} approvals it needs; it stays pending until the rest",
                    t(&id),
                    t(&who)
                );
            } else {
                let what = match decided.kind {
                    ApprovalKind::InDoubt => " (the call runs again, as it was)",
                    ApprovalKind::Call => "",
                };
                outln!("approved {}{what} as {}; continue with: tollgate runs resume {}", t(&id), t(&who), t(&run.id));
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCommand::Deny { id, reason, actor: who, json } => {
            let who = actor(who);
            let approval = approvals::deny(&*store, &id, who.as_str(), &reason).await?;
            if json {
                outln!("{}", render::json(&approval)?);
            } else {
                let what = match approval.kind {
                    ApprovalKind::InDoubt => " (the call is marked done, not run again)",
                    ApprovalKind::Call => "",
                };
                outln!(
                    "denied {}{what} as {}; continue with: tollgate runs resume {}",
                    t(&id),
                    t(&who),
                    t(&approval.run_id)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
