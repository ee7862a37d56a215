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
//! Not yet here (issue 15 §5): leases with fencing tokens, runs left in progress by a crash
//! taken over at start-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tollgate_runtime::{Quiet, RunOutcome, Runtime, RuntimeError};
use tollgate_sandbox::Sandbox;
use tollgate_store::Store;

/// The server's advancing of runs.
pub struct Worker {
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    /// Run id → whether another decision arrived while it was advancing.
    active: Mutex<HashMap<String, bool>>,
    idle: Notify,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, sandbox: Sandbox) -> Arc<Worker> {
        Arc::new(Worker { store, sandbox, active: Mutex::new(HashMap::new()), idle: Notify::new() })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Advances `run_id` in the background; if it is advancing already, once more afterwards.
    pub fn continue_run(self: &Arc<Self>, run_id: &str) {
        {
            let mut active = self.active();
            if let Some(again) = active.get_mut(run_id) {
                *again = true;
                return;
            }
            active.insert(run_id.to_string(), false);
        }
        let (worker, run_id) = (self.clone(), run_id.to_string());
        tokio::spawn(async move {
            loop {
                match worker.advance(&run_id).await {
                    Ok(outcome) => tracing::info!(run = %run_id, status = outcome.status.as_str(), "run advanced"),
                    Err(e) => tracing::warn!(run = %run_id, error = %e, "run not advanced"),
                }
                let mut active = worker.active();
                if active.get(&run_id) == Some(&true) {
                    active.insert(run_id.clone(), false);
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

    async fn advance(&self, run_id: &str) -> Result<RunOutcome, RuntimeError> {
        let run = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
        let runtime = Runtime::open_for_run(self.store.clone(), &self.sandbox, &run).await?;
        runtime.advance(run_id, &Quiet).await
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
                match worker.store.expire_approvals(tollgate_runtime::now_ms()).await {
                    Ok(expired) if !expired.is_empty() => {
                        let ids: Vec<&str> = expired.iter().map(|a| a.id.as_str()).collect();
                        tracing::info!(approvals = ?ids, "approvals expired; their runs are escalated");
                    }
                    Ok(_) => {}
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
