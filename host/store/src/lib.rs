//! Tollgate's durable store: the boundary between the agent runtime and its database.
//!
//! [`Store`] is written in terms of the runtime's records, never SQL, so a Postgres backend can
//! implement it later; [`SqliteStore`] is the embedded default (sqlx, migrations, WAL). Every
//! write goes through [`Store::commit`]: one transaction that applies a step's run update, steps,
//! tool calls, approvals, cap charges and audit records together, or nothing.
//!
//! The audit log is a hash chain sealed inside those transactions ([`audit`]); checkpoints of
//! its head are signed with an ed25519 key kept outside the database ([`audit::Signer`]).

pub mod audit;
mod error;
mod sqlite;
mod types;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

pub use audit::{AuditCheckpoint, AuditEntry, AuditEvent, SealedRecord, Signer, Tamper, TamperKind, VerifyReport};
pub use error::StoreError;
pub use sqlite::SqliteStore;
pub use types::*;

/// What store methods return: a boxed `Send` future, so `dyn Store` works across tasks.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The runtime's persistence boundary. Implementations must make [`Store::commit`] atomic and
/// serialisable with respect to other commits (the SQLite backend takes the write lock up
/// front), since cap charges and approval transitions are checked inside it.
pub trait Store: Send + Sync {
    /// Insert a new run (version 1) and its audit records.
    fn create_run<'a>(&'a self, run: &'a RunRecord, audit: &'a [AuditEntry]) -> StoreFuture<'a, ()>;
    fn run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<RunRecord>>;
    fn runs<'a>(&'a self, filter: &'a RunFilter) -> StoreFuture<'a, Vec<RunSummary>>;
    /// Apply everything in `commit` atomically. Fails with [`StoreError::Conflict`] if the run's
    /// version moved, [`StoreError::CapExceeded`] if a charge would pass its limit and
    /// [`StoreError::ApprovalMoved`] if an approval was not in the transition's `from` status.
    fn commit<'a>(&'a self, commit: Commit) -> StoreFuture<'a, ()>;
    /// Steps of a run in order.
    fn steps<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<StepRecord>>;
    /// Tool calls of a run in `(step, index)` order.
    fn tool_calls<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<ToolCallRecord>>;
    /// Tool calls of one step of a run, in index order (the loop's per-step read).
    fn step_tool_calls<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<ToolCallRecord>>;
    /// The messages `agent` has in the run's conversation rows with `seq >= from_seq`, in order.
    fn messages<'a>(&'a self, run_id: &'a str, agent: &'a str, from_seq: u64) -> StoreFuture<'a, Vec<Value>>;
    fn approval<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApprovalRecord>>;
    /// Oldest first.
    fn approvals<'a>(&'a self, filter: &'a ApprovalFilter) -> StoreFuture<'a, Vec<ApprovalRecord>>;
    /// Mark at most `limit` pending approvals with `expires_at <= now` (earliest first) expired
    /// and their runs escalated, with `approval.expired` and `run.escalated` audit records, in
    /// one transaction. Returns them: when that is `limit` of them, more may be due. The bound
    /// keeps one transaction, and what it holds in memory, small however many are due at once.
    fn expire_approvals(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<ApprovalRecord>>;
    /// Sum of charges in `scope` since `now - window_ms` (all history when `None`), charges
    /// stamped after `now` included (another process's clock may be ahead).
    fn cap_usage<'a>(&'a self, scope: &'a str, now: i64, window_ms: Option<i64>) -> StoreFuture<'a, i64>;

    /// Audit records with `seq >= from`, at most `limit`, in order.
    fn audit_records(&self, from: u64, limit: u32) -> StoreFuture<'_, Vec<SealedRecord>>;
    /// The audit records of one step of a run (those whose body's `step` is `step`), oldest
    /// first, each vouched for: linked by the chain to a checkpoint this store's key signed.
    /// Records after the newest signed checkpoint are left out. Fails with
    /// [`StoreError::Tampered`] when a link, a hash or the store's key does not hold.
    fn vouched_step_records<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<SealedRecord>>;
    /// The run's first audit record (its `run.started`), vouched for as in
    /// [`Store::vouched_step_records`]; `None` when there is none that is signed.
    fn vouched_run_start<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<SealedRecord>>;
    /// The newest `workflow.switched` record of workflow `name`, vouched for as in
    /// [`Store::vouched_step_records`]; `None` when there is none that is signed. The kill
    /// switch's authority: a deployment row restored from an older copy cannot undo it.
    fn vouched_workflow_switch<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<SealedRecord>>;
    /// Signed checkpoints kept in the database, oldest first.
    fn audit_checkpoints(&self) -> StoreFuture<'_, Vec<AuditCheckpoint>>;
    /// The checkpoint row with the largest seq, `None` when there is none: one indexed read,
    /// however long the history. A row is only what the database holds (a writer of the file
    /// can add one); nothing is vouched for by it alone.
    fn newest_audit_checkpoint(&self) -> StoreFuture<'_, Option<AuditCheckpoint>>;

    fn kv_get<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    fn kv_set<'a>(&'a self, namespace: &'a str, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()>;
    fn kv_delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, ()>;
    fn kv_list<'a>(&'a self, namespace: &'a str, prefix: &'a str, limit: u32) -> StoreFuture<'a, Vec<String>>;
    fn kv_count<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, u64>;

    /// Insert a new API token, signing it with the audit key, with its audit records. Fails
    /// with [`StoreError::Key`] when the store has no key (an unsigned token never authenticates).
    fn create_token<'a>(&'a self, token: &'a TokenRecord, audit: &'a [AuditEntry]) -> StoreFuture<'a, TokenRecord>;
    /// The token with `id`, if its row exists and its signature holds.
    fn token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TokenRecord>>;
    /// Every token whose signature holds, oldest first.
    fn tokens(&self) -> StoreFuture<'_, Vec<TokenRecord>>;
    /// Mark a token revoked at `at`, with its audit records. `false` when there is no such
    /// token or it was already revoked (nothing is written then).
    fn revoke_token<'a>(&'a self, id: &'a str, at: i64, audit: &'a [AuditEntry]) -> StoreFuture<'a, bool>;

    /// Takes the lease on advancing `run_id` for `owner` until `now + ttl_ms`: when nobody holds
    /// it, when its holder's lease expired or is exactly `take_over` (a holder known to be
    /// gone) — the token grows, so the old holder is fenced off — or when `owner` holds it
    /// already (renewed, same token). While another owner holds it: [`LeaseClaim::Held`].
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
        now: i64,
        ttl_ms: i64,
        take_over: Option<&'a RunLease>,
    ) -> StoreFuture<'a, LeaseClaim>;
    /// Extends `lease` to `now + ttl_ms`; `false` when it is no longer the run's lease.
    fn renew_run<'a>(&'a self, lease: &'a RunLease, now: i64, ttl_ms: i64) -> StoreFuture<'a, bool>;
    /// Gives `lease` up (it expires now; the token stays, so it only ever grows).
    fn release_run<'a>(&'a self, lease: &'a RunLease) -> StoreFuture<'a, ()>;
    /// Runs `running` whose lease is absent or expired at `now`, oldest first, at most `limit`:
    /// what a worker may take over.
    fn unleased_runs(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<String>>;

    /// The run `key` started, and the hash of the request it started it with, if it did.
    fn run_started_by_key<'a>(&'a self, caller: &'a str, key: &'a str) -> StoreFuture<'a, Option<(String, String)>>;

    /// Like [`Store::create_run`], once per `key`: in the same transaction, the key is looked
    /// up and, when unused, recorded with the run. A key used before creates nothing and says
    /// which run it started.
    fn create_run_keyed<'a>(
        &'a self,
        run: &'a RunRecord,
        audit: &'a [AuditEntry],
        key: &'a StartKey,
    ) -> StoreFuture<'a, Started>;

    /// Records a deployed workflow version, signed with the audit key, with its audit records.
    /// The same name and version deployed again with the same content is
    /// [`Deployed::Existing`] (nothing written); with different content it fails with
    /// [`StoreError::Immutable`]. A store without a key fails with [`StoreError::Key`].
    fn deploy_workflow<'a>(
        &'a self,
        deployment: &'a DeploymentRecord,
        audit: &'a [AuditEntry],
    ) -> StoreFuture<'a, Deployed>;
    /// Deployed versions whose signature holds, of `name` or of every workflow, by name and
    /// then oldest first.
    fn deployments<'a>(&'a self, name: Option<&'a str>) -> StoreFuture<'a, Vec<DeploymentRecord>>;
    /// One deployed version, if its row exists and its signature holds.
    fn deployment<'a>(&'a self, name: &'a str, version: &'a str) -> StoreFuture<'a, Option<DeploymentRecord>>;
    /// Moves the kill switch of every version of `name` to `enabled` (re-signing each row),
    /// with its audit records. `false` when nothing changed: no such workflow, or already so.
    fn switch_workflow<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
        at: i64,
        audit: &'a [AuditEntry],
    ) -> StoreFuture<'a, bool>;
}
