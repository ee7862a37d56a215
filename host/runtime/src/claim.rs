//! Claiming a call before it runs. A call with an effect (write, send, spend, delete) is
//! marked `in_flight` with a signed `tool.claimed` record — the process, and a lease of the
//! call's timeout plus a margin — in a commit that bumps the run's version, before it starts:
//! - two processes advancing one run cannot both run it (the second's claim conflicts, or it
//!   finds the call in flight under a live claim and says so);
//! - after a crash the row says the effect may have happened; a claim whose process is gone
//!   (same host, no such pid) or whose lease ran out is taken over, and the call runs again
//!   with the same idempotency key.
//!
//! Calls without effects run straight from `allowed`: running one twice changes nothing.
//! The server's worker leases build on the same claim.

use std::time::Duration;

use tollgate_store::audit::ToolClaimed;
use tollgate_store::{Checkpoint, Durability, RunStatus, ToolCallRecord, ToolCallStatus};

use crate::advance::Pass;
use crate::apply::StepCommit;
use crate::error::RuntimeError;
use crate::ids::now_ms;
use crate::runtime::Runtime;
use crate::state::PendingStep;

/// Added to a call's timeout for its lease: the commit of its result, a slow disk.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// This process, as claims name it: `host:pid`.
pub(crate) fn this_process() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether `process` (`host:pid`, as [`this_process`] spells it) ran on this host and is gone.
pub(crate) fn process_gone(process: &str) -> bool {
    let Some((host, pid)) = process.rsplit_once(':') else { return false };
    host == host_name()
        && std::path::Path::new("/proc/self").exists()
        && pid.parse::<u32>().is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Whether `claim` may still be running its call: its lease holds and, when it was made on
/// this host, its process is still there.
pub(crate) fn holds(claim: &ToolClaimed, now: i64) -> bool {
    if claim.lease_until < now {
        return false;
    }
    let Some((host, pid)) = claim.by.rsplit_once(':') else { return false };
    if host != host_name() || !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    pid.parse::<u32>().is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

impl Runtime {
    /// Whether running `row` can change anything outside the run.
    pub(crate) fn has_effects(&self, row: &ToolCallRecord) -> bool {
        self.catalogue.tool(&row.tool).is_some_and(|(_, spec)| {
            let e = &spec.effects;
            e.write || e.send_message || e.spend || e.delete
        })
    }

    /// Claims `rows` (calls with effects about to run) in one signed, fsynced commit; they
    /// come back `in_flight`.
    pub(crate) async fn claim(
        &self,
        pass: &mut Pass<'_>,
        pending: &PendingStep,
        rows: &mut [ToolCallRecord],
    ) -> Result<(), RuntimeError> {
        if rows.is_empty() {
            return Ok(());
        }
        let by = this_process();
        let mut step = StepCommit::new(pass.run, pending.step, &pending.agent);
        for row in rows.iter_mut() {
            let timeout = self.catalogue.tool(&row.tool).map_or(Duration::ZERO, |(p, _)| p.limits().timeout);
            let lease = i64::try_from((timeout + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX);
            row.status = ToolCallStatus::InFlight;
            row.updated_at = step.now;
            step.audit(ToolClaimed {
                step: row.step,
                index: row.index,
                tool: row.tool.clone(),
                idempotency_key: row.idempotency_key.clone(),
                by: by.clone(),
                lease_until: now_ms().saturating_add(lease),
            });
            step.commit.tool_calls.push(row.clone());
        }
        let (mut commit, _) = step.finish(self, pass.state, RunStatus::Running);
        // The claim is what tells a later process the effect may have happened: on disk, and
        // vouched for by the key, before the call starts.
        commit.checkpoint = commit.checkpoint.max(Checkpoint::Signed);
        commit.durability = Durability::Immediate;
        self.commit(pass.run, commit).await?;
        crate::crashtest::pause_point("calls_claimed");
        Ok(())
    }
}
