//! Human decisions: approve (optionally with an edited input), deny, and cancel a run. Each is
//! one store commit with its audit record; an approval moves `pending → approved|denied` only
//! once, and the run continues from its waiting step at the next [`Runtime::advance`].

use serde_json::Value;
use sha2::{Digest, Sha256};
use tollgate_store::audit::{ApprovalDenied, ApprovalGranted, AuditEntry, AuditEvent, RunEnded, canonical_json};
use tollgate_store::{
    ApprovalAuthority, ApprovalFilter, ApprovalKind, ApprovalRecord, ApprovalStatus, ApprovalTransition, Checkpoint,
    Commit, RunStatus, RunUpdate, Store, StoreError, ToolCallStatus, VoteCast,
};

use crate::authorise::StepLog;
use crate::error::RuntimeError;
use crate::ids::now_ms;
use crate::runtime::Runtime;
use crate::state::RunState;

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

/// How many approvals one expiry transaction takes at most (see [`expire_due`]).
pub const EXPIRY_BATCH: u32 = 256;

/// Expires every approval due at `now`, escalating their runs, in transactions of at most
/// [`EXPIRY_BATCH`] each, so memory and the write lock's hold stay bounded however many fall
/// due at once. Returns how many it expired and the ids of the first batch (for a log line).
pub async fn expire_due(store: &dyn Store, now: i64) -> Result<(usize, Vec<String>), StoreError> {
    let (mut total, mut first) = (0, Vec::new());
    loop {
        let expired = store.expire_approvals(now, EXPIRY_BATCH).await?;
        total += expired.len();
        if first.is_empty() {
            first = expired.iter().map(|a| a.id.clone()).collect();
        }
        if expired.len() < EXPIRY_BATCH as usize {
            return Ok((total, first));
        }
    }
}

async fn pending(store: &dyn Store, id: &str, now: i64) -> Result<ApprovalRecord, RuntimeError> {
    expire_due(store, now).await?;
    let approval = store.approval(id).await?.ok_or_else(|| RuntimeError::ApprovalNotFound(id.into()))?;
    if approval.status != ApprovalStatus::Pending {
        let by = approval.decided_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        return Err(RuntimeError::State(format!("approval {id} is already {}{by}", approval.status.as_str())));
    }
    Ok(approval)
}

pub(crate) fn moved(e: StoreError) -> RuntimeError {
    match e {
        StoreError::ApprovalMoved { id, found, .. } => {
            RuntimeError::State(format!("approval {id} was decided concurrently (it is now {found})"))
        }
        e @ (StoreError::AlreadyVoted { .. } | StoreError::VoteDiffers { .. }) => RuntimeError::State(e.to_string()),
        other => other.into(),
    }
}

/// Who decides: a name, and the role it decides in. `role: None` is the local operator (the
/// command line on the store's host, who holds its key): an approval rule's `approvers` name
/// the server's identities and do not bind them; the quorum and self-approval still do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub name: String,
    pub role: Option<String>,
}

impl Decider {
    /// The local operator, deciding as `name`.
    pub fn local(name: &str) -> Decider {
        Decider { name: name.to_string(), role: None }
    }
}

/// A bare name is the local operator deciding as that name ([`Decider::local`]).
impl From<&str> for Decider {
    fn from(name: &str) -> Decider {
        Decider::local(name)
    }
}

/// Refuses `decider` unless `authority` lets them decide approval `approval`: one of its
/// `approvers` (when it names any), and not whoever started the run (unless `self_approval`),
/// as the run's signed `run.started` names them.
async fn permitted(
    store: &dyn Store,
    approval: &ApprovalRecord,
    authority: &ApprovalAuthority,
    decider: &Decider,
) -> Result<(), RuntimeError> {
    if let Some(role) = &decider.role
        && !authority.approvers.is_empty()
    {
        let named = authority.approvers.iter().any(|a| match a.split_once(':') {
            Some(("user", name)) => name == decider.name,
            Some(("role", r)) => r == role,
            _ => false,
        });
        if !named {
            return Err(RuntimeError::NotPermitted(format!(
                "approval {} may be decided only by {}",
                approval.id,
                authority.approvers.join(", ")
            )));
        }
    }
    if !authority.self_approval {
        let started = store.vouched_run_start(&approval.run_id).await?;
        let starter = match started.and_then(|r| r.event().ok()) {
            Some(AuditEvent::RunStarted(s)) => s.by,
            // Who started it cannot be known: nobody can be shown not to be them.
            _ => {
                return Err(RuntimeError::Tampered {
                    run_id: approval.run_id.clone(),
                    what: "the run has no signed run.started record".into(),
                });
            }
        };
        if starter.as_deref() == Some(decider.name.as_str()) {
            return Err(RuntimeError::NotPermitted(format!(
                "{} started run {} and may not decide its approvals (the rule does not allow self_approval)",
                decider.name, approval.run_id
            )));
        }
    }
    Ok(())
}

impl Runtime {
    /// Approves a pending approval as `decider`. With `edit`, the call runs with that input
    /// instead; it must match the tool's schema now, and passes the caps again when the run
    /// continues. With a quorum, this is one approval of several: the approval stays `pending`
    /// (its `votes` say how far it is) until the last one, which must approve the same input.
    pub async fn approve(
        &self,
        id: &str,
        decider: impl Into<Decider>,
        edit: Option<Value>,
    ) -> Result<ApprovalRecord, RuntimeError> {
        let decider = decider.into();
        let by = decider.name.as_str();
        typed_text("the approver's name", by, MAX_NAME_CHARS, false)?;
        let now = now_ms();
        let approval = pending(&*self.store, id, now).await?;
        let authority = StepLog::check_request(&*self.store, &approval).await?;
        permitted(&*self.store, &approval, &authority, &decider).await?;
        if edit.is_some() && approval.kind == ApprovalKind::InDoubt {
            return Err(RuntimeError::InvalidInput(format!(
                "approval {id} is for a call in doubt: approving runs it again exactly as it was (same input, \
                 same idempotency key), so it cannot be edited; deny it to mark the call done instead"
            )));
        }
        if let Some(edited) = &edit {
            let (plugin, spec) = self
                .catalogue
                .tool(&approval.tool)
                .ok_or_else(|| RuntimeError::State(format!("tool `{}` is no longer in the workflow", approval.tool)))?;
            plugin
                .check_input(&spec.name, edited)
                .map_err(|m| RuntimeError::InvalidInput(format!("the edited input does not match the schema: {m}")))?;
        }
        let granted = ApprovalGranted {
            approval_id: id.into(),
            step: approval.step,
            index: approval.index,
            tool: approval.tool.clone(),
            by: by.into(),
            binding_hash: approval.binding_hash.clone(),
            edited: edit.is_some(),
            input: edit.as_ref().unwrap_or(&approval.input).clone(),
        };
        let commit = Commit {
            approval_votes: vec![VoteCast {
                id: id.into(),
                by: by.into(),
                at: now,
                approved_input: edit,
                quorum: authority.quorum,
            }],
            audit: vec![AuditEntry::of_run(&approval.run_id, now, granted)],
            // A person's decision is witnessed outside the database at once.
            checkpoint: Checkpoint::Witnessed,
            ..Commit::default()
        };
        self.store.commit(commit).await.map_err(moved)?;
        self.store.approval(id).await?.ok_or_else(|| RuntimeError::ApprovalNotFound(id.into()))
    }
}

/// Longest name of a person who decides, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest reason a person gives, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Checks text a person typed before it is stored, audited and printed to others: not empty,
/// not too long, and no control or bidirectional-formatting characters (which could rewrite a
/// terminal or disguise a name). `multiline` text (reasons) may contain newlines and tabs.
pub fn typed_text(what: &str, text: &str, max_chars: usize, multiline: bool) -> Result<(), RuntimeError> {
    let invalid = |why: String| Err(RuntimeError::InvalidInput(format!("{what} {why}")));
    if text.trim().is_empty() {
        return invalid("is empty".into());
    }
    if text.chars().count() > max_chars {
        return invalid(format!("is longer than {max_chars} characters"));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    if let Some(c) = text.chars().find(|&c| (c.is_control() && !allowed(c)) || is_format_control(c)) {
        return invalid(format!("contains the control character U+{:04X}", u32::from(c)));
    }
    Ok(())
}

/// Unicode format characters that reorder or hide text (bidi embeddings, overrides, isolates,
/// marks; zero-width joiners and spaces).
fn is_format_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The input an approved call runs with: the approver's edit, or the input as requested.
pub fn approved_input(approval: &ApprovalRecord) -> &Value {
    approval.approved_input.as_ref().unwrap_or(&approval.input)
}

/// Denies a pending approval as `decider` (one denial is enough, whatever the quorum); the
/// model is told `reason` when the run continues.
pub async fn deny(
    store: &dyn Store,
    id: &str,
    decider: impl Into<Decider>,
    reason: &str,
) -> Result<ApprovalRecord, RuntimeError> {
    let decider = decider.into();
    let by = decider.name.as_str();
    typed_text("the name of who denies", by, MAX_NAME_CHARS, false)?;
    typed_text("the reason", reason, MAX_REASON_CHARS, true)?;
    let now = now_ms();
    let mut approval = pending(store, id, now).await?;
    let authority = StepLog::check_request(store, &approval).await?;
    permitted(store, &approval, &authority, &decider).await?;
    let denied = ApprovalDenied {
        approval_id: id.into(),
        step: approval.step,
        index: approval.index,
        tool: approval.tool.clone(),
        by: by.into(),
        reason: reason.into(),
    };
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
        audit: vec![AuditEntry::of_run(&approval.run_id, now, denied)],
        checkpoint: Checkpoint::Witnessed,
        ..Commit::default()
    };
    store.commit(commit).await.map_err(moved)?;
    approval.status = ApprovalStatus::Denied;
    approval.decided_by = Some(by.into());
    approval.note = Some(reason.into());
    Ok(approval)
}

/// Cancels a run that has not ended: its pending approvals are denied, the run is `cancelled`
/// and takes no further step. A call already running cannot be stopped: its description is
/// returned (the process running it records what it did when it returns).
pub async fn cancel(store: &dyn Store, run_id: &str, by: &str, reason: &str) -> Result<Vec<String>, RuntimeError> {
    typed_text("the name of who cancels", by, MAX_NAME_CHARS, false)?;
    typed_text("the reason", reason, MAX_REASON_CHARS, true)?;
    let now = now_ms();
    let run = store.run(run_id).await?.ok_or_else(|| RuntimeError::RunNotFound(run_id.into()))?;
    if run.status.is_terminal() {
        return Err(RuntimeError::State(format!("run {run_id} already ended ({})", run.status.as_str())));
    }
    let filter = ApprovalFilter {
        status: Some(ApprovalStatus::Pending),
        run_id: Some(run_id.into()),
        ..ApprovalFilter::default()
    };
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
        checkpoint: Checkpoint::Witnessed,
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
    let state: RunState = serde_json::from_value(run.checkpoint.clone()).unwrap_or_default();
    let ended = RunEnded {
        status: RunStatus::Cancelled,
        detail: Some(detail),
        output: state.final_output,
        counters: run.counters.clone(),
        active_ms: state.active_ms,
        by: Some(by.into()),
    };
    commit.audit.push(AuditEntry::of_run(run_id, now, ended));
    store.commit(commit).await.map_err(moved)?;
    let in_flight = store.tool_calls(run_id).await?;
    Ok(in_flight
        .iter()
        .filter(|c| c.status == ToolCallStatus::InFlight)
        .map(|c| format!("{}#{} ({})", c.step, c.index, c.tool))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn typed_names_refuse_empty_long_and_control_text() {
        assert!(typed_text("name", "Ada Lovelace", MAX_NAME_CHARS, false).is_ok());
        assert!(typed_text("name", "Zoë O'Brien-Müller", MAX_NAME_CHARS, false).is_ok());
        for bad in ["", "   ", "evil\u{1b}[2J", "a\nb", "alice\u{202E}eciffo", "x\u{200B}y", "bell\u{7}"] {
            let e = typed_text("the approver's name", bad, MAX_NAME_CHARS, false).unwrap_err().to_string();
            assert!(e.starts_with("invalid input: the approver's name "), "{bad:?}: {e}");
        }
        assert!(typed_text("name", &"a".repeat(129), MAX_NAME_CHARS, false).is_err());
        assert!(typed_text("reason", "line one\nline\ttwo", MAX_REASON_CHARS, true).is_ok());
        assert!(typed_text("reason", "no\r\u{1b}]0;pwned\u{7}", MAX_REASON_CHARS, true).is_err());
    }

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
