//! Approval requests and human decisions: approve (optionally with an edited input), deny, and cancel a run. Each is
//! one store commit with its audit record; an approval moves `pending → approved|denied` only
//! once, and the run continues from its parked step at the next [`Runtime::advance`].

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_store::{
    ApprovalFilter, ApprovalRecord, ApprovalStatus, ApprovalTransition, AuditEvent, Commit, RunRecord, RunStatus,
    RunUpdate, Store, StoreError, audit::canonical_json,
};

use crate::error::RuntimeError;
use crate::ids::{self, now_ms};
use crate::runtime::Runtime;

/// Binds an approval to one plugin build, one tool and one exact input.
pub fn binding_hash(plugin_digest: &str, tool: &str, input: &Value) -> String {
    let mut h = Sha256::new();
    h.update(b"tollgate-approval-v1\n");
    h.update(plugin_digest.as_bytes());
    h.update(b"\n");
    h.update(tool.as_bytes());
    h.update(b"\n");
    h.update(canonical_json(input).as_bytes());
    hex::encode(h.finalize())
}

async fn pending(store: &dyn Store, id: &str, now: i64) -> Result<ApprovalRecord, RuntimeError> {
    store.expire_approvals(now).await?;
    let approval = store.approval(id).await?.ok_or_else(|| RuntimeError::ApprovalNotFound(id.into()))?;
    if approval.status != ApprovalStatus::Pending {
        let by = approval.decided_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        return Err(RuntimeError::State(format!("approval {id} is already {}{by}", approval.status.as_str())));
    }
    Ok(approval)
}

fn moved(e: StoreError) -> RuntimeError {
    match e {
        StoreError::ApprovalMoved { id, found, .. } => {
            RuntimeError::State(format!("approval {id} was decided concurrently (it is now {found})"))
        }
        other => other.into(),
    }
}

impl Runtime {
    /// A pending approval for one exact call, bound to the plugin build that would run it.
    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments are the separate fields of the record being built; the runtime rewrite groups them"
    )]
    pub(crate) fn new_approval(
        &self,
        run: &RunRecord,
        step: u32,
        index: u32,
        agent: &str,
        tool: &str,
        input: &Value,
        reason: String,
        now: i64,
    ) -> Result<ApprovalRecord, RuntimeError> {
        let digest = self.catalogue.tool(tool).map(|(p, _)| p.digest().to_string()).unwrap_or_default();
        let expiry = self.workflow.workflow.run.approval_expiry.as_millis() as i64;
        Ok(ApprovalRecord {
            id: ids::approval_id(),
            run_id: run.id.clone(),
            step,
            index,
            agent: agent.into(),
            tool: tool.into(),
            input: input.clone(),
            binding_hash: binding_hash(&digest, tool, input),
            plugin_digest: digest,
            reason,
            status: ApprovalStatus::Pending,
            requested_at: now,
            expires_at: now + expiry,
            decided_by: None,
            decided_at: None,
            note: None,
            approved_input: None,
        })
    }

    /// Approves a pending approval as `by`. With `edit`, the call runs with that input instead;
    /// it must match the tool's schema now, and passes the caps again when the run continues.
    pub async fn approve(&self, id: &str, by: &str, edit: Option<Value>) -> Result<ApprovalRecord, RuntimeError> {
        let now = now_ms();
        let mut approval = pending(&*self.store, id, now).await?;
        if let Some(edited) = &edit {
            let (plugin, spec) = self
                .catalogue
                .tool(&approval.tool)
                .ok_or_else(|| RuntimeError::State(format!("tool `{}` is no longer in the workflow", approval.tool)))?;
            plugin
                .check_input(&spec.name, edited)
                .map_err(|m| RuntimeError::InvalidInput(format!("the edited input does not match the schema: {m}")))?;
        }
        let body = json!({
            "approval_id": id, "step": approval.step, "index": approval.index, "tool": approval.tool, "by": by,
            "binding_hash": approval.binding_hash, "edited": edit.is_some(), "input": edit.as_ref().unwrap_or(&approval.input),
        });
        let commit = Commit {
            approval_transitions: vec![ApprovalTransition {
                id: id.into(),
                from: ApprovalStatus::Pending,
                to: ApprovalStatus::Approved,
                decided_by: Some(by.into()),
                decided_at: Some(now),
                note: None,
                approved_input: edit.clone(),
            }],
            audit: vec![AuditEvent {
                ts: now,
                run_id: Some(approval.run_id.clone()),
                kind: "approval.granted".into(),
                body,
            }],
            ..Commit::default()
        };
        self.store.commit(commit).await.map_err(moved)?;
        approval.status = ApprovalStatus::Approved;
        approval.decided_by = Some(by.into());
        approval.decided_at = Some(now);
        approval.approved_input = edit;
        Ok(approval)
    }
}

/// The `approval.requested` audit record of `approval`.
pub(crate) fn requested_audit(run: &RunRecord, now: i64, approval: &ApprovalRecord) -> AuditEvent {
    AuditEvent {
        ts: now,
        run_id: Some(run.id.clone()),
        kind: "approval.requested".into(),
        body: json!({
            "approval_id": approval.id, "step": approval.step, "index": approval.index, "tool": approval.tool,
            "input": approval.input, "binding_hash": approval.binding_hash, "reason": approval.reason,
            "expires_at": approval.expires_at,
        }),
    }
}

/// Denies a pending approval as `by`; the model is told `reason` when the run continues.
pub async fn deny(store: &dyn Store, id: &str, by: &str, reason: &str) -> Result<ApprovalRecord, RuntimeError> {
    let now = now_ms();
    let mut approval = pending(store, id, now).await?;
    let body = json!({
        "approval_id": id, "step": approval.step, "index": approval.index, "tool": approval.tool, "by": by,
        "reason": reason,
    });
    let commit = Commit {
        approval_transitions: vec![ApprovalTransition {
            id: id.into(),
            from: ApprovalStatus::Pending,
            to: ApprovalStatus::Denied,
            decided_by: Some(by.into()),
            decided_at: Some(now),
            note: Some(reason.into()),
            approved_input: None,
        }],
        audit: vec![AuditEvent {
            ts: now,
            run_id: Some(approval.run_id.clone()),
            kind: "approval.denied".into(),
            body,
        }],
        ..Commit::default()
    };
    store.commit(commit).await.map_err(moved)?;
    approval.status = ApprovalStatus::Denied;
    approval.decided_by = Some(by.into());
    approval.note = Some(reason.into());
    Ok(approval)
}

/// Cancels a run that has not ended: its pending approvals are denied, the run is `cancelled`.
pub async fn cancel(store: &dyn Store, run_id: &str, by: &str, reason: &str) -> Result<(), RuntimeError> {
    let now = now_ms();
    let run = store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
    if run.status.is_terminal() {
        return Err(RuntimeError::State(format!("run {run_id} already ended ({})", run.status.as_str())));
    }
    let filter = ApprovalFilter { status: Some(ApprovalStatus::Pending), run_id: Some(run_id.into()) };
    let approvals = store.approvals(&filter).await?;
    let detail = format!("cancelled by {by}: {reason}");
    let mut commit = Commit {
        run: Some(RunUpdate {
            id: run.id.clone(),
            expected_version: run.version,
            status: RunStatus::Cancelled,
            status_detail: Some(detail.clone()),
            counters: run.counters.clone(),
            checkpoint: run.checkpoint.clone(),
            messages: Vec::new(),
            updated_at: now,
        }),
        checkpoint_audit: true,
        ..Commit::default()
    };
    for a in approvals {
        commit.approval_transitions.push(ApprovalTransition {
            id: a.id.clone(),
            from: ApprovalStatus::Pending,
            to: ApprovalStatus::Denied,
            decided_by: Some(by.into()),
            decided_at: Some(now),
            note: Some(format!("run cancelled: {reason}")),
            approved_input: None,
        });
    }
    commit.audit.push(AuditEvent {
        ts: now,
        run_id: Some(run_id.into()),
        kind: "run.ended".into(),
        body: json!({"status": "cancelled", "detail": detail, "by": by, "counters": run.counters}),
    });
    store.commit(commit).await.map_err(moved)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_changes_with_any_part() {
        let input = json!({"campaign_id": "1", "status": "PAUSED"});
        let base = binding_hash("d1", "ads.update_campaign", &input);
        assert_eq!(base, binding_hash("d1", "ads.update_campaign", &json!({"status": "PAUSED", "campaign_id": "1"})));
        assert_ne!(base, binding_hash("d2", "ads.update_campaign", &input));
        assert_ne!(base, binding_hash("d1", "ads.list_campaigns", &input));
        assert_ne!(base, binding_hash("d1", "ads.update_campaign", &json!({"campaign_id": "1", "status": "ACTIVE"})));
    }
}
