//! The SQLite backend: opening (pragmas, migrations), reads, kv. Writes live in [`write`].
//!
//! Pragmas and why:
//! - `journal_mode=WAL`: readers never block the writer and vice versa;
//! - `synchronous=FULL`: every commit is fsynced before it returns, so a run survives
//!   `kill -9` and power loss at any point after `commit` returned;
//! - `foreign_keys=ON`: steps, tool calls, approvals and charges belong to an existing run;
//! - `busy_timeout=10s`: a second process waits for the write lock instead of failing.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE` (the write lock first), so the reads a
//! commit checks (run version, approval status, cap usage, audit head) cannot be changed by
//! another process before it writes.

mod batch;
mod deployments;
mod leases;
mod rows;
mod tokens;
mod vouch;
mod write;
mod writer;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::audit::{AuditCheckpoint, AuditEntry, SealedRecord, Signer};
use crate::{
    ApprovalFilter, ApprovalRecord, Commit, Deployed, DeploymentRecord, LeaseClaim, RunFilter, RunLease, RunRecord,
    RunSummary, StartKey, Started, StepRecord, Store, StoreError, StoreFuture, TokenRecord, ToolCallRecord,
};
use rows::{approval_columns, run_columns, summary_columns, tool_call_columns};

/// Connections per store handle; writes are serialised by SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Embedded migrations, applied in order; `PRAGMA user_version` records the last one applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_messages.sql")),
    (3, include_str!("../migrations/0003_waiting_approval.sql")),
    (4, include_str!("../migrations/0004_audit_by_step.sql")),
    (5, include_str!("../migrations/0005_approval_kind.sql")),
    (6, include_str!("../migrations/0006_api_tokens.sql")),
    (7, include_str!("../migrations/0007_approvals_by_status_requested.sql")),
    (8, include_str!("../migrations/0008_deployments.sql")),
    (9, include_str!("../migrations/0009_approval_authority.sql")),
    (10, include_str!("../migrations/0010_run_leases.sql")),
];

/// The embedded store: one SQLite file (plus its `-wal` and `-shm`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads, kv, migrations.
    pool: SqlitePool,
    /// The connection every write transaction goes through. [`Durability::Deferred`] commits
    /// reach the WAL but are fsynced by the next `Immediate` commit (one WAL file, so that
    /// fsync covers every frame before it).
    writer: Arc<writer::Writer>,
    signer: Option<Arc<Signer>>,
    path: PathBuf,
}

fn db_error(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Open (creating if needed) the database at `db_path`: parent directories 0700, the file
    /// 0600, pragmas, migrations. With a `signer`, audit checkpoints are signed after commits
    /// that cross a multiple of 64 records or ask for one.
    pub async fn open(db_path: &Path, signer: Option<Signer>) -> Result<SqliteStore, StoreError> {
        let open_error = |message: String| StoreError::Open { path: db_path.display().to_string(), message };
        if let Some(parent) = db_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| open_error(format!("cannot create {}: {e}", parent.display())))?;
        }
        // Create the file ourselves so it is private; SQLite would create it with the umask,
        // and gives the -wal and -shm files the database file's mode.
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db_path)
            .map_err(|e| open_error(format!("cannot create the database file: {e}")))?;
        let options = SqliteConnectOptions::new()
            .filename(db_path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = connect(&options).await.map_err(|e| open_error(e.to_string()))?;
        migrate(&pool).await.map_err(|e| match e {
            StoreError::Database(message) => open_error(format!("migration failed: {message}")),
            other => open_error(other.to_string()),
        })?;
        let writer = writer::Writer::open(&options).await.map_err(|e| open_error(e.to_string()))?;
        Ok(SqliteStore { pool, writer: Arc::new(writer), signer: signer.map(Arc::new), path: db_path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_deref()
    }

    /// Close every connection (SQLite then folds the WAL back into the file). Other clones of
    /// this handle stop working too.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Connect the read pool. Switching a fresh file to WAL needs its exclusive lock, and SQLite
/// answers `SQLITE_BUSY` at once (without the busy handler) when two connections race for it,
/// so several processes opening a new file together retry here, within [`BUSY_TIMEOUT`].
async fn connect(options: &SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        let attempt = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // The liveness ping sqlx sends on every acquire is a round trip to the connection's
            // worker thread that, for an embedded database, can only find the thread alive.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await;
        match attempt {
            Err(e) if is_busy(&e) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6), including their extended codes.
fn is_busy(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|e| e.code()).and_then(|code| code.parse::<u32>().ok());
    matches!(code.map(|code| code & 0xff), Some(5 | 6))
}

/// Apply the migrations newer than `user_version` in one `BEGIN IMMEDIATE` transaction, so two
/// processes opening a fresh file at once cannot both run them (sqlx's own migrator does not
/// lock on SQLite).
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
    let current: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await.map_err(db_error)?;
    let latest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    if current > latest {
        return Err(StoreError::Database(format!(
            "the database has schema version {current}, newer than this build knows ({latest})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(|e| StoreError::Database(format!("{version}: {e}")))?;
    }
    if current < latest {
        // PRAGMA takes no parameters; `latest` is a constant of this file.
        let set = format!("PRAGMA user_version = {latest}");
        sqlx::query(sqlx::AssertSqlSafe(set)).execute(&mut *tx).await.map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}

impl Store for SqliteStore {
    fn create_run<'a>(&'a self, run: &'a RunRecord, audit: &'a [AuditEntry]) -> StoreFuture<'a, ()> {
        Box::pin(write::create_run(self, run, audit))
    }

    fn run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<RunRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE id = ?1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
            row.as_ref().map(rows::run).transpose()
        })
    }

    fn runs<'a>(&'a self, filter: &'a RunFilter) -> StoreFuture<'a, Vec<RunSummary>> {
        Box::pin(async move {
            // A negative LIMIT is no limit in SQLite.
            let limit = filter.limit.map_or(-1, i64::from);
            // Ties on `created_at` go newest inserted first (rowid), so the cursor compares rowids
            // through its run's id.
            let found = sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM runs WHERE (?1 IS NULL OR status = ?1) AND (?3 IS NULL OR created_at < ?3 OR ",
                "(created_at = ?3 AND rowid < (SELECT rowid FROM runs WHERE id = ?4))) ",
                "ORDER BY created_at DESC, rowid DESC LIMIT ?2"
            ))
            .bind(filter.status.map(|s| s.as_str()))
            .bind(limit)
            .bind(filter.after.as_ref().map(|(at, _)| *at))
            .bind(filter.after.as_ref().map(|(_, id)| id.as_str()))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            found.iter().map(rows::summary).collect()
        })
    }

    fn commit<'a>(&'a self, commit: Commit) -> StoreFuture<'a, ()> {
        Box::pin(write::commit(self, commit))
    }

    fn steps<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<StepRecord>> {
        Box::pin(async move {
            let found =
                sqlx::query("SELECT run_id, step, agent, turn, created_at FROM steps WHERE run_id = ?1 ORDER BY step")
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
            found.iter().map(rows::step).collect()
        })
    }

    fn tool_calls<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        Box::pin(async move {
            let found = sqlx::query(concat!(
                "SELECT ",
                tool_call_columns!(),
                " FROM tool_calls WHERE run_id = ?1 ORDER BY step, call_index"
            ))
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            found.iter().map(rows::tool_call).collect()
        })
    }

    fn step_tool_calls<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<ToolCallRecord>> {
        Box::pin(async move {
            let found = sqlx::query(concat!(
                "SELECT ",
                tool_call_columns!(),
                " FROM tool_calls WHERE run_id = ?1 AND step = ?2 ORDER BY call_index"
            ))
            .bind(run_id)
            .bind(i64::from(step))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            found.iter().map(rows::tool_call).collect()
        })
    }

    fn messages<'a>(&'a self, run_id: &'a str, agent: &'a str, from_seq: u64) -> StoreFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let from = i64::try_from(from_seq).map_err(|e| StoreError::Database(e.to_string()))?;
            let found: Vec<String> = sqlx::query_scalar(
                "SELECT message FROM messages WHERE run_id = ?1 AND agent = ?2 AND seq >= ?3 ORDER BY seq",
            )
            .bind(run_id)
            .bind(agent)
            .bind(from)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            found
                .iter()
                .map(|text| {
                    serde_json::from_str(text)
                        .map_err(|e| StoreError::Corrupt { what: "message", message: e.to_string() })
                })
                .collect()
        })
    }

    fn approval<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApprovalRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!("SELECT ", approval_columns!(), " FROM approvals WHERE id = ?1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
            row.as_ref().map(rows::approval).transpose()
        })
    }

    fn approvals<'a>(&'a self, filter: &'a ApprovalFilter) -> StoreFuture<'a, Vec<ApprovalRecord>> {
        Box::pin(async move {
            // One query per filter shape, so SQLite can use the index that fits (a generic
            // `?1 IS NULL OR …` predicate makes it scan the whole table).
            let paged = filter.limit.is_some() || filter.after.is_some();
            let query = match (&filter.run_id, &filter.status, paged) {
                (Some(_), _, false) => concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE run_id = ?2 AND (?1 IS NULL OR status = ?1) ORDER BY requested_at, rowid"
                ),
                (None, Some(_), false) => concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE status = ?1 AND (?2 IS NULL) ORDER BY requested_at, rowid"
                ),
                (None, None, false) => concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE ?1 IS NULL AND ?2 IS NULL ORDER BY requested_at, rowid"
                ),
                (Some(_), _, true) => concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE run_id = ?2 AND (?1 IS NULL OR status = ?1)",
                    " AND (?3 IS NULL OR (requested_at, id) > (?3, ?4)) ORDER BY requested_at, id LIMIT ?5"
                ),
                // `approvals_by_status_requested` serves this one a page at a time.
                (None, Some(_), true) => concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE status = ?1 AND (?2 IS NULL)",
                    " AND (?3 IS NULL OR (requested_at, id) > (?3, ?4)) ORDER BY requested_at, id LIMIT ?5"
                ),
                (None, None, true) => concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE ?1 IS NULL AND ?2 IS NULL",
                    " AND (?3 IS NULL OR (requested_at, id) > (?3, ?4)) ORDER BY requested_at, id LIMIT ?5"
                ),
            };
            let mut q = sqlx::query(query).bind(filter.status.map(|s| s.as_str())).bind(filter.run_id.as_deref());
            if paged {
                // A negative LIMIT is no limit in SQLite.
                q = q
                    .bind(filter.after.as_ref().map(|(at, _)| *at))
                    .bind(filter.after.as_ref().map(|(_, id)| id.as_str()))
                    .bind(filter.limit.map_or(-1, i64::from));
            }
            let found = q.fetch_all(&self.pool).await.map_err(db_error)?;
            found.iter().map(rows::approval).collect()
        })
    }

    fn expire_approvals(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<ApprovalRecord>> {
        Box::pin(write::expire_approvals(self, now, limit))
    }

    fn cap_usage<'a>(&'a self, scope: &'a str, now: i64, window_ms: Option<i64>) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await.map_err(db_error)?;
            write::cap_usage(&mut conn, scope, now, window_ms).await
        })
    }

    fn audit_records(&self, from: u64, limit: u32) -> StoreFuture<'_, Vec<SealedRecord>> {
        Box::pin(async move {
            let from = i64::try_from(from).unwrap_or(i64::MAX);
            let found = sqlx::query(
                "SELECT seq, ts, run_id, kind, body, prev_hash, hash FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .bind(from)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            found.iter().map(rows::sealed).collect()
        })
    }

    fn vouched_step_records<'a>(&'a self, run_id: &'a str, step: u32) -> StoreFuture<'a, Vec<SealedRecord>> {
        Box::pin(async move {
            // The same expression as the `audit_by_run_step` index, so the index serves it.
            let found = sqlx::query(
                "SELECT seq, ts, run_id, kind, body, prev_hash, hash FROM audit \
                 WHERE run_id = ?1 AND json_extract(body, '$.step') = ?2 ORDER BY seq",
            )
            .bind(run_id)
            .bind(i64::from(step))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            let records = found.iter().map(rows::sealed).collect::<Result<Vec<_>, _>>()?;
            vouch::vouched(&self.pool, self.signer.as_deref(), records).await
        })
    }

    fn vouched_workflow_switch<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<SealedRecord>> {
        Box::pin(async move {
            let found = sqlx::query(
                "SELECT seq, ts, run_id, kind, body, prev_hash, hash FROM audit \
                 WHERE kind = 'workflow.switched' AND json_extract(body, '$.workflow') = ?1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            let records = found.iter().map(rows::sealed).collect::<Result<Vec<_>, _>>()?;
            Ok(vouch::vouched(&self.pool, self.signer.as_deref(), records).await?.into_iter().next())
        })
    }

    fn run_started_by_key<'a>(&'a self, caller: &'a str, key: &'a str) -> StoreFuture<'a, Option<(String, String)>> {
        Box::pin(async move {
            sqlx::query_as("SELECT run_id, request_hash FROM run_starts WHERE caller = ?1 AND key = ?2")
                .bind(caller)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)
        })
    }

    fn vouched_run_start<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<SealedRecord>> {
        Box::pin(async move {
            let found = sqlx::query(
                "SELECT seq, ts, run_id, kind, body, prev_hash, hash FROM audit WHERE run_id = ?1 ORDER BY seq LIMIT 1",
            )
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            let records = found.iter().map(rows::sealed).collect::<Result<Vec<_>, _>>()?;
            Ok(vouch::vouched(&self.pool, self.signer.as_deref(), records).await?.into_iter().next())
        })
    }

    fn audit_checkpoints(&self) -> StoreFuture<'_, Vec<AuditCheckpoint>> {
        Box::pin(async move {
            let found =
                sqlx::query("SELECT seq, hash, signed_at, public_key, signature FROM audit_checkpoints ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
            found.iter().map(rows::checkpoint).collect()
        })
    }

    fn newest_audit_checkpoint(&self) -> StoreFuture<'_, Option<AuditCheckpoint>> {
        Box::pin(async move {
            // `seq` is the table's INTEGER PRIMARY KEY (its rowid): this reads one row from the
            // end of the b-tree, not the table.
            let found = sqlx::query(
                "SELECT seq, hash, signed_at, public_key, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            found.as_ref().map(rows::checkpoint).transpose()
        })
    }

    fn create_token<'a>(&'a self, token: &'a TokenRecord, audit: &'a [AuditEntry]) -> StoreFuture<'a, TokenRecord> {
        Box::pin(tokens::create(self, token, audit))
    }

    fn token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TokenRecord>> {
        Box::pin(tokens::one(self, id))
    }

    fn tokens(&self) -> StoreFuture<'_, Vec<TokenRecord>> {
        Box::pin(tokens::all(self))
    }

    fn revoke_token<'a>(&'a self, id: &'a str, at: i64, audit: &'a [AuditEntry]) -> StoreFuture<'a, bool> {
        Box::pin(tokens::revoke(self, id, at, audit))
    }

    fn create_run_keyed<'a>(
        &'a self,
        run: &'a RunRecord,
        audit: &'a [AuditEntry],
        key: &'a StartKey,
    ) -> StoreFuture<'a, Started> {
        Box::pin(write::create_run_keyed(self, run, audit, key))
    }

    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
        now: i64,
        ttl_ms: i64,
        take_over: Option<&'a RunLease>,
    ) -> StoreFuture<'a, LeaseClaim> {
        Box::pin(leases::claim(self, run_id, owner, now, ttl_ms, take_over))
    }

    fn renew_run<'a>(&'a self, lease: &'a RunLease, now: i64, ttl_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(leases::renew(self, lease, now, ttl_ms))
    }

    fn release_run<'a>(&'a self, lease: &'a RunLease) -> StoreFuture<'a, ()> {
        Box::pin(leases::release(self, lease))
    }

    fn unleased_runs(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<String>> {
        Box::pin(leases::unleased(self, now, limit))
    }

    fn deploy_workflow<'a>(
        &'a self,
        deployment: &'a DeploymentRecord,
        audit: &'a [AuditEntry],
    ) -> StoreFuture<'a, Deployed> {
        Box::pin(deployments::deploy(self, deployment, audit))
    }

    fn deployments<'a>(&'a self, name: Option<&'a str>) -> StoreFuture<'a, Vec<DeploymentRecord>> {
        Box::pin(deployments::list(self, name))
    }

    fn deployment<'a>(&'a self, name: &'a str, version: &'a str) -> StoreFuture<'a, Option<DeploymentRecord>> {
        Box::pin(deployments::one(self, name, version))
    }

    fn switch_workflow<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
        at: i64,
        audit: &'a [AuditEntry],
    ) -> StoreFuture<'a, bool> {
        Box::pin(deployments::switch(self, name, enabled, at, audit))
    }

    fn kv_get<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
                .bind(namespace)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)
        })
    }

    fn kv_set<'a>(&'a self, namespace: &'a str, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )
            .bind(namespace)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(())
        })
    }

    fn kv_delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")
                .bind(namespace)
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn kv_list<'a>(&'a self, namespace: &'a str, prefix: &'a str, limit: u32) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            // Keys with the prefix are contiguous from `prefix` on in byte order, so the index
            // range starts there; `substr` (in characters, like `length`) keeps only them.
            sqlx::query_scalar(
                "SELECT key FROM kv WHERE namespace = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2 \
                 ORDER BY key LIMIT ?3",
            )
            .bind(namespace)
            .bind(prefix)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
        })
    }

    fn kv_count<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kv WHERE namespace = ?1")
                .bind(namespace)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest_schema() -> i64 {
        MIGRATIONS.last().map(|(version, _)| *version).unwrap_or(0)
    }
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn pragmas_permissions_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/tollgate.db");
        let store = SqliteStore::open(&path, None).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let text = |sql: &'static str| sqlx::query_scalar::<_, String>(sql);
        let int = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        assert_eq!(text("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap(), "wal");
        assert_eq!(int("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap(), 2, "FULL");
        assert_eq!(int("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap(), 1);
        assert_eq!(int("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap(), 10_000);
        assert_eq!(int("PRAGMA user_version").fetch_one(&mut *conn).await.unwrap(), latest_schema());
        drop(conn);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        store.close().await;
        // Reopening does not run the migration again (it would fail on existing tables).
        SqliteStore::open(&path, None).await.unwrap().close().await;
    }

    #[tokio::test]
    async fn processes_opening_a_fresh_file_together_migrate_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.db");
        let opens: Vec<_> = (0..4).map(|_| SqliteStore::open(&path, None)).collect();
        for store in futures::future::join_all(opens).await {
            store.unwrap();
        }
    }

    #[tokio::test]
    async fn a_version_1_database_is_upgraded_in_place_keeping_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.db");
        let store = SqliteStore::open(&path, None).await.unwrap();
        // Roll the file back to schema 1, as a build from before conversation rows left it.
        sqlx::raw_sql(
            "DROP INDEX audit_by_kind; DROP TABLE run_leases; ALTER TABLE approvals DROP COLUMN votes; ALTER TABLE approvals DROP COLUMN authority; DROP TABLE run_starts; DROP TABLE workflow_deployments; DROP INDEX approvals_by_status_requested; DROP TABLE api_tokens; DROP TABLE messages; DROP INDEX audit_by_run_step; ALTER TABLE approvals DROP COLUMN kind; \
             PRAGMA user_version = 1",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::raw_sql(
            "INSERT INTO runs VALUES ('r1', 'wf', '1.0.0', '/wf.toml', 'd', 'goal', 'running', NULL, 1, 1, NULL, \
             '{\"steps\":0,\"tool_calls\":0,\"fuel\":0,\"input_tokens\":0,\"output_tokens\":0,\"spend\":0}', '{}', '{\"conversations\": {}}', 1)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        store.close().await;
        let store = SqliteStore::open(&path, None).await.unwrap();
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&store.pool).await.unwrap();
        assert_eq!(version, latest_schema());
        assert_eq!(store.run("r1").await.unwrap().unwrap().goal, "goal");
        assert!(store.messages("r1", "analyst", 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.db");
        let store = SqliteStore::open(&path, None).await.unwrap();
        sqlx::raw_sql("PRAGMA user_version = 99").execute(&store.pool).await.unwrap();
        store.close().await;
        let err = SqliteStore::open(&path, None).await.unwrap_err();
        assert!(matches!(&err, StoreError::Open { message, .. } if message.contains("newer")), "{err}");
    }
}
