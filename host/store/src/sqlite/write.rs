//! Write transactions: `create_run` (and once per idempotency key), `commit`, `expire_approvals`, and the audit checkpoint
//! signed after them.
//!
//! Each is one [`WriteTx`] (`BEGIN IMMEDIATE`, see [`super::writer`]): checks first, under the
//! write lock, then every write in one [`Batch`] sent with the `COMMIT`. Any error rolls the
//! transaction back, so a failed commit writes nothing at all.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::SqliteConnection;

use super::batch::Batch;
use super::rows::{self, approval_columns};
use super::writer::{Heads, WriteTx};
use super::{SqliteStore, db_error};
use crate::audit::{ApprovalExpired, AuditEntry, RunEscalated, canonical_json, seal};
use crate::{
    ApprovalRecord, ApprovalStatus, ApprovalTransition, ApprovalVote, CapCharge, Checkpoint, Commit, Durability,
    RunRecord, RunStatus, RunUpdate, StartKey, Started, StepRecord, StoreError, ToolCallRecord, VoteCast,
};

/// A checkpoint is signed whenever the chain passes a multiple of this many records.
pub(super) const CHECKPOINT_EVERY: u64 = 64;

/// A checkpoint signed inside a transaction, to append to the external file once committed.
pub(super) type PendingCheckpoint = Option<crate::audit::AuditCheckpoint>;

fn json_text(value: &Value) -> String {
    value.to_string()
}

pub(super) async fn create_run(store: &SqliteStore, run: &RunRecord, audit: &[AuditEntry]) -> Result<(), StoreError> {
    let (tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    let built = insert_run(store, &heads, run, audit);
    let signed = tx.finish(built).await?;
    append_external(store, signed);
    Ok(())
}

/// `create_run` once per key: the key is read under the write lock, so two starts with one key
/// racing in two processes make one run.
pub(super) async fn create_run_keyed(
    store: &SqliteStore,
    run: &RunRecord,
    audit: &[AuditEntry],
    key: &StartKey,
) -> Result<Started, StoreError> {
    let (mut tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    let used: Result<Option<(String, String)>, StoreError> =
        sqlx::query_as("SELECT run_id, request_hash FROM run_starts WHERE caller = ?1 AND key = ?2")
            .bind(&key.caller)
            .bind(&key.key)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error);
    let built = match used {
        Err(e) => Err(e),
        Ok(Some((run_id, hash))) => {
            Ok((Batch::default(), (Started::Existing { run_id, same_request: hash == key.request_hash }, None)))
        }
        Ok(None) => insert_run(store, &heads, run, audit).map(|(mut batch, signed)| {
            batch.push(
                "INSERT INTO run_starts (caller, key, request_hash, run_id, created_at) VALUES (?, ?, ?, ?, ?)",
                [
                    key.caller.as_str().into(),
                    key.key.as_str().into(),
                    key.request_hash.as_str().into(),
                    run.id.as_str().into(),
                    run.created_at.into(),
                ],
            );
            (batch, (Started::New, signed))
        }),
    };
    let (started, signed) = tx.finish(built).await?;
    append_external(store, signed);
    Ok(started)
}

/// The writes that create `run` (version 1) with its audit records, signed at the head.
fn insert_run(
    store: &SqliteStore,
    heads: &Heads,
    run: &RunRecord,
    audit: &[AuditEntry],
) -> Result<(Batch, PendingCheckpoint), StoreError> {
    let counters = serde_json::to_string(&run.counters).map_err(|e| StoreError::Database(e.to_string()))?;
    let mut batch = Batch::default();
    batch.push(
        "INSERT INTO runs (id, workflow_name, workflow_version, workflow_path, workflow_digest, goal, status, \
         status_detail, created_at, updated_at, deadline_at, counters, options, checkpoint, version) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        [
            run.id.as_str().into(),
            run.workflow_name.as_str().into(),
            run.workflow_version.as_str().into(),
            run.workflow_path.as_str().into(),
            run.workflow_digest.as_str().into(),
            run.goal.as_str().into(),
            run.status.as_str().into(),
            run.status_detail.clone().into(),
            run.created_at.into(),
            run.updated_at.into(),
            run.deadline_at.into(),
            counters.into(),
            json_text(&run.options).into(),
            json_text(&run.checkpoint).into(),
        ],
    );
    let signed = seal_audit(store, heads, audit, Checkpoint::Signed, &mut batch)?;
    Ok((batch, signed))
}

pub(super) async fn commit(store: &SqliteStore, commit: Commit) -> Result<(), StoreError> {
    let run_id = commit.run.as_ref().map(|r| r.id.as_str()).or(commit.fence.as_ref().map(|f| f.run_id.as_str()));
    let (mut tx, heads) = store.writer.begin(commit.durability, run_id).await?;
    let built = checked_batch(store, &mut tx, &heads, &commit).await;
    let signed = tx.finish(built).await?;
    append_external(store, signed);
    Ok(())
}

/// Checks what `commit` depends on (the run's version, approval states, cap headroom) under the
/// write lock, and returns its writes.
async fn checked_batch(
    store: &SqliteStore,
    tx: &mut WriteTx,
    heads: &Heads,
    commit: &Commit,
) -> Result<(Batch, PendingCheckpoint), StoreError> {
    if let Some(run) = &commit.run {
        match heads.run_version {
            None => return Err(StoreError::NotFound { what: "run", id: run.id.clone() }),
            Some(found) if found != run.expected_version => {
                return Err(StoreError::Conflict { run_id: run.id.clone(), expected: run.expected_version, found });
            }
            Some(_) => {}
        }
    }
    // A fenced commit lands only while its lease is the run's lease: a process whose lease
    // was taken over (it stalled past its expiry) writes nothing more for the run.
    if let Some(fence) = &commit.fence {
        let holds = heads.lease.as_ref().is_some_and(|(owner, token)| *owner == fence.owner && *token == fence.token);
        if !holds {
            return Err(StoreError::Fenced { run_id: fence.run_id.clone(), owner: fence.owner.clone() });
        }
    }
    // Transitions and charges check the database before writing: rare, one round trip each.
    for transition in &commit.approval_transitions {
        transition_approval(tx.conn(), transition).await?;
    }
    for vote in &commit.approval_votes {
        cast_vote(tx.conn(), vote).await?;
    }
    for charge in &commit.cap_charges {
        charge_cap(tx.conn(), charge).await?;
    }
    let mut batch = Batch::default();
    if let Some(run) = &commit.run {
        update_run(&mut batch, run)?;
    }
    for approval in &commit.new_approvals {
        insert_approval(&mut batch, approval);
    }
    for step in &commit.steps {
        insert_step(&mut batch, step);
    }
    for call in &commit.tool_calls {
        upsert_tool_call(&mut batch, call);
    }
    let signed = seal_audit(store, heads, &commit.audit, commit.checkpoint, &mut batch)?;
    Ok((batch, signed))
}

pub(super) async fn expire_approvals(
    store: &SqliteStore,
    now: i64,
    limit: u32,
) -> Result<Vec<ApprovalRecord>, StoreError> {
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
    let (mut tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    let built =
        expire_due(store, &mut tx, &heads, now, limit).await.map(|(expired, batch, signed)| (batch, (expired, signed)));
    let (expired, signed) = tx.finish(built).await?;
    append_external(store, signed);
    Ok(expired)
}

/// Finds the approvals due at `now` under the write lock, and returns them with the writes that
/// expire them and escalate their runs.
async fn expire_due(
    store: &SqliteStore,
    tx: &mut WriteTx,
    heads: &Heads,
    now: i64,
    limit: u32,
) -> Result<(Vec<ApprovalRecord>, Batch, PendingCheckpoint), StoreError> {
    let due = sqlx::query(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at, rowid LIMIT ?2"
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx.conn())
    .await
    .map_err(db_error)?;
    let mut expired = due.iter().map(rows::approval).collect::<Result<Vec<_>, _>>()?;
    let mut batch = Batch::default();
    if expired.is_empty() {
        // Another process expired them first.
        return Ok((expired, batch, None));
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
            batch.push(
                "UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ?",
                [now.into(), approval.id.as_str().into()],
            );
            approval.status = ApprovalStatus::Expired;
            approval.decided_at = Some(now);
            ids.push(approval.id.clone());
            events.push(AuditEntry::of_run(
                run_id,
                now,
                ApprovalExpired {
                    approval_id: approval.id.clone(),
                    step: approval.step,
                    index: approval.index,
                    agent: approval.agent.clone(),
                    tool: approval.tool.clone(),
                    expires_at: approval.expires_at,
                },
            ));
        }
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = ?1")
            .bind(run_id)
            .fetch_optional(&mut *tx.conn())
            .await
            .map_err(db_error)?;
        let status = status.as_deref().and_then(RunStatus::parse);
        // A run that ended, is already escalated or is paused keeps its status; its approvals
        // still expire (a paused run resumed later finds them expired and escalates then).
        if status.is_some_and(|s| !s.is_terminal() && !matches!(s, RunStatus::Escalated | RunStatus::Paused)) {
            let detail = format!("approval {} expired before anyone decided", ids.join(", "));
            batch.push(
                "UPDATE runs SET status = 'escalated', status_detail = ?, updated_at = ?, version = version + 1 \
                 WHERE id = ?",
                [detail.into(), now.into(), run_id.as_str().into()],
            );
            events.push(AuditEntry::of_run(
                run_id,
                now,
                RunEscalated { reason: "approval_expired".into(), approvals: ids },
            ));
        }
    }
    let signed = seal_audit(store, heads, &events, Checkpoint::Witnessed, &mut batch)?;
    Ok((expired, batch, signed))
}

/// The run's new state and its new messages. The version was checked by the commit's read,
/// under the write lock, so it cannot have moved since.
fn update_run(batch: &mut Batch, run: &RunUpdate) -> Result<(), StoreError> {
    let counters = serde_json::to_string(&run.counters).map_err(|e| StoreError::Database(e.to_string()))?;
    batch.push(
        "UPDATE runs SET status = ?, status_detail = ?, counters = ?, checkpoint = ?, updated_at = ?, \
         version = version + 1 WHERE id = ?",
        [
            run.status.as_str().into(),
            run.status_detail.clone().into(),
            counters.into(),
            json_text(&run.checkpoint).into(),
            run.updated_at.into(),
            run.id.as_str().into(),
        ],
    );
    let mut rows = Vec::with_capacity(run.messages.len());
    for m in &run.messages {
        let seq = i64::try_from(m.seq).map_err(|e| StoreError::Database(e.to_string()))?;
        rows.push(vec![run.id.as_str().into(), seq.into(), m.agent.as_str().into(), json_text(&m.message).into()]);
    }
    batch.insert_rows("INSERT INTO messages (run_id, seq, agent, message)", 4, rows);
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

/// Adds `vote` to its approval, which must still be pending, not approved by `vote.by` yet, and
/// approved with the same input by every earlier vote; the vote that reaches the quorum moves
/// it to `approved`, naming every approver.
async fn cast_vote(conn: &mut SqliteConnection, vote: &VoteCast) -> Result<(), StoreError> {
    let found: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT status, votes, approved_input FROM approvals WHERE id = ?1")
            .bind(&vote.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    let (status, votes, approved_input) =
        found.ok_or_else(|| StoreError::NotFound { what: "approval", id: vote.id.clone() })?;
    if status != ApprovalStatus::Pending.as_str() {
        return Err(StoreError::ApprovalMoved { id: vote.id.clone(), expected: "pending".into(), found: status });
    }
    let corrupt = |e: serde_json::Error| StoreError::Corrupt { what: "approval", message: format!("{}: {e}", vote.id) };
    let mut votes: Vec<ApprovalVote> = serde_json::from_str(&votes).map_err(corrupt)?;
    if votes.iter().any(|v| v.by == vote.by) {
        return Err(StoreError::AlreadyVoted { id: vote.id.clone(), by: vote.by.clone() });
    }
    let earlier: Option<Value> = approved_input.as_deref().map(serde_json::from_str).transpose().map_err(corrupt)?;
    if !votes.is_empty() && earlier.as_ref().map(canonical_json) != vote.approved_input.as_ref().map(canonical_json) {
        return Err(StoreError::VoteDiffers { id: vote.id.clone() });
    }
    votes.push(ApprovalVote { by: vote.by.clone(), at: vote.at });
    let reached = votes.len() >= vote.quorum.max(1) as usize;
    let names: Vec<&str> = votes.iter().map(|v| v.by.as_str()).collect();
    sqlx::query(
        "UPDATE approvals SET votes = ?2, approved_input = ?3, status = ?4, \
         decided_by = CASE WHEN ?4 = 'approved' THEN ?5 ELSE decided_by END, \
         decided_at = CASE WHEN ?4 = 'approved' THEN ?6 ELSE decided_at END WHERE id = ?1",
    )
    .bind(&vote.id)
    .bind(serde_json::to_string(&votes).map_err(corrupt)?)
    .bind(vote.approved_input.as_ref().map(json_text))
    .bind(if reached { "approved" } else { "pending" })
    .bind(names.join(", "))
    .bind(vote.at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Sum of charges in `scope` since `now - window_ms` (all history when `window_ms` is None),
/// including charges stamped after `now`: another process's clock, or a step that took its
/// time later than this one, must never make a charge invisible to this one.
pub(super) async fn cap_usage(
    conn: &mut SqliteConnection,
    scope: &str,
    now: i64,
    window_ms: Option<i64>,
) -> Result<i64, StoreError> {
    let since = window_ms.map(|window| now.saturating_sub(window));
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount), 0) FROM cap_charges \
         WHERE scope = ?1 AND (?2 IS NULL OR at >= ?2)",
    )
    .bind(scope)
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

fn insert_approval(batch: &mut Batch, a: &ApprovalRecord) {
    batch.insert_rows(
        concat!("INSERT INTO approvals (", approval_columns!(), ")"),
        20,
        vec![vec![
            a.id.as_str().into(),
            a.run_id.as_str().into(),
            i64::from(a.step).into(),
            i64::from(a.index).into(),
            a.agent.as_str().into(),
            a.tool.as_str().into(),
            json_text(&a.input).into(),
            a.plugin_digest.as_str().into(),
            a.binding_hash.as_str().into(),
            a.reason.as_str().into(),
            a.status.as_str().into(),
            a.requested_at.into(),
            a.expires_at.into(),
            a.decided_by.clone().into(),
            a.decided_at.into(),
            a.note.clone().into(),
            a.approved_input.as_ref().map(json_text).into(),
            a.kind.as_str().into(),
            serde_json::to_string(&a.authority).unwrap_or_default().into(),
            serde_json::to_string(&a.votes).unwrap_or_default().into(),
        ]],
    );
}

fn insert_step(batch: &mut Batch, step: &StepRecord) {
    batch.insert_rows(
        "INSERT INTO steps (run_id, step, agent, turn, created_at)",
        5,
        vec![vec![
            step.run_id.as_str().into(),
            i64::from(step.step).into(),
            step.agent.as_str().into(),
            json_text(&step.turn).into(),
            step.created_at.into(),
        ]],
    );
}

fn upsert_tool_call(batch: &mut Batch, call: &ToolCallRecord) {
    batch.push(
        concat!(
            "INSERT INTO tool_calls (",
            super::rows::tool_call_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (run_id, step, call_index) DO UPDATE SET call_id = excluded.call_id, agent = excluded.agent, \
             tool = excluded.tool, input = excluded.input, idempotency_key = excluded.idempotency_key, \
             status = excluded.status, decision = excluded.decision, result = excluded.result, \
             report = excluded.report, updated_at = excluded.updated_at"
        ),
        [
            call.run_id.as_str().into(),
            i64::from(call.step).into(),
            i64::from(call.index).into(),
            call.call_id.as_str().into(),
            call.agent.as_str().into(),
            call.tool.as_str().into(),
            json_text(&call.input).into(),
            call.idempotency_key.as_str().into(),
            call.status.as_str().into(),
            json_text(&call.decision).into(),
            call.result.as_ref().map(json_text).into(),
            call.report.as_ref().map(json_text).into(),
            call.updated_at.into(),
        ],
    );
}

/// Seals `events` after the head in `heads` into `batch`, and signs a checkpoint of the new head
/// (also into `batch`) if asked to or if the chain passed a multiple of [`CHECKPOINT_EVERY`]
/// since the last checkpoint. The caller's transaction holds the write lock, so the head
/// cannot move underneath.
pub(super) fn seal_audit(
    store: &SqliteStore,
    heads: &Heads,
    events: &[AuditEntry],
    requested: Checkpoint,
    batch: &mut Batch,
) -> Result<PendingCheckpoint, StoreError> {
    let mut head = heads.audit.clone();
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let record = seal(head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), event);
        let seq = i64::try_from(record.seq).map_err(|e| StoreError::Database(e.to_string()))?;
        rows.push(vec![
            seq.into(),
            record.ts.into(),
            record.run_id.clone().into(),
            record.kind.as_str().into(),
            canonical_json(&record.body).into(),
            record.prev_hash.clone().into(),
            record.hash.as_str().into(),
        ]);
        head = Some((record.seq, record.hash));
    }
    batch.insert_rows("INSERT INTO audit (seq, ts, run_id, kind, body, prev_hash, hash)", 7, rows);
    let last = heads.last_checkpoint;
    let (Some(signer), Some((seq, hash))) = (store.signer.as_deref(), head.as_ref()) else {
        return Ok(None);
    };
    let crossed = seq / CHECKPOINT_EVERY > last / CHECKPOINT_EVERY;
    if *seq <= last || !(requested > Checkpoint::Regular || crossed) {
        return Ok(None);
    }
    let signed_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let checkpoint = signer.sign(*seq, hash, signed_at);
    batch.push(
        "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, signed_at, public_key, signature) VALUES (?, ?, ?, ?, ?)",
        [
            (*seq as i64).into(),
            checkpoint.hash.as_str().into(),
            checkpoint.signed_at.into(),
            checkpoint.public_key.as_str().into(),
            checkpoint.signature.as_str().into(),
        ],
    );
    // Only witnessed checkpoints (and the regular cadence) go to the external file.
    Ok((requested == Checkpoint::Witnessed || crossed).then_some(checkpoint))
}

/// Appends a checkpoint signed by a committed transaction to the key's external file. The
/// commit already happened, so a failure is logged, not returned (the caller must not think
/// its commit failed); the database copy stands, and `audit verify` reports the gap.
pub(super) fn append_external(store: &SqliteStore, signed: PendingCheckpoint) {
    let (Some(signer), Some(checkpoint)) = (store.signer.as_deref(), signed) else {
        return;
    };
    if let Err(e) = signer.append_external(&checkpoint) {
        tracing::warn!(seq = checkpoint.seq, error = %e, "audit checkpoint not appended to the external file");
    }
}
