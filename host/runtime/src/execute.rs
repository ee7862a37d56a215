//! Running one allowed call in the sandbox: the plugin's fresh instance (or the run's warm one
//! for `instances = "per-run"`), the finished row, and its `tool.call` audit record.

use serde_json::json;
use sha2::{Digest, Sha256};
use tollgate_sandbox::{CallContext, CallReport};
use tollgate_store::audit::{Instance, ToolCall};
use tollgate_store::{ToolCallRecord, ToolCallStatus};
use tollgate_workflow::InstanceMode;

use crate::events::{Event, Observer};
use crate::ids::now_ms;
use crate::runtime::Runtime;

/// A call that ran: its finished row, the fuel it used, and its audit record.
pub(crate) struct Finished {
    pub row: ToolCallRecord,
    pub fuel: u64,
    pub audit: ToolCall,
}

impl Runtime {
    /// Runs the call of an `allowed` row with its idempotency key.
    pub(crate) async fn execute(&self, mut row: ToolCallRecord, observer: &dyn Observer) -> Finished {
        observer.event(&Event::ToolStarted { step: row.step, index: row.index, tool: row.tool.clone() });
        let mut audit = ToolCall {
            step: row.step,
            index: row.index,
            tool: row.tool.clone(),
            plugin_digest: None,
            idempotency_key: row.idempotency_key.clone(),
            input: row.input.clone(),
            outcome: "unknown-tool".into(),
            error: None,
            output_sha256: None,
            fuel_used: 0,
            duration_us: 0,
            peak_memory_bytes: 0,
            memory_refused: false,
            guest_error: None,
            instance: Instance::Fresh,
            egress: Vec::new(),
        };
        row.status = ToolCallStatus::Done;
        let (Some((plugin_name, tool)), Some((plugin, _))) = (row.tool.split_once('.'), self.catalogue.tool(&row.tool))
        else {
            let message = format!("tool `{}` is not loaded", row.tool);
            row.result = Some(json!({"error": "unknown-tool", "message": message}));
            audit.error = Some(message);
            row.updated_at = now_ms();
            return Finished { row, fuel: 0, audit };
        };
        let ctx = CallContext {
            run_id: row.run_id.clone(),
            call_id: row.call_id.clone(),
            idempotency_key: row.idempotency_key.clone(),
        };
        let input = serde_json::to_string(&row.input).unwrap_or_default();
        crate::crashtest::pause_point("call_started");
        let outcome = match self.workflow.definition.plugins.get(plugin_name).map(|p| p.instances) {
            Some(InstanceMode::PerRun) => {
                self.warm.get(&row.run_id, plugin_name, plugin).call(tool, &input, &ctx).await
            }
            _ => plugin.call(tool, &input, &ctx).await,
        };
        crate::crashtest::pause_point("call_finished");
        let report = &outcome.report;
        let output = match &outcome.result {
            Ok(value) => {
                let text = serde_json::to_string(value).unwrap_or_default();
                audit.output_sha256 = Some(hex::encode(Sha256::digest(text.as_bytes())));
                row.result = Some(json!({"output": value}));
                Some(value.clone())
            }
            Err(e) => {
                row.result = Some(json!({"error": e.kind(), "message": e.to_string()}));
                None
            }
        };
        observer.event(&Event::ToolFinished {
            step: row.step,
            index: row.index,
            tool: row.tool.clone(),
            outcome: report.outcome.clone(),
            duration_ms: report.duration_us / 1000,
            output,
        });
        record_report(&mut audit, report);
        row.report = serde_json::to_value(report).ok();
        row.updated_at = now_ms();
        Finished { row, fuel: report.fuel_used, audit }
    }
}

/// What the sandbox's report of a call adds to its audit record (the report is already
/// redacted: credentials never appear in it).
fn record_report(audit: &mut ToolCall, report: &CallReport) {
    audit.plugin_digest = Some(report.digest.clone());
    audit.outcome = report.outcome.clone();
    audit.error = report.error.clone();
    audit.fuel_used = report.fuel_used;
    audit.duration_us = report.duration_us;
    audit.peak_memory_bytes = u64::try_from(report.peak_memory_bytes).unwrap_or(u64::MAX);
    audit.memory_refused = report.memory_refused;
    audit.guest_error = report.guest_error.clone();
    audit.instance = if report.reused_instance { Instance::Reused } else { Instance::Fresh };
    audit.egress = report.egress.clone();
}
