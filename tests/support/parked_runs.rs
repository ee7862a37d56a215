//! Runs parked on a pending approval, written straight into a store by tests and benchmarks
//! that need many of them (or an approval past its expiry) without driving the runtime there.
//! Included by path, like `built_plugins.rs`: `#[path = "../../../tests/support/parked_runs.rs"]`.
//! The records stand for nothing the runtime could resume: their workflow path does not exist.

use serde_json::json;
use tollgate_store::{ApprovalKind, ApprovalRecord, ApprovalStatus, Counters, RunRecord, RunStatus};

/// A run waiting for approval, created at `at`.
pub fn waiting_run(id: &str, at: i64) -> RunRecord {
    RunRecord {
        id: id.into(),
        workflow_name: "parked".into(),
        workflow_version: "1.0.0".into(),
        workflow_path: "/nowhere/workflow.toml".into(),
        workflow_digest: "0".repeat(64),
        goal: "Wait for a person.".into(),
        status: RunStatus::WaitingApproval,
        status_detail: None,
        created_at: at,
        updated_at: at,
        deadline_at: None,
        counters: Counters::default(),
        options: json!({}),
        checkpoint: json!({"conversations": {}}),
        version: 1,
    }
}

/// A pending approval of `run_id`'s call at `step`, requested at `requested_at`.
pub fn pending_approval(id: &str, run_id: &str, step: u32, requested_at: i64, expires_at: i64) -> ApprovalRecord {
    ApprovalRecord {
        id: id.into(),
        run_id: run_id.into(),
        step,
        index: 0,
        agent: "ops".into(),
        tool: "crm.update_contact".into(),
        input: json!({"id": "51", "properties": {"lifecyclestage": "customer"}}),
        plugin_digest: "0".repeat(64),
        binding_hash: "0".repeat(64),
        reason: "policy rule 1: writes to the CRM need a person".into(),
        status: ApprovalStatus::Pending,
        requested_at,
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
