//! The connections commits write through, and the two-round-trip transaction on them.
//!
//! A commit sits on every step's critical path. Through sqlx's pool, every statement is a round
//! trip to the connection's worker thread, and the pool adds a liveness ping on each acquire and
//! release (for SQLite it only checks that the worker thread is alive). So commits go through
//! one dedicated connection behind an async mutex: SQLite admits one writer at a time anyway,
//! and waiting on the mutex beats polling the busy handler. A transaction is two round trips:
//! `BEGIN IMMEDIATE` together with the one read its writes depend on ([`Heads`]), then the
//! writes together with `COMMIT` ([`WriteTx::finish`]).
//!
//! Both [`Durability`] levels use the same connection, setting `synchronous` in the first round
//! trip: a connection whose page cache another connection's commit made stale must read the
//! changed pages again, which made a second writer connection cost as much as an fsync.
//!
//! The transaction statements are sent as SQL, not through sqlx's `Transaction`, so sqlx does
//! not know one is open. A `WriteTx` dropped half-way (its future cancelled) rolls back itself:
//! its drop hands the connection to a task that sends `ROLLBACK`, so the write lock is released
//! at once, not when this process next writes (other processes wait on that lock). Without a
//! runtime to run that task, the connection stays marked dirty and its next user rolls back
//! first. A transaction never committed writes nothing.

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::batch::Batch;
use super::db_error;
use crate::{Durability, StoreError};

/// One dedicated write connection.
pub(super) struct Writer {
    /// `None` once the store is closed.
    conn: Arc<Mutex<Option<WriterConn>>>,
}

struct WriterConn {
    conn: SqliteConnection,
    /// A transaction may be open: set before `BEGIN`, cleared once it committed or rolled back.
    dirty: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// What a commit's writes depend on, read in one statement under the write lock.
pub(super) struct Heads {
    /// The run's version, when a run id was given (`None`: no such run).
    pub run_version: Option<i64>,
    /// The run's lease, `(owner, token)`, when a run id was given and it has one.
    pub lease: Option<(String, i64)>,
    /// `(seq, hash)` of the newest audit record (`None`: empty chain).
    pub audit: Option<(u64, String)>,
    /// Newest signed checkpoint's seq (0: none).
    pub last_checkpoint: u64,
}

/// Run version, audit head seq and hash, newest checkpoint seq, lease owner and token.
type HeadsRow = (Option<i64>, Option<i64>, Option<String>, Option<i64>, Option<String>, Option<i64>);

/// Opens the transaction and reads the heads; `synchronous` first (it cannot change inside a
/// transaction). `FULL`: the commit is fsynced before it returns. `NORMAL` (in WAL mode): it
/// reaches the WAL and is fsynced by the next `FULL` commit.
macro_rules! begin_and_read_heads {
    ($synchronous:literal) => {
        concat!(
            "PRAGMA synchronous = ",
            $synchronous,
            "; BEGIN IMMEDIATE; SELECT (SELECT version FROM runs WHERE id = ?1), ",
            "(SELECT seq FROM audit ORDER BY seq DESC LIMIT 1), (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ",
            "(SELECT MAX(seq) FROM audit_checkpoints), ",
            "(SELECT owner FROM run_leases WHERE run_id = ?1), (SELECT token FROM run_leases WHERE run_id = ?1)"
        )
    };
}

impl Writer {
    pub(super) async fn open(options: &SqliteConnectOptions) -> Result<Writer, sqlx::Error> {
        let conn = options.connect().await?;
        Ok(Writer { conn: Arc::new(Mutex::new(Some(WriterConn { conn, dirty: false }))) })
    }

    /// Waits for the connection, then opens a write transaction committing with `durability`
    /// and reads the [`Heads`] (for `run_id`'s version, if given) in one round trip.
    pub(super) async fn begin(
        &self,
        durability: Durability,
        run_id: Option<&str>,
    ) -> Result<(WriteTx, Heads), StoreError> {
        let mut guard = self.conn.clone().lock_owned().await;
        let writer = guard.as_mut().ok_or_else(|| StoreError::Database("the store is closed".into()))?;
        if writer.dirty {
            // Left by a transaction cancelled outside a runtime.
            rollback_quietly(writer).await;
        }
        writer.dirty = true;
        // From here a drop of this future (while BEGIN waits for the lock, say) rolls back.
        let mut tx = WriteTx { guard: Some(guard) };
        let sql = match durability {
            Durability::Immediate => begin_and_read_heads!("FULL"),
            Durability::Deferred => begin_and_read_heads!("NORMAL"),
        };
        let row: Result<HeadsRow, _> = sqlx::query_as(sql).bind(run_id).fetch_one(tx.conn()).await;
        let (run_version, seq, hash, last, lease_owner, lease_token) = match row {
            Ok(row) => row,
            Err(e) => {
                tx.rollback_quietly().await;
                return Err(db_error(e));
            }
        };
        let audit = match (seq, hash) {
            (Some(seq), Some(hash)) => match u64::try_from(seq) {
                Ok(seq) => Some((seq, hash)),
                Err(_) => {
                    tx.rollback_quietly().await;
                    let message = format!("seq {seq} is negative");
                    return Err(StoreError::Corrupt { what: "audit record", message });
                }
            },
            _ => None,
        };
        let heads = Heads {
            run_version,
            audit,
            last_checkpoint: last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            lease: lease_owner.zip(lease_token),
        };
        Ok((tx, heads))
    }

    /// Closes the connection; later transactions fail with "the store is closed".
    pub(super) async fn close(&self) {
        if let Some(writer) = self.conn.lock().await.take() {
            // Closing rolls back whatever a cancelled transaction left open.
            let _ = writer.conn.close().await;
        }
    }
}

/// An open write transaction, holding its connection. End it with [`finish`](Self::finish);
/// dropping it rolls back in a background task.
pub(super) struct WriteTx {
    /// `Some` until dropped.
    guard: Option<OwnedMutexGuard<Option<WriterConn>>>,
}

impl WriteTx {
    fn writer(&mut self) -> &mut WriterConn {
        // `begin` only hands out a transaction on an open connection, only `close` takes it
        // (which needs this guard's lock), and the guard is only taken by `drop`.
        self.guard.as_mut().and_then(|g| g.as_mut()).expect("a transaction holds an open connection")
    }

    /// For the statements that must read before they write (approval transitions, cap charges).
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.writer().conn
    }

    /// Ends the transaction: with the writes `built` (and `COMMIT`) in one round trip, handing
    /// back what was built beside them; or, if building them failed or the writes fail, rolled
    /// back, writing nothing.
    pub(super) async fn finish<T>(mut self, built: Result<(Batch, T), StoreError>) -> Result<T, StoreError> {
        let (mut batch, value) = match built {
            Ok(built) => built,
            Err(e) => {
                self.rollback_quietly().await;
                return Err(e);
            }
        };
        batch.push("COMMIT", []);
        match batch.execute(self.conn()).await {
            Ok(()) => {
                self.writer().dirty = false;
                Ok(value)
            }
            Err(e) => {
                self.rollback_quietly().await;
                Err(e)
            }
        }
    }

    async fn rollback_quietly(&mut self) {
        rollback_quietly(self.writer()).await;
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else { return };
        if !guard.as_ref().is_some_and(|w| w.dirty) {
            return;
        }
        // Cancelled half-way: release the write lock now. The task holds the connection (and
        // so the mutex) until the `ROLLBACK` is done, so the next transaction queues behind it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(writer) = guard.as_mut() {
                    rollback_quietly(writer).await;
                }
            });
        }
    }
}

async fn rollback_quietly(writer: &mut WriterConn) {
    // An error means no transaction is open (SQLite already rolled it back, or `BEGIN` itself
    // failed); if the connection is broken, the next `begin` reports it.
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut writer.conn).await;
    writer.dirty = false;
}
