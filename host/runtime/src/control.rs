//! A person stopping a run for a while: [`pause`] and [`unpause`]. Each is one store commit
//! with its signed audit record (`run.paused`, `run.resumed`), conditional on the run's
//! version, like every other change of a run's status. Cancelling for good is
//! [`crate::approvals::cancel`].
//!
//! A paused run is advanced by nobody: [`crate::Runtime::advance`] leaves it where it is, the
//! server's takeover only picks up `running` runs, and its approvals still expire without
//! escalating it. A process advancing the run when it is paused finds its next commit refused
//! (the run's version moved); a call in flight finishes and what it did is recorded, as after a
//! cancel, and the run continues from there once resumed.

use tollgate_store::audit::{AuditEntry, RunPaused, RunResumed};
use tollgate_store::{Checkpoint, Commit, RunRecord, RunStatus, RunUpdate, Store};

use crate::approvals::{MAX_NAME_CHARS, MAX_REASON_CHARS, moved, typed_text};
use crate::error::RuntimeError;
use crate::ids::now_ms;

/// Pauses a run that has not ended and is not paused. Returns the run as it now is.
pub async fn pause(store: &dyn Store, run_id: &str, by: &str, reason: &str) -> Result<RunRecord, RuntimeError> {
    typed_text("the name of who pauses", by, MAX_NAME_CHARS, false)?;
    typed_text("the reason", reason, MAX_REASON_CHARS, true)?;
    let run = store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
    if run.status.is_terminal() {
        return Err(RuntimeError::State(format!("run {run_id} already ended ({})", run.status.as_str())));
    }
    if run.status == RunStatus::Paused {
        return Err(RuntimeError::State(format!("run {run_id} is paused already")));
    }
    let event = RunPaused { by: by.into(), reason: reason.into(), was: run.status };
    let detail = format!("paused by {by}: {reason}");
    set_status(store, run, RunStatus::Paused, Some(detail), event).await
}

/// Resumes a paused run as `running`; the caller advances it next. The runtime re-derives
/// the rest from the run's checkpoint: a run that was waiting for approval and still is goes
/// back to waiting at its first step, one whose approval expired meanwhile escalates there.
/// Returns the run as it now is.
pub async fn unpause(store: &dyn Store, run_id: &str, by: &str) -> Result<RunRecord, RuntimeError> {
    typed_text("the name of who resumes", by, MAX_NAME_CHARS, false)?;
    let run = store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
    if run.status != RunStatus::Paused {
        return Err(RuntimeError::State(format!("run {run_id} is not paused ({})", run.status.as_str())));
    }
    set_status(store, run, RunStatus::Running, None, RunResumed { by: by.into() }).await
}

async fn set_status(
    store: &dyn Store,
    mut run: RunRecord,
    status: RunStatus,
    detail: Option<String>,
    event: impl Into<tollgate_store::AuditEvent>,
) -> Result<RunRecord, RuntimeError> {
    let now = now_ms();
    let commit = Commit {
        run: Some(RunUpdate {
            id: run.id.clone(),
            expected_version: run.version,
            status,
            status_detail: detail.clone(),
            counters: run.counters.clone(),
            checkpoint: run.checkpoint.clone(),
            messages: Vec::new(),
            updated_at: now,
        }),
        audit: vec![AuditEntry::of_run(&run.id, now, event)],
        checkpoint: Checkpoint::Witnessed,
        ..Commit::default()
    };
    store.commit(commit).await.map_err(moved)?;
    run.status = status;
    run.status_detail = detail;
    run.updated_at = now;
    run.version += 1;
    Ok(run)
}
