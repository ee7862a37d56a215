//! Fixtures shared by the integration tests: records with sensible defaults, stores on real
//! SQLite files in temporary directories, and a raw connection for tampering.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tollgate_store::audit::{self, AuditEntry, AuditEvent};
use tollgate_store::{
    ApprovalKind, ApprovalRecord, ApprovalStatus, Commit, Counters, RunRecord, RunStatus, RunUpdate, Signer,
    SqliteStore, Store, ToolCallRecord, ToolCallStatus,
};

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("state/tollgate.db")
}

pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("keys/audit.key")
}

/// A store with a signer, both under `dir`.
pub async fn open(dir: &Path) -> SqliteStore {
    let signer = Signer::load_or_create(&key_path(dir)).unwrap();
    SqliteStore::open(&db_path(dir), Some(signer)).await.unwrap()
}

/// A plain connection to the store's file, as someone editing it by hand would have; the
/// append-only triggers are dropped so the audit table can be changed.
pub async fn raw(dir: &Path) -> SqliteConnection {
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db_path(dir))).await.unwrap();
    sqlx::raw_sql("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

pub fn run(id: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: id.into(),
        workflow_name: "outreach".into(),
        workflow_version: "1.0.0".into(),
        workflow_path: "/work/outreach.toml".into(),
        workflow_digest: "d".repeat(64),
        goal: format!("goal of {id}"),
        status: RunStatus::Running,
        status_detail: None,
        created_at,
        updated_at: created_at,
        deadline_at: Some(created_at + 3_600_000),
        counters: Counters::default(),
        options: json!({ "model": "scripted:demo" }),
        checkpoint: json!({ "messages": [] }),
        // The store sets version 1 whatever the caller passes.
        version: 42,
    }
}

/// An audit entry of `kind` whose content carries `detail` (so different details seal to
/// different hashes). The store does not care what a kind means; these tests only need records.
pub fn event(run_id: &str, kind: &str, ts: i64, detail: Value) -> AuditEntry {
    let event: AuditEvent = match kind {
        "run.started" => audit::RunStarted {
            workflow: "outreach".into(),
            version: "1.0.0".into(),
            workflow_sha256: "d".repeat(64),
            goal: detail.to_string(),
            entry: "agent".into(),
            models: Default::default(),
            plugins: Default::default(),
            upstreams: Default::default(),
            by: None,
        }
        .into(),
        "model.turn" => audit::ModelTurn {
            step: 1,
            agent: "agent".into(),
            source: audit::TurnSource::Replay { script: "turns.toml".into(), index: 0 },
            reasoning: None,
            tool_calls: vec![audit::RequestedCall { id: "call_1".into(), name: "email__send".into(), input: detail }],
            usage: audit::TokenUsage::default(),
            stop: None,
        }
        .into(),
        "gate.decision" => audit::GateDecision {
            step: 1,
            index: 0,
            tool: "email.send".into(),
            agent: "agent".into(),
            input: detail,
            plugin_digest: None,
            verdict: audit::VerdictRecord::Allow { rule: None, charges: Vec::new() },
            reason: None,
        }
        .into(),
        "approval.granted" => audit::ApprovalGranted {
            approval_id: "ap_1".into(),
            step: 1,
            index: 0,
            tool: "email.send".into(),
            by: "alice".into(),
            binding_hash: "b".repeat(64),
            edited: false,
            input: detail,
        }
        .into(),
        "tool.call" => audit::ToolCall {
            step: 1,
            index: 0,
            tool: "email.send".into(),
            plugin_digest: None,
            idempotency_key: format!("{run_id}:1:0"),
            input: detail,
            outcome: "ok".into(),
            error: None,
            output_sha256: None,
            fuel_used: 0,
            duration_us: 0,
            peak_memory_bytes: 0,
            memory_refused: false,
            guest_error: None,
            instance: audit::Instance::Fresh,
            egress: Vec::new(),
        }
        .into(),
        "run.ended" => audit::RunEnded {
            status: RunStatus::Completed,
            detail: None,
            output: Some(detail.to_string()),
            counters: Counters::default(),
            active_ms: 0,
            by: None,
        }
        .into(),
        other => panic!("no fixture for audit kind {other}"),
    };
    AuditEntry { ts, run_id: Some(run_id.into()), event }
}

pub fn update(run_id: &str, expected_version: i64, status: RunStatus, step: u64) -> RunUpdate {
    RunUpdate {
        id: run_id.into(),
        expected_version,
        status,
        status_detail: None,
        counters: Counters { steps: step, ..Counters::default() },
        checkpoint: json!({ "step": step }),
        updated_at: 2_000 + step as i64,
        messages: Vec::new(),
    }
}

pub fn tool_call(run_id: &str, step: u32, index: u32, status: ToolCallStatus) -> ToolCallRecord {
    ToolCallRecord {
        run_id: run_id.into(),
        step,
        index,
        call_id: format!("call_{step}_{index}"),
        agent: "writer".into(),
        tool: "email.send_email".into(),
        input: json!({ "to": "ana@example.com", "step": step }),
        idempotency_key: format!("{run_id}:{step}:{index}"),
        status,
        decision: json!({ "decision": status.as_str() }),
        result: None,
        report: None,
        updated_at: 3_000,
    }
}

pub fn approval(id: &str, run_id: &str, step: u32, expires_at: i64) -> ApprovalRecord {
    ApprovalRecord {
        id: id.into(),
        run_id: run_id.into(),
        step,
        index: 0,
        agent: "writer".into(),
        tool: "email.send_email".into(),
        input: json!({ "to": "ana@example.com" }),
        plugin_digest: "p".repeat(64),
        binding_hash: "b".repeat(64),
        reason: "send-message effects need approval".into(),
        status: ApprovalStatus::Pending,
        requested_at: 1_000,
        expires_at,
        decided_by: None,
        decided_at: None,
        note: None,
        approved_input: None,
        kind: ApprovalKind::Call,
        authority: Default::default(),
        votes: Vec::new(),
    }
}

/// Create run `run_id` with a `run.started` record, then `n - 1` single-record commits: a
/// chain of exactly `n` records (when the store's chain was empty).
pub async fn chain_of(store: &SqliteStore, run_id: &str, n: u64) {
    store
        .create_run(&run(run_id, 1_000), &[event(run_id, "run.started", 1_000, json!({ "goal": "g" }))])
        .await
        .unwrap();
    for i in 1..n {
        let commit = Commit {
            audit: vec![event(run_id, "tool.call", 1_000 + i as i64, json!({ "i": i, "output_digest": "x" }))],
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
    }
}

/// Copies the database files (with its WAL) from the folder `from` to `to`: a backup, or its
/// restore.
pub fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("tollgate.db{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).unwrap();
        }
    }
}

pub async fn audit_count(store: &SqliteStore) -> usize {
    store.audit_records(0, u32::MAX).await.unwrap().len()
}
