//! A store that plays a second process racing the runtime:
//! - for a cap: just before the first commit that charges a cap, it commits the same charge
//!   itself, so the runtime's commit, gated on usage read a moment earlier, fails with
//!   `CapExceeded` as it would against a real rival;
//! - for a call: right after the runtime's commit that claims a call, and before the call
//!   starts, it runs `after_claim` (another runtime advancing the same run).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::Value;
use tollgate_store::{
    ApprovalFilter, ApprovalRecord, AuditCheckpoint, AuditEntry, Commit, RunFilter, RunRecord, RunSummary,
    SealedRecord, SqliteStore, StepRecord, Store, StoreFuture, TokenRecord, ToolCallRecord,
};

/// What a rival does once the runtime has claimed a call.
pub type AfterClaim = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

pub struct RacingStore {
    pub inner: Arc<SqliteStore>,
    /// Set once the rival charge is in (set it up front for no cap rival).
    pub raced: AtomicBool,
    pub after_claim: Mutex<Option<AfterClaim>>,
}

impl RacingStore {
    /// A rival for the first cap charge.
    pub fn cap_rival(inner: Arc<SqliteStore>) -> RacingStore {
        RacingStore { inner, raced: AtomicBool::new(false), after_claim: Mutex::new(None) }
    }

    /// A rival that runs `rival` right after the first claim commits.
    pub fn claim_rival(inner: Arc<SqliteStore>, rival: AfterClaim) -> RacingStore {
        RacingStore { inner, raced: AtomicBool::new(true), after_claim: Mutex::new(Some(rival)) }
    }
}

impl Store for RacingStore {
    fn commit<'a>(&'a self, commit: Commit) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if !commit.cap_charges.is_empty() && !self.raced.swap(true, Ordering::SeqCst) {
                let rival = Commit { cap_charges: commit.cap_charges.clone(), ..Commit::default() };
                self.inner.commit(rival).await?;
            }
            let claims = commit.audit.iter().any(|a| a.event.kind() == "tool.claimed");
            self.inner.commit(commit).await?;
            if claims {
                let rival = self.after_claim.lock().unwrap().take();
                if let Some(rival) = rival {
                    rival().await;
                }
            }
            Ok(())
        })
    }
    fn create_run<'a>(&'a self, run: &'a RunRecord, audit: &'a [AuditEntry]) -> StoreFuture<'a, ()> {
        self.inner.create_run(run, audit)
    }
    fn run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<RunRecord>> {
        self.inner.run(id)
    }
    fn runs<'a>(&'a self, filter: &'a RunFilter) -> StoreFuture<'a, Vec<RunSummary>> {
        self.inner.runs(filter)
    }
    fn steps<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<StepRecord>> {
        self.inner.steps(run_id)
    }
    fn tool_calls<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        self.inner.tool_calls(run_id)
    }
    fn step_tool_calls<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        self.inner.step_tool_calls(run_id, step)
    }
    fn messages<'a>(&'a self, run_id: &'a str, agent: &'a str, from_seq: u64) -> StoreFuture<'a, Vec<Value>> {
        self.inner.messages(run_id, agent, from_seq)
    }
    fn approval<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApprovalRecord>> {
        self.inner.approval(id)
    }
    fn approvals<'a>(&'a self, filter: &'a ApprovalFilter) -> StoreFuture<'a, Vec<ApprovalRecord>> {
        self.inner.approvals(filter)
    }
    fn expire_approvals(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<ApprovalRecord>> {
        self.inner.expire_approvals(now, limit)
    }
    fn cap_usage<'a>(&'a self, scope: &'a str, now: i64, window_ms: Option<i64>) -> StoreFuture<'a, i64> {
        self.inner.cap_usage(scope, now, window_ms)
    }
    fn audit_records(&self, from: u64, limit: u32) -> StoreFuture<'_, Vec<SealedRecord>> {
        self.inner.audit_records(from, limit)
    }
    fn audit_checkpoints(&self) -> StoreFuture<'_, Vec<AuditCheckpoint>> {
        self.inner.audit_checkpoints()
    }
    fn newest_audit_checkpoint(&self) -> StoreFuture<'_, Option<AuditCheckpoint>> {
        self.inner.newest_audit_checkpoint()
    }
    fn vouched_step_records<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<SealedRecord>> {
        self.inner.vouched_step_records(run_id, step)
    }
    fn vouched_run_start<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<SealedRecord>> {
        self.inner.vouched_run_start(run_id)
    }
    fn kv_get<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.inner.kv_get(namespace, key)
    }
    fn kv_set<'a>(&'a self, namespace: &'a str, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        self.inner.kv_set(namespace, key, value)
    }
    fn kv_delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        self.inner.kv_delete(namespace, key)
    }
    fn kv_list<'a>(&'a self, namespace: &'a str, prefix: &'a str, limit: u32) -> StoreFuture<'a, Vec<String>> {
        self.inner.kv_list(namespace, prefix, limit)
    }
    fn kv_count<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, u64> {
        self.inner.kv_count(namespace)
    }
    fn create_token<'a>(&'a self, token: &'a TokenRecord, audit: &'a [AuditEntry]) -> StoreFuture<'a, TokenRecord> {
        self.inner.create_token(token, audit)
    }
    fn token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TokenRecord>> {
        self.inner.token(id)
    }
    fn tokens(&self) -> StoreFuture<'_, Vec<TokenRecord>> {
        self.inner.tokens()
    }
    fn revoke_token<'a>(&'a self, id: &'a str, at: i64, audit: &'a [AuditEntry]) -> StoreFuture<'a, bool> {
        self.inner.revoke_token(id, at, audit)
    }
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
        now: i64,
        ttl_ms: i64,
        take_over: Option<&'a tollgate_store::RunLease>,
    ) -> StoreFuture<'a, tollgate_store::LeaseClaim> {
        self.inner.claim_run(run_id, owner, now, ttl_ms, take_over)
    }
    fn renew_run<'a>(&'a self, lease: &'a tollgate_store::RunLease, now: i64, ttl_ms: i64) -> StoreFuture<'a, bool> {
        self.inner.renew_run(lease, now, ttl_ms)
    }
    fn release_run<'a>(&'a self, lease: &'a tollgate_store::RunLease) -> StoreFuture<'a, ()> {
        self.inner.release_run(lease)
    }
    fn unleased_runs(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<String>> {
        self.inner.unleased_runs(now, limit)
    }
    fn vouched_workflow_switch<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<tollgate_store::SealedRecord>> {
        self.inner.vouched_workflow_switch(name)
    }
    fn run_started_by_key<'a>(&'a self, caller: &'a str, key: &'a str) -> StoreFuture<'a, Option<(String, String)>> {
        self.inner.run_started_by_key(caller, key)
    }
    fn create_run_keyed<'a>(
        &'a self,
        run: &'a tollgate_store::RunRecord,
        audit: &'a [tollgate_store::AuditEntry],
        key: &'a tollgate_store::StartKey,
    ) -> StoreFuture<'a, tollgate_store::Started> {
        self.inner.create_run_keyed(run, audit, key)
    }
    fn deploy_workflow<'a>(
        &'a self,
        deployment: &'a tollgate_store::DeploymentRecord,
        audit: &'a [tollgate_store::AuditEntry],
    ) -> StoreFuture<'a, tollgate_store::Deployed> {
        self.inner.deploy_workflow(deployment, audit)
    }
    fn deployments<'a>(&'a self, name: Option<&'a str>) -> StoreFuture<'a, Vec<tollgate_store::DeploymentRecord>> {
        self.inner.deployments(name)
    }
    fn deployment<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<tollgate_store::DeploymentRecord>> {
        self.inner.deployment(name, version)
    }
    fn switch_workflow<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
        at: i64,
        audit: &'a [tollgate_store::AuditEntry],
    ) -> StoreFuture<'a, bool> {
        self.inner.switch_workflow(name, enabled, at, audit)
    }
}
