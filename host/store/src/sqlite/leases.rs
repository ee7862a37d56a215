//! Leases on advancing runs: each claim, renewal and release is one short write transaction
//! (read under the write lock, so two processes claiming one run cannot both get it). The
//! fencing token only grows; commits made under a lease are checked against it in
//! [`super::write`].

use super::batch::Batch;
use super::{SqliteStore, db_error};
use crate::{Durability, LeaseClaim, RunLease, StoreError};

pub(super) async fn claim(
    store: &SqliteStore,
    run_id: &str,
    owner: &str,
    now: i64,
    ttl_ms: i64,
    take_over: Option<&RunLease>,
) -> Result<LeaseClaim, StoreError> {
    // Deferred: no fsync of its own. Nothing outside the database acts on a lease, and every
    // commit made under it that must be durable fsyncs the WAL, the lease's row included, first;
    // a lease lost to a power cut takes nothing made under it along.
    let (mut tx, _) = store.writer.begin(Durability::Deferred, None).await?;
    let held: Result<Option<(String, i64, i64)>, StoreError> =
        sqlx::query_as("SELECT owner, token, expires_at FROM run_leases WHERE run_id = ?1")
            .bind(run_id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error);
    let expires_at = now.saturating_add(ttl_ms);
    let built = held.map(|held| {
        let gone = |o: &str, token: i64| take_over.is_some_and(|t| t.owner == o && t.token == token);
        let token = match held {
            None => 1,
            Some((o, token, _)) if o == owner => token,
            Some((o, token, until)) if until < now || gone(&o, token) => token.saturating_add(1),
            Some((o, token, until)) => {
                let holder = RunLease { run_id: run_id.to_string(), owner: o, token, expires_at: until };
                return (Batch::default(), LeaseClaim::Held(holder));
            }
        };
        let mut batch = Batch::default();
        batch.push(
            "INSERT INTO run_leases (run_id, owner, token, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, \
             expires_at = excluded.expires_at",
            [run_id.into(), owner.into(), token.into(), expires_at.into()],
        );
        let lease = RunLease { run_id: run_id.to_string(), owner: owner.to_string(), token, expires_at };
        (batch, LeaseClaim::Granted(lease))
    });
    tx.finish(built).await
}

pub(super) async fn renew(store: &SqliteStore, lease: &RunLease, now: i64, ttl_ms: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE run_leases SET expires_at = ?1 WHERE run_id = ?2 AND owner = ?3 AND token = ?4")
        .bind(now.saturating_add(ttl_ms))
        .bind(&lease.run_id)
        .bind(&lease.owner)
        .bind(lease.token)
        .execute(&store.pool)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn release(store: &SqliteStore, lease: &RunLease) -> Result<(), StoreError> {
    sqlx::query("UPDATE run_leases SET expires_at = 0 WHERE run_id = ?1 AND owner = ?2 AND token = ?3")
        .bind(&lease.run_id)
        .bind(&lease.owner)
        .bind(lease.token)
        .execute(&store.pool)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn unleased(store: &SqliteStore, now: i64, limit: u32) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT r.id FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id \
         WHERE r.status = 'running' AND (l.run_id IS NULL OR l.expires_at < ?1) \
         ORDER BY r.created_at, r.rowid LIMIT ?2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(db_error)
}

#[cfg(test)]
mod tests {
    use crate::{Commit, LeaseClaim, RunLease, SqliteStore, Store, StoreError};

    fn granted(claim: LeaseClaim) -> RunLease {
        match claim {
            LeaseClaim::Granted(lease) => lease,
            LeaseClaim::Held(holder) => panic!("held by {holder:?}"),
        }
    }

    #[tokio::test]
    async fn one_owner_at_a_time_and_a_taken_over_lease_is_fenced_off() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), None).await.unwrap();
        let a = granted(s.claim_run("r1", "a", 1_000, 100, None).await.unwrap());
        assert_eq!(a.token, 1);
        assert_eq!(s.claim_run("r1", "b", 1_050, 100, None).await.unwrap(), LeaseClaim::Held(a.clone()), "a holds it");
        assert!(s.renew_run(&a, 1_090, 100).await.unwrap());
        assert!(matches!(s.claim_run("r1", "b", 1_150, 100, None).await.unwrap(), LeaseClaim::Held(_)), "renewed");
        // `a` stalls past its lease: `b` takes the run over with a larger token.
        let b = granted(s.claim_run("r1", "b", 1_200, 100, None).await.unwrap());
        assert_eq!(b.token, 2);
        assert!(!s.renew_run(&a, 1_210, 100).await.unwrap(), "a's lease is gone");
        let fenced = s.commit(Commit { fence: Some(a.fence()), ..Commit::default() }).await;
        assert!(matches!(fenced, Err(StoreError::Fenced { .. })), "{fenced:?}");
        s.commit(Commit { fence: Some(b.fence()), ..Commit::default() }).await.unwrap();
        // Released: the next claim is free at once, and its token still grows.
        s.release_run(&b).await.unwrap();
        let a_again = granted(s.claim_run("r1", "a", 1_220, 100, None).await.unwrap());
        assert_eq!(a_again.token, 3);
        // A holder known to be gone is taken over before its lease runs out — that holder only.
        assert!(matches!(s.claim_run("r1", "c", 1_230, 100, Some(&b)).await.unwrap(), LeaseClaim::Held(_)));
        let c = granted(s.claim_run("r1", "c", 1_230, 100, Some(&a_again)).await.unwrap());
        assert_eq!(c.token, 4);
    }
}
