//! Runs continue by themselves after a decision made over the API: the approval or denial is
//! committed first, then this module advances the run in a task of the server — to its next
//! stop (completed, waiting for another approval, a bound, failed), as `tollgate runs resume`
//! would. The response to the decision does not wait for that.
//!
//! One advance per run at a time in this process (a decision arriving while its run advances
//! makes that advance go round once more, so no decision is left unread). Across processes the
//! store's run versions already make a second advancer's commit fail rather than act twice.
//! A shutdown waits for advances in flight up to the drain deadline; one cut short leaves the
//! run exactly where its last commit put it, resumable.
//!
//! Approvals past their expiry are expired on a timer (`[worker] expire_every`), not only when
//! some command happens to run.
//!
//! Runs started over the API are advanced here from the start, and at start-up every run left
//! `running` (a crash, a drain cut short) is taken over ([`Worker::take_over_on_time`]).
//!
//! A run of a deployed workflow is advanced only while its workflow is enabled
//! ([`Deploys::may_advance`], checked before each advance); disabling it stops the runs
//! advancing in this process at their next step boundary ([`Worker::stop_workflow`]).
//!
//! Runs are advanced under leases ([`Runtime::advance_leased`]: owner, expiry, heartbeat, a
//! fencing token every commit checks), so two servers on one store never advance one run at
//! once; every `lease / 2` each takes over the `running` runs whose lease expired (or whose
//! holder on this host is gone), which is how a dead server's runs move on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tollgate_runtime::approvals::expire_due;
use tollgate_runtime::lease::Leased;
use tollgate_runtime::{Event, Observer, Runtime, RuntimeError};
use tollgate_sandbox::Sandbox;
use tollgate_store::{RunFilter, RunStatus, Store, StoreError};

use crate::api::Deploys;

/// A run this process is advancing.
struct Advancing {
    workflow: String,
    /// Another decision arrived while it was advancing: go round once more.
    again: bool,
    /// Its workflow was disabled: stop at the next step boundary.
    stop: Arc<AtomicBool>,
}

/// The kill switch as the runtime's loop sees it.
struct StopFlag(Arc<AtomicBool>);

impl Observer for StopFlag {
    fn event(&self, _: &Event) {}
    fn keep_going(&self) -> bool {
        !self.0.load(Ordering::SeqCst)
    }
}

/// The server's advancing of runs.
pub struct Worker {
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    deploys: Arc<Deploys>,
    /// How long a run's lease lasts unless renewed.
    lease: Duration,
    /// One permit per run advancing at once (`[worker] max_runs`).
    slots: Arc<tokio::sync::Semaphore>,
    active: Mutex<HashMap<String, Advancing>>,
    idle: Notify,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        sandbox: Sandbox,
        deploys: Arc<Deploys>,
        lease: Duration,
        max_runs: usize,
    ) -> Arc<Worker> {
        let slots = Arc::new(tokio::sync::Semaphore::new(max_runs.max(1)));
        let active = Mutex::new(HashMap::new());
        Arc::new(Worker { store, sandbox, deploys, lease, slots, active, idle: Notify::new() })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Advancing>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Advances `run_id` in the background; if it is advancing already, once more afterwards.
    pub fn continue_run(self: &Arc<Self>, run_id: &str) {
        let stop = Arc::new(AtomicBool::new(false));
        {
            let mut active = self.active();
            if let Some(advancing) = active.get_mut(run_id) {
                advancing.again = true;
                return;
            }
            let advancing = Advancing { workflow: String::new(), again: false, stop: stop.clone() };
            active.insert(run_id.to_string(), advancing);
        }
        let (worker, run_id) = (self.clone(), run_id.to_string());
        tokio::spawn(async move {
            // At most `max_runs` advance at once; the rest wait their turn here, in order.
            let _permit = worker.slots.clone().acquire_owned().await;
            loop {
                match worker.advance(&run_id, &stop).await {
                    Ok(Some(Leased::Advanced(outcome))) => {
                        tracing::info!(run = %run_id, status = outcome.status.as_str(), "run advanced");
                    }
                    Ok(Some(Leased::HeldBy { owner, .. })) => {
                        tracing::info!(run = %run_id, by = %owner, "run left to the process holding its lease");
                    }
                    Ok(None) => tracing::info!(run = %run_id, "run left where it is: its workflow is disabled"),
                    Err(e) => tracing::warn!(run = %run_id, error = %e, "run not advanced"),
                }
                let mut active = worker.active();
                if let Some(advancing) = active.get_mut(&run_id)
                    && advancing.again
                {
                    // Asked again (a decision, or its workflow enabled again): a stop meant for
                    // the pass that ended does not stop this one — `may_advance` decides anew.
                    advancing.again = false;
                    stop.store(false, Ordering::SeqCst);
                    continue;
                }
                active.remove(&run_id);
                if active.is_empty() {
                    worker.idle.notify_waiters();
                }
                return;
            }
        });
    }

    /// `None` when the run may not be advanced now (its workflow is disabled).
    async fn advance(&self, run_id: &str, stop: &Arc<AtomicBool>) -> Result<Option<Leased>, RuntimeError> {
        let run = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
        if let Some(advancing) = self.active().get_mut(run_id) {
            advancing.workflow = run.workflow_name.clone();
        }
        if !self.deploys.may_advance(&*self.store, &run).await {
            return Ok(None);
        }
        let runtime = Runtime::open_for_run(self.store.clone(), &self.sandbox, &run).await?;
        runtime.advance_leased(run_id, self.lease, &StopFlag(stop.clone())).await.map(Some)
    }

    /// Stops the runs this process is advancing whose workflow was switched off — by this
    /// server, another one on the store, or the command line — at their next step boundary.
    async fn stop_switched_off(&self) {
        let workflows: std::collections::BTreeSet<String> =
            self.active().values().map(|a| a.workflow.clone()).filter(|w| !w.is_empty()).collect();
        for workflow in workflows {
            if matches!(tollgate_runtime::deploy::switched_on(&*self.store, &workflow).await, Ok(false)) {
                self.stop_workflow(&workflow);
            }
        }
    }

    /// Stops every run of `workflow` this process is advancing at its next step boundary.
    pub fn stop_workflow(&self, workflow: &str) {
        for advancing in self.active().values().filter(|a| a.workflow == workflow) {
            advancing.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Stops advancing `run_id` in this process at its next step boundary (it was cancelled or
    /// paused); a decision arriving later still asks again, and the runtime then finds it
    /// ended or paused and leaves it.
    pub fn stop_run(&self, run_id: &str) {
        if let Some(advancing) = self.active().get(run_id) {
            advancing.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Every `lease / 2`, until the process ends: continues the `running` runs no live process
    /// holds a lease on — left by a crash, a drain cut short, or a server that died — except
    /// those it is advancing already. The first round is at once.
    pub fn take_over_on_time(self: &Arc<Self>) {
        let worker = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(worker.lease / 2);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                worker.stop_switched_off().await;
                match worker.store.unleased_runs(tollgate_runtime::now_ms(), 500).await {
                    Ok(ids) => {
                        let fresh: Vec<String> =
                            ids.into_iter().filter(|id| !worker.active().contains_key(id)).collect();
                        if !fresh.is_empty() {
                            tracing::info!(runs = fresh.len(), "taking over runs no live process holds");
                        }
                        for id in fresh {
                            worker.continue_run(&id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list the runs to take over"),
                }
            }
        });
    }

    /// Continues every run left `running` (by a crash, or a drain cut short), oldest last;
    /// those of a disabled workflow stay where they are. Returns how many it handed on.
    pub async fn take_over_running(self: &Arc<Self>, workflow: Option<&str>) -> Result<usize, StoreError> {
        let (mut after, mut count) = (None, 0);
        loop {
            let filter = RunFilter { status: Some(RunStatus::Running), limit: Some(500), after: after.clone() };
            let page = self.store.runs(&filter).await?;
            for run in page.iter().filter(|r| workflow.is_none_or(|w| r.workflow_name == w)) {
                self.continue_run(&run.id);
                count += 1;
            }
            match page.last() {
                Some(last) if page.len() == 500 => after = Some((last.created_at, last.id.clone())),
                _ => return Ok(count),
            }
        }
    }

    /// Expires pending approvals past their expiry every `every`, escalating their runs (the
    /// store does both in one transaction, with `approval.expired` and `run.escalated` audit
    /// records), until the process ends. A failed round is logged and tried again next time.
    pub fn expire_on_time(self: &Arc<Self>, every: std::time::Duration) {
        let worker = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match expire_due(worker.store.as_ref(), tollgate_runtime::now_ms()).await {
                    Ok((0, _)) => {}
                    Ok((count, first)) => {
                        tracing::info!(count, first = ?first, "approvals expired; their runs are escalated");
                    }
                    Err(e) => tracing::warn!(error = %e, "expiring approvals failed"),
                }
            }
        });
    }

    /// Resolves once no run is advancing.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.active().is_empty() {
                return;
            }
            notified.await;
        }
    }
}
