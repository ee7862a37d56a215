//! Write transactions: `create_run`, `commit`, `expire_approvals`, and the audit checkpoint
//! signed after them.
//!
//! Each is one `BEGIN IMMEDIATE` transaction; any error returns before `COMMIT` and dropping
//! the transaction rolls it back, so a failed commit writes nothing at all.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sqlx::SqliteConnection;

use super::rows::{self, approval_columns};
use super::{SqliteStore, db_error};
use crate::audit::{canonical_json, seal};
use crate::{
    ApprovalRecord, ApprovalStatus, ApprovalTransition, AuditEvent, CapCharge, Commit, RunRecord, RunStatus, RunUpdate,
    StepRecord, StoreError, ToolCallRecord,
};

/// A checkpoint is signed whenever the chain passes a multiple of this many records.
pub(super) const CHECKPOINT_EVERY: u64 = 64;

/// What a transaction left for the post-commit checkpoint decision.
struct AuditHead {
    /// `(seq, hash)` of the newest record after the transaction (`None`: empty chain).
    head: Option<(u64, String)>,
    /// Newest checkpoint seq in the database when the transaction ran (0: none).
    last_checkpoint: u64,
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

pub(super) async fn create_run(store: &SqliteStore, run: &RunRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
    let counters = serde_json::to_string(&run.counters).map_err(|e| StoreError::Database(e.to_string()))?;
    sqlx::query(
        "INSERT INTO runs (id, workflow_name, workflow_version, workflow_path, workflow_digest, goal, status, \
         status_detail, created_at, updated_at, deadline_at, counters, options, checkpoint, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 1)",
    )
    .bind(&run.id)
    .bind(&run.workflow_name)
    .bind(&run.workflow_version)
    .bind(&run.workflow_path)
    .bind(&run.workflow_digest)
    .bind(&run.goal)
    .bind(run.status.as_str())
    .bind(run.status_detail.as_deref())
    .bind(run.created_at)
    .bind(run.updated_at)
    .bind(run.deadline_at)
    .bind(counters)
    .bind(json_text(&run.options))
    .bind(json_text(&run.checkpoint))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let head = append_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_error)?;
    checkpoint_after_commit(store, &head, false).await;
    Ok(())
}

pub(super) async fn commit(store: &SqliteStore, commit: Commit) -> Result<(), StoreError> {
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
    if let Some(run) = &commit.run {
        update_run(&mut tx, run).await?;
    }
    for transition in &commit.approval_transitions {
        transition_approval(&mut tx, transition).await?;
    }
    for charge in &commit.cap_charges {
        charge_cap(&mut tx, charge).await?;
    }
    for approval in &commit.new_approvals {
        insert_approval(&mut tx, approval).await?;
    }
    for step in &commit.steps {
        insert_step(&mut tx, step).await?;
    }
    for call in &commit.tool_calls {
        upsert_tool_call(&mut tx, call).await?;
    }
    let head = append_audit(&mut tx, &commit.audit).await?;
    tx.commit().await.map_err(db_error)?;
    checkpoint_after_commit(store, &head, commit.checkpoint_audit).await;
    Ok(())
}

pub(super) async fn expire_approvals(store: &SqliteStore, now: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
    // Nearly always nothing is due: find that out without taking the write lock, which would
    // serialise every process's loop behind this check.
    let any_due = sqlx::query("SELECT 1 FROM approvals WHERE status = 'pending' AND expires_at <= ?1 LIMIT 1")
        .bind(now)
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error)?;
    if any_due.is_none() {
        return Ok(Vec::new());
    }
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
    let due = sqlx::query(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at, rowid"
    ))
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let mut expired = due.iter().map(rows::approval).collect::<Result<Vec<_>, _>>()?;
    if expired.is_empty() {
        return Ok(expired);
    }
    // Group by run, in order of each run's first expired approval.
    let mut run_ids: Vec<String> = Vec::new();
    for approval in &expired {
        if !run_ids.contains(&approval.run_id) {
            run_ids.push(approval.run_id.clone());
        }
    }
    let mut events = Vec::new();
    for run_id in &run_ids {
        let mut ids = Vec::new();
        for approval in expired.iter_mut().filter(|a| &a.run_id == run_id) {
            sqlx::query("UPDATE approvals SET status = 'expired', decided_at = ?2 WHERE id = ?1")
                .bind(&approval.id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            approval.status = ApprovalStatus::Expired;
            approval.decided_at = Some(now);
            ids.push(approval.id.clone());
            events.push(AuditEvent {
                ts: now,
                run_id: Some(run_id.clone()),
                kind: "approval.expired".into(),
                body: json!({
                    "approval_id": approval.id,
                    "step": approval.step,
                    "index": approval.index,
                    "agent": approval.agent,
                    "tool": approval.tool,
                    "expires_at": approval.expires_at,
                }),
            });
        }
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = ?1")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let status = status.as_deref().and_then(RunStatus::parse);
        // A run that ended (or is already escalated) keeps its status; its approvals still expire.
        if status.is_some_and(|s| !s.is_terminal() && s != RunStatus::Escalated) {
            let detail = format!("approval {} expired before anyone decided", ids.join(", "));
            sqlx::query(
                "UPDATE runs SET status = 'escalated', status_detail = ?2, updated_at = ?3, version = version + 1 \
                 WHERE id = ?1",
            )
            .bind(run_id)
            .bind(&detail)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            events.push(AuditEvent {
                ts: now,
                run_id: Some(run_id.clone()),
                kind: "run.escalated".into(),
                body: json!({ "reason": "approval_expired", "approvals": ids }),
            });
        }
    }
    let head = append_audit(&mut tx, &events).await?;
    tx.commit().await.map_err(db_error)?;
    checkpoint_after_commit(store, &head, true).await;
    Ok(expired)
}

async fn update_run(conn: &mut SqliteConnection, run: &RunUpdate) -> Result<(), StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT version FROM runs WHERE id = ?1")
        .bind(&run.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let found = found.ok_or_else(|| StoreError::NotFound { what: "run", id: run.id.clone() })?;
    if found != run.expected_version {
        return Err(StoreError::Conflict { run_id: run.id.clone(), expected: run.expected_version, found });
    }
    let counters = serde_json::to_string(&run.counters).map_err(|e| StoreError::Database(e.to_string()))?;
    sqlx::query(
        "UPDATE runs SET status = ?2, status_detail = ?3, counters = ?4, checkpoint = ?5, updated_at = ?6, \
         version = version + 1 WHERE id = ?1",
    )
    .bind(&run.id)
    .bind(run.status.as_str())
    .bind(run.status_detail.as_deref())
    .bind(counters)
    .bind(json_text(&run.checkpoint))
    .bind(run.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Move an approval from `from` to `to`. Decision fields left `None` keep their value, so
/// `approved → consumed` does not erase who approved.
async fn transition_approval(conn: &mut SqliteConnection, t: &ApprovalTransition) -> Result<(), StoreError> {
    let found: Option<String> = sqlx::query_scalar("SELECT status FROM approvals WHERE id = ?1")
        .bind(&t.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let found = found.ok_or_else(|| StoreError::NotFound { what: "approval", id: t.id.clone() })?;
    if found != t.from.as_str() {
        return Err(StoreError::ApprovalMoved { id: t.id.clone(), expected: t.from.as_str().to_string(), found });
    }
    sqlx::query(
        "UPDATE approvals SET status = ?2, decided_by = COALESCE(?3, decided_by), \
         decided_at = COALESCE(?4, decided_at), note = COALESCE(?5, note), \
         approved_input = COALESCE(?6, approved_input) WHERE id = ?1",
    )
    .bind(&t.id)
    .bind(t.to.as_str())
    .bind(t.decided_by.as_deref())
    .bind(t.decided_at)
    .bind(t.note.as_deref())
    .bind(t.approved_input.as_ref().map(json_text))
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Sum of charges in `scope` over `[now - window_ms, now]`, all history when `window_ms` is None.
pub(super) async fn cap_usage(
    conn: &mut SqliteConnection,
    scope: &str,
    now: i64,
    window_ms: Option<i64>,
) -> Result<i64, StoreError> {
    let since = window_ms.map(|window| now.saturating_sub(window));
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount), 0) FROM cap_charges \
         WHERE scope = ?1 AND at <= ?2 AND (?3 IS NULL OR at >= ?3)",
    )
    .bind(scope)
    .bind(now)
    .bind(since)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)
}

async fn charge_cap(conn: &mut SqliteConnection, charge: &CapCharge) -> Result<(), StoreError> {
    let used = cap_usage(conn, &charge.scope, charge.at, charge.window_ms).await?;
    if used.checked_add(charge.amount).is_none_or(|total| total > charge.limit) {
        return Err(StoreError::CapExceeded {
            scope: charge.scope.clone(),
            used,
            amount: charge.amount,
            limit: charge.limit,
        });
    }
    sqlx::query(
        "INSERT INTO cap_charges (scope, run_id, amount, at, limit_value, window_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&charge.scope)
    .bind(&charge.run_id)
    .bind(charge.amount)
    .bind(charge.at)
    .bind(charge.limit)
    .bind(charge.window_ms)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn insert_approval(conn: &mut SqliteConnection, a: &ApprovalRecord) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO approvals (",
        approval_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))
    .bind(&a.id)
    .bind(&a.run_id)
    .bind(i64::from(a.step))
    .bind(i64::from(a.index))
    .bind(&a.agent)
    .bind(&a.tool)
    .bind(json_text(&a.input))
    .bind(&a.plugin_digest)
    .bind(&a.binding_hash)
    .bind(&a.reason)
    .bind(a.status.as_str())
    .bind(a.requested_at)
    .bind(a.expires_at)
    .bind(a.decided_by.as_deref())
    .bind(a.decided_at)
    .bind(a.note.as_deref())
    .bind(a.approved_input.as_ref().map(json_text))
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn insert_step(conn: &mut SqliteConnection, step: &StepRecord) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO steps (run_id, step, agent, turn, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(&step.run_id)
        .bind(i64::from(step.step))
        .bind(&step.agent)
        .bind(json_text(&step.turn))
        .bind(step.created_at)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn upsert_tool_call(conn: &mut SqliteConnection, call: &ToolCallRecord) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO tool_calls (",
        super::rows::tool_call_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT (run_id, step, call_index) DO UPDATE SET call_id = excluded.call_id, agent = excluded.agent, \
         tool = excluded.tool, input = excluded.input, idempotency_key = excluded.idempotency_key, \
         status = excluded.status, decision = excluded.decision, result = excluded.result, \
         report = excluded.report, updated_at = excluded.updated_at"
    ))
    .bind(&call.run_id)
    .bind(i64::from(call.step))
    .bind(i64::from(call.index))
    .bind(&call.call_id)
    .bind(&call.agent)
    .bind(&call.tool)
    .bind(json_text(&call.input))
    .bind(&call.idempotency_key)
    .bind(call.status.as_str())
    .bind(json_text(&call.decision))
    .bind(call.result.as_ref().map(json_text))
    .bind(call.report.as_ref().map(json_text))
    .bind(call.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Seal `events` after the current head, inside the caller's transaction (which holds the
/// write lock, so the head cannot move underneath).
async fn append_audit(conn: &mut SqliteConnection, events: &[AuditEvent]) -> Result<AuditHead, StoreError> {
    let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let mut head = match head {
        Some((seq, hash)) => Some((
            u64::try_from(seq)
                .map_err(|_| StoreError::Corrupt { what: "audit record", message: format!("seq {seq} is negative") })?,
            hash,
        )),
        None => None,
    };
    let last_checkpoint: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints").fetch_one(&mut *conn).await.map_err(db_error)?;
    for event in events {
        let record = seal(head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), event);
        let seq = i64::try_from(record.seq).map_err(|e| StoreError::Database(e.to_string()))?;
        sqlx::query(
            "INSERT INTO audit (seq, ts, run_id, kind, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(seq)
        .bind(record.ts)
        .bind(record.run_id.as_deref())
        .bind(&record.kind)
        .bind(canonical_json(&record.body))
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        head = Some((record.seq, record.hash));
    }
    let last_checkpoint = last_checkpoint.and_then(|seq| u64::try_from(seq).ok()).unwrap_or(0);
    Ok(AuditHead { head, last_checkpoint })
}

/// Sign the head if asked to or if the chain passed a multiple of [`CHECKPOINT_EVERY`] since
/// the last checkpoint. The commit already happened, so a failure here is logged, not
/// returned (the caller must not think its commit failed); the next commit tries again.
async fn checkpoint_after_commit(store: &SqliteStore, audit: &AuditHead, requested: bool) {
    let (Some(signer), Some((seq, hash))) = (store.signer.as_deref(), audit.head.as_ref()) else {
        return;
    };
    let (seq, last) = (*seq, audit.last_checkpoint);
    let crossed = seq / CHECKPOINT_EVERY > last / CHECKPOINT_EVERY;
    if seq <= last || !(requested || crossed) {
        return;
    }
    let signed_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let checkpoint = signer.sign(seq, hash, signed_at);
    let stored = sqlx::query(
        "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, signed_at, public_key, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(seq as i64)
    .bind(&checkpoint.hash)
    .bind(checkpoint.signed_at)
    .bind(&checkpoint.public_key)
    .bind(&checkpoint.signature)
    .execute(&store.pool)
    .await;
    if let Err(e) = stored {
        tracing::warn!(seq, error = %e, "audit checkpoint not stored in the database");
        return;
    }
    if let Err(e) = signer.append_external(&checkpoint) {
        tracing::warn!(seq, error = %e, "audit checkpoint not appended to the external file");
    }
}
