//! Acting only on what the signed chain says. The store's rows are an index; the authority is
//! the audit log, read back through [`Store::vouched_step_records`] (each record linked by the
//! chain to a checkpoint the store's key signed — every commit that allows a call signs its
//! head, and every person's decision is witnessed):
//! - a run's bindings (workflow file, plugin builds, models, upstreams) come from its signed
//!   `run.started`, checked whenever the run is advanced ([`Runtime::check_bindings`]);
//! - the approvals of a step are settled from the signed request and decision records
//!   ([`StepLog::approval`]), never from an approval row alone;
//! - a call runs only if the last signed decision on it is `allow` for exactly that tool,
//!   input, agent and plugin build, and, when an approval allowed it, a person's signed
//!   `approval.granted` for exactly that input — from as many distinct approvers as the
//!   request's signed quorum — answers a signed request whose binding still holds
//!   ([`StepLog::authorises`]); and only if no `tool.call` record says it already ran
//!   and a row `in_flight` has the signed claim that says so (`claim.rs`).
//!
//! Anything else is [`RuntimeError::Tampered`]: a writer of the database file can stop a run,
//! but cannot make a call run, change what it runs with, or run it twice.

use std::collections::BTreeMap;

use serde_json::Value;
use tollgate_store::audit::{
    ApprovalConsumed, ApprovalGranted, ApprovalRequested, AuditEvent, GateDecision, RunStarted, ToolClaimed,
    VerdictRecord, canonical_json,
};
use tollgate_store::{
    ApprovalAuthority, ApprovalRecord, ApprovalStatus, ApprovalVote, RunRecord, Store, ToolCallRecord, ToolCallStatus,
};

use crate::approvals::binding_hash;
use crate::error::RuntimeError;
use crate::runtime::Runtime;

/// One step's audit records as the signed chain has them, oldest first.
pub(crate) struct StepLog {
    run_id: String,
    step: u32,
    records: Vec<(i64, AuditEvent)>,
}

impl StepLog {
    /// The vouched records of `step` of `run_id`.
    pub(crate) async fn read(store: &dyn Store, run_id: &str, step: u32) -> Result<StepLog, RuntimeError> {
        let sealed = store.vouched_step_records(run_id, step).await.map_err(|e| tampered_store(run_id, e))?;
        let mut records = Vec::with_capacity(sealed.len());
        for record in sealed {
            // A record of a kind this build does not know cannot authorise anything.
            if let Ok(event) = record.event() {
                records.push((record.ts, event));
            }
        }
        Ok(StepLog { run_id: run_id.to_string(), step, records })
    }

    /// The events of a commit this process made a moment ago (its turn commit), taken as the
    /// chain has them: a writer of the database cannot change what is in this process's memory.
    pub(crate) fn committed(run_id: &str, step: u32, events: Vec<AuditEvent>) -> StepLog {
        StepLog { run_id: run_id.to_string(), step, records: events.into_iter().map(|e| (0, e)).collect() }
    }

    fn events(&self) -> impl DoubleEndedIterator<Item = &AuditEvent> {
        self.records.iter().map(|(_, e)| e)
    }

    /// The approval of call `index` as the chain records it — its request and the decision
    /// on it — checked against the approval row the store holds for it (`stored`). `None` when
    /// the chain holds no request for the call.
    pub(crate) fn approval(
        &self,
        index: u32,
        agent: &str,
        stored: Option<&ApprovalRecord>,
    ) -> Result<Option<ApprovalRecord>, RuntimeError> {
        let Some((requested_at, requested)) = self.records.iter().rev().find_map(|(ts, e)| match e {
            AuditEvent::ApprovalRequested(r) if r.index == index => Some((*ts, r)),
            _ => None,
        }) else {
            return match stored {
                Some(row) => Err(self.tampered(format!("approval {} has no signed request", row.id))),
                None => Ok(None),
            };
        };
        let mut approval = ApprovalRecord {
            id: requested.approval_id.clone(),
            run_id: self.run_id.clone(),
            step: self.step,
            index,
            agent: agent.to_string(),
            tool: requested.tool.clone(),
            input: requested.input.clone(),
            plugin_digest: stored.map(|a| a.plugin_digest.clone()).unwrap_or_default(),
            binding_hash: requested.binding_hash.clone(),
            reason: requested.reason.clone(),
            status: ApprovalStatus::Pending,
            requested_at,
            expires_at: requested.expires_at,
            decided_by: None,
            decided_at: None,
            note: None,
            approved_input: None,
            kind: requested.kind,
            authority: requested.authority.clone(),
            votes: Vec::new(),
        };
        // The first decision stands: a request is decided once — approved by `quorum` distinct
        // approvers of one input, or denied by one.
        let mut first_input: Option<&Value> = None;
        for (ts, event) in &self.records {
            let id = &approval.id;
            match event {
                AuditEvent::ApprovalGranted(g)
                    if &g.approval_id == id && approval.status == ApprovalStatus::Pending =>
                {
                    if approval.votes.iter().any(|v| v.by == g.by)
                        || first_input.is_some_and(|i| !same_json(i, &g.input))
                    {
                        continue;
                    }
                    first_input.get_or_insert(&g.input);
                    approval.votes.push(ApprovalVote { by: g.by.clone(), at: *ts });
                    if approval.votes.len() >= approval.authority.quorum.max(1) as usize {
                        let names: Vec<&str> = approval.votes.iter().map(|v| v.by.as_str()).collect();
                        approval.status = ApprovalStatus::Approved;
                        approval.decided_by = Some(names.join(", "));
                        approval.decided_at = Some(*ts);
                        approval.approved_input = g.edited.then(|| g.input.clone());
                    }
                }
                AuditEvent::ApprovalDenied(d) if &d.approval_id == id && approval.status == ApprovalStatus::Pending => {
                    approval.status = ApprovalStatus::Denied;
                    approval.decided_by = Some(d.by.clone());
                    approval.decided_at = Some(*ts);
                    approval.note = Some(d.reason.clone());
                }
                AuditEvent::ApprovalExpired(x)
                    if &x.approval_id == id && approval.status == ApprovalStatus::Pending =>
                {
                    approval.status = ApprovalStatus::Expired;
                    approval.decided_at = Some(*ts);
                }
                AuditEvent::ApprovalConsumed(c) if &c.approval_id == id => approval.status = ApprovalStatus::Consumed,
                _ => {}
            }
        }
        let Some(row) = stored else {
            return Err(self.tampered(format!("approval {} is in the audit log but not in the store", approval.id)));
        };
        let as_requested = row.id == approval.id
            && row.kind == approval.kind
            && row.authority == approval.authority
            && row.tool == approval.tool
            && same_json(&row.input, &approval.input)
            && row.binding_hash == approval.binding_hash;
        if !as_requested {
            return Err(self.tampered(format!("approval {} differs from its signed request", row.id)));
        }
        let agrees = row.status == approval.status
            && (approval.status != ApprovalStatus::Approved
                || match (&row.approved_input, &approval.approved_input) {
                    (Some(a), Some(b)) => same_json(a, b),
                    (a, b) => a.is_none() && b.is_none(),
                });
        if !agrees {
            return Err(self.tampered(format!(
                "approval {} is {} in the store, but the signed audit log says {}{}",
                row.id,
                row.status.as_str(),
                approval.id,
                match approval.status {
                    ApprovalStatus::Pending => " is undecided".to_string(),
                    status => format!(" is {}", status.as_str()),
                }
            )));
        }
        Ok(Some(approval))
    }

    /// `Ok` if the chain allows `row` to run now, on the plugin build `digest`: with the claim
    /// made on it since, if the row is `in_flight` (the caller decides whether that claim still
    /// holds).
    pub(crate) fn authorises(
        &self,
        row: &ToolCallRecord,
        digest: Option<&str>,
    ) -> Result<Option<ToolClaimed>, RuntimeError> {
        let call = format!("call {}#{} ({})", self.step, row.index, row.tool);
        if self.events().any(|e| matches!(e, AuditEvent::ToolCall(c) if c.index == row.index)) {
            return Err(self.tampered(format!("{call} already ran")));
        }
        let at = self.records.iter().rposition(|(_, e)| match e {
            AuditEvent::GateDecision(d) => d.index == row.index,
            AuditEvent::ApprovalConsumed(c) => c.index == row.index,
            _ => false,
        });
        let decision = at.map(|i| &self.records[i].1);
        let claim = at.and_then(|i| {
            self.records[i..].iter().rev().find_map(|(_, e)| match e {
                AuditEvent::ToolClaimed(c) if c.index == row.index => Some(c.clone()),
                _ => None,
            })
        });
        match (row.status, &claim) {
            (ToolCallStatus::InFlight, None) => {
                return Err(self.tampered(format!("{call} is in flight without a signed claim")));
            }
            (ToolCallStatus::Allowed, Some(_)) => {
                return Err(self.tampered(format!("{call} was claimed, but its row says it never started")));
            }
            _ => {}
        }
        let same_call = |tool: &str, input: &Value, plugin_digest: &Option<String>| {
            tool == row.tool && same_json(input, &row.input) && digest.is_some() && plugin_digest.as_deref() == digest
        };
        match decision {
            Some(AuditEvent::GateDecision(GateDecision {
                verdict: VerdictRecord::Allow { .. },
                tool,
                input,
                plugin_digest,
                agent,
                ..
            })) if same_call(tool, input, plugin_digest) && agent == &row.agent => Ok(claim),
            Some(AuditEvent::ApprovalConsumed(ApprovalConsumed {
                verdict: VerdictRecord::Allow { .. },
                approval_id,
                tool,
                input,
                plugin_digest,
                ..
            })) if same_call(tool, input, plugin_digest) => {
                self.approved(approval_id, row, digest.unwrap_or_default()).map(|()| claim)
            }
            Some(_) => Err(self.tampered(format!("the last signed decision on {call} does not allow it as stored"))),
            None => Err(self.tampered(format!("no signed decision allows {call}"))),
        }
    }

    /// A person approved exactly `row`'s input, answering a request whose binding holds for
    /// the plugin build `digest`.
    fn approved(&self, approval_id: &str, row: &ToolCallRecord, digest: &str) -> Result<(), RuntimeError> {
        let requested = self.events().find_map(|e| match e {
            AuditEvent::ApprovalRequested(r @ ApprovalRequested { .. }) if r.approval_id == approval_id => Some(r),
            _ => None,
        });
        let Some(requested) = requested else {
            return Err(self.tampered(format!("approval {approval_id} has no signed request")));
        };
        // Distinct approvers who approved exactly this input, answering this request.
        let mut approvers: Vec<&str> = Vec::new();
        for e in self.events() {
            if let AuditEvent::ApprovalGranted(g @ ApprovalGranted { .. }) = e
                && g.approval_id == approval_id
                && same_json(&g.input, &row.input)
                && g.binding_hash == requested.binding_hash
                && !approvers.contains(&g.by.as_str())
            {
                approvers.push(&g.by);
            }
        }
        let holds = requested.index == row.index
            && requested.tool == row.tool
            && approvers.len() >= requested.authority.quorum.max(1) as usize
            && binding_hash(digest, &requested.tool, &requested.input) == requested.binding_hash;
        if holds {
            Ok(())
        } else {
            Err(self.tampered(format!("approval {approval_id} does not cover the stored call")))
        }
    }

    /// Checks the approval row a person is about to decide on is the one the chain's signed
    /// request asked for — tool, exact input, binding and expiry — so what `approvals show`
    /// displays and the grant records is what the runtime will run.
    /// Returns who may decide it, as that signed request says.
    pub(crate) async fn check_request(
        store: &dyn Store,
        row: &ApprovalRecord,
    ) -> Result<ApprovalAuthority, RuntimeError> {
        let log = StepLog::read(store, &row.run_id, row.step).await?;
        let requested = log.events().find_map(|e| match e {
            AuditEvent::ApprovalRequested(r) if r.approval_id == row.id => Some(r),
            _ => None,
        });
        let Some(requested) = requested else {
            return Err(log.tampered(format!("approval {} has no signed request", row.id)));
        };
        let same = requested.index == row.index
            && requested.kind == row.kind
            && requested.tool == row.tool
            && same_json(&requested.input, &row.input)
            && requested.binding_hash == row.binding_hash
            && requested.expires_at == row.expires_at
            && requested.authority == row.authority;
        if same {
            Ok(requested.authority.clone())
        } else {
            Err(log.tampered(format!("approval {} differs from its signed request", row.id)))
        }
    }

    fn tampered(&self, what: String) -> RuntimeError {
        RuntimeError::Tampered { run_id: self.run_id.clone(), what }
    }
}

impl Runtime {
    /// Checks the run is advanced with what its signed `run.started` binds it to: the workflow
    /// file, the plugin builds, the models and the upstreams. The run's row (its path, digest
    /// and options) is only where to look; this is the check.
    pub(crate) async fn check_bindings(&self, run: &RunRecord) -> Result<(), RuntimeError> {
        let tampered = |what: String| RuntimeError::Tampered { run_id: run.id.clone(), what };
        let started = self.store.vouched_run_start(&run.id).await.map_err(|e| tampered_store(&run.id, e))?;
        let Some(AuditEvent::RunStarted(bound)) = started.and_then(|r| r.event().ok()) else {
            return Err(tampered("the run has no signed run.started record".into()));
        };
        let RunStarted { workflow_sha256, plugins, models, upstreams, .. } = bound;
        if workflow_sha256 != self.workflow.digest {
            return Err(RuntimeError::WorkflowChanged {
                run_id: run.id.clone(),
                path: self.workflow.path.display().to_string(),
                was: workflow_sha256,
                now: self.workflow.digest.clone(),
            });
        }
        let loaded: BTreeMap<String, String> = self
            .workflow
            .definition
            .plugins
            .keys()
            .filter_map(|p| Some((p.clone(), self.catalogue.plugin(p)?.digest().to_string())))
            .collect();
        for (plugin, was) in &plugins {
            let now = loaded.get(plugin).cloned().unwrap_or_default();
            if &now != was {
                return Err(RuntimeError::PluginChanged {
                    run_id: run.id.clone(),
                    plugin: plugin.clone(),
                    was: was.clone(),
                    now,
                });
            }
        }
        if loaded.len() != plugins.len() {
            return Err(tampered("its plugins are not the ones the run started with".into()));
        }
        if upstreams != self.options.upstreams {
            return Err(tampered("its upstreams are not the ones the run started with".into()));
        }
        for (agent, model) in &models {
            if &self.provider(agent)?.describe() != model {
                return Err(tampered(format!("agent `{agent}` is not on the model the run started with ({model})")));
            }
        }
        Ok(())
    }
}

/// Equal as the audit log hashes them: canonical JSON (a number read back from the database
/// may change its representation, `3.0` to `3`, not its value).
fn same_json(a: &Value, b: &Value) -> bool {
    canonical_json(a) == canonical_json(b)
}

fn tampered_store(run_id: &str, e: tollgate_store::StoreError) -> RuntimeError {
    match e {
        tollgate_store::StoreError::Tampered(what) => RuntimeError::Tampered { run_id: run_id.to_string(), what },
        other => other.into(),
    }
}
