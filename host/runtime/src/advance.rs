//! The agent loop: advance a run until it ends, waits for approval, or escalates. Every call
//! starts from what the store holds, so the loop continues correctly from any checkpoint — the
//! same code serves a fresh run, `runs resume` after a crash, and a run whose approvals were
//! just decided.

use std::time::Instant;

use tollgate_store::{ApprovalFilter, ApprovalRecord, ApprovalStatus, Commit, RunRecord, RunStatus, RunUpdate};

use crate::apply::StepCommit;
use crate::error::RuntimeError;
use crate::events::Observer;
use crate::ids::now_ms;
use crate::runtime::Runtime;
use crate::state::RunState;

/// Where a run stands after [`Runtime::advance`] returns.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    pub detail: Option<String>,
    /// The final answer, when completed.
    pub output: Option<String>,
    /// Approvals still pending (when waiting for approval).
    pub pending_approvals: Vec<ApprovalRecord>,
}

/// One pass of the loop: the run and its state as last committed, when the pass started (its
/// time counts against the run's deadline), and who is watching.
pub(crate) struct Pass<'a> {
    pub run: &'a mut RunRecord,
    pub state: &'a mut RunState,
    pub started: Instant,
    pub observer: &'a dyn Observer,
}

/// What the loop does after a pass.
pub(crate) enum Next {
    /// Committed progress; go around again.
    Continue,
    /// Stop here: waiting for approval, ended or escalated.
    Stop,
}

impl Runtime {
    /// Advances `run_id` as far as it can go without a human.
    ///
    /// The run and its conversations are read from the store once; after that each pass
    /// continues from the state its predecessor committed, kept in memory ([`Runtime::commit`]
    /// applies every committed update to it). A failed commit ends the call with the error, so
    /// memory never runs ahead of the store: the next call starts again from what was committed.
    pub async fn advance(&self, run_id: &str, observer: &dyn Observer) -> Result<RunOutcome, RuntimeError> {
        // Approvals expire while runs wait for approval, not while this loop advances one.
        crate::approvals::expire_due(self.store.as_ref(), now_ms()).await?;
        let mut run = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
        crate::runtime::check_same_workflow(&run, &self.workflow)?;
        // A paused run waits for a person to resume it (`control::unpause`), whoever asks.
        if run.status.is_terminal() || run.status == RunStatus::Paused {
            return self.outcome(&run).await;
        }
        self.check_bindings(&run).await?;
        let mut state = RunState::load(&*self.store, &run).await?;
        let _warm = self.warm.advancing(run_id);
        loop {
            let mut pass = Pass { run: &mut run, state: &mut state, started: Instant::now(), observer };
            let next = self.pass(&mut pass).await?;
            // A kill switch is asked between steps, never inside one.
            if matches!(next, Next::Stop) || !observer.keep_going() {
                let run = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
                return self.outcome(&run).await;
            }
        }
    }

    /// One step of the run: finish the pending step, or end the run at a bound, or run the next
    /// fixed step, or ask the model.
    async fn pass(&self, pass: &mut Pass<'_>) -> Result<Next, RuntimeError> {
        if let Some(pending) = pass.state.pending.clone() {
            return self.finish_step(pass, &pending).await;
        }
        if let Some(bound) = self.bound_hit(pass.run, pass.state) {
            return self.stop(pass, RunStatus::BoundHit, bound).await;
        }
        if let Some(next) = self.fixed_step(pass).await? {
            return Ok(next);
        }
        self.model_step(pass).await
    }

    /// Commits, then applies the commit's run update to `run`, the loop's in-memory copy.
    /// Under a lease ([`Runtime::fenced`]), the commit carries its fence.
    pub(crate) async fn commit(&self, run: &mut RunRecord, mut commit: Commit) -> Result<(), RuntimeError> {
        if commit.fence.is_none() {
            commit.fence = self.fence_of(&run.id);
        }
        let applied = commit.run.as_ref().map(|u| {
            (
                u.expected_version,
                u.status,
                u.status_detail.clone(),
                u.counters.clone(),
                u.checkpoint.clone(),
                u.updated_at,
            )
        });
        self.store.commit(commit).await?;
        if let Some((expected, status, detail, counters, checkpoint, updated_at)) = applied {
            run.version = expected + 1;
            run.status = status;
            run.status_detail = detail;
            run.counters = counters;
            run.checkpoint = checkpoint;
            run.updated_at = updated_at;
        }
        Ok(())
    }

    /// Where the run stands now, without advancing it (expired approvals are escalated first).
    pub async fn status(&self, run_id: &str) -> Result<RunOutcome, RuntimeError> {
        crate::approvals::expire_due(self.store.as_ref(), now_ms()).await?;
        let run = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
        self.outcome(&run).await
    }

    pub(crate) async fn outcome(&self, run: &RunRecord) -> Result<RunOutcome, RuntimeError> {
        let pending_approvals = if run.status == RunStatus::WaitingApproval {
            let filter = ApprovalFilter {
                status: Some(ApprovalStatus::Pending),
                run_id: Some(run.id.clone()),
                ..ApprovalFilter::default()
            };
            self.store.approvals(&filter).await?
        } else {
            Vec::new()
        };
        let state: RunState = serde_json::from_value(run.checkpoint.clone()).unwrap_or_default();
        Ok(RunOutcome {
            run_id: run.id.clone(),
            status: run.status,
            detail: run.status_detail.clone(),
            output: state.final_output,
            pending_approvals,
        })
    }

    /// The first run-level bound the run has reached, described for the operator.
    fn bound_hit(&self, run: &RunRecord, state: &RunState) -> Option<String> {
        let bounds = &self.workflow.definition.run;
        let c = &run.counters;
        let tokens = c.input_tokens.saturating_add(c.output_tokens);
        if c.steps >= bounds.max_steps {
            Some(format!("max_steps: the run took {} model turns (bound {})", c.steps, bounds.max_steps))
        } else if c.tool_calls >= bounds.max_tool_calls {
            Some(format!("max_tool_calls: {} tool calls (bound {})", c.tool_calls, bounds.max_tool_calls))
        } else if c.fuel >= bounds.max_fuel {
            Some(format!("max_fuel: {} fuel used (bound {})", c.fuel, bounds.max_fuel))
        } else if tokens >= bounds.max_tokens {
            Some(format!("max_tokens: {tokens} tokens used (bound {})", bounds.max_tokens))
        } else if self.remaining(state).is_zero() {
            Some(format!("deadline: {} ms of active time (bound {:?})", state.active_ms, bounds.deadline))
        } else {
            None
        }
    }

    /// Ends the run with `status` (audited, with a signed audit checkpoint) and stops the loop.
    pub(crate) async fn stop(
        &self,
        pass: &mut Pass<'_>,
        status: RunStatus,
        detail: String,
    ) -> Result<Next, RuntimeError> {
        pass.state.add_active(pass.started);
        let step = StepCommit::new(pass.run, pass.state.next_step, &pass.state.agent);
        let (commit, events) = step.end(self, pass.state, status, Some(detail));
        self.commit(pass.run, commit).await?;
        events.iter().for_each(|e| pass.observer.event(e));
        Ok(Next::Stop)
    }

    /// The run's new state for a commit: `status`, `counters`, and `state` as its checkpoint
    /// with the messages added since the last commit.
    pub(crate) fn update(
        &self,
        run: &RunRecord,
        state: &mut RunState,
        status: RunStatus,
        detail: Option<String>,
        counters: tollgate_store::Counters,
        now: i64,
    ) -> RunUpdate {
        let messages = state.take_new_messages();
        RunUpdate {
            messages,
            id: run.id.clone(),
            expected_version: run.version,
            status,
            status_detail: detail,
            counters,
            checkpoint: serde_json::to_value(state).unwrap_or_default(),
            updated_at: now,
        }
    }
}
