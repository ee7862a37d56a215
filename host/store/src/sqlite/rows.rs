//! Rows to records. Every decode failure is a [`StoreError::Corrupt`] naming the row, since a
//! row that does not decode was written by hand or by a newer schema.

use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::audit::{AuditCheckpoint, SealedRecord};
use crate::{
    ApprovalKind, ApprovalRecord, ApprovalStatus, RunRecord, RunStatus, RunSummary, StepRecord, StoreError,
    ToolCallRecord, ToolCallStatus,
};

// Column lists as macros so queries stay `&'static str` literals (`concat!`), never formatted.
macro_rules! run_columns {
    () => {
        "id, workflow_name, workflow_version, workflow_path, workflow_digest, goal, status, status_detail, \
         created_at, updated_at, deadline_at, counters, options, checkpoint, version"
    };
}
macro_rules! summary_columns {
    () => {
        "id, workflow_name, workflow_version, goal, status, status_detail, created_at, updated_at, counters"
    };
}
macro_rules! tool_call_columns {
    () => {
        "run_id, step, call_index, call_id, agent, tool, input, idempotency_key, status, decision, result, report, \
         updated_at"
    };
}
macro_rules! approval_columns {
    () => {
        "id, run_id, step, call_index, agent, tool, input, plugin_digest, binding_hash, reason, status, \
         requested_at, expires_at, decided_by, decided_at, note, approved_input, kind, authority, votes"
    };
}
pub(super) use {approval_columns, run_columns, summary_columns, tool_call_columns};

/// Decoding context: which table and which row, for error messages.
struct Cell<'r> {
    row: &'r SqliteRow,
    what: &'static str,
    id: String,
}

impl Cell<'_> {
    fn corrupt(&self, column: &str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { what: self.what, message: format!("{} column {column}: {message}", self.id) }
    }

    fn get<'a, T>(&'a self, column: &str) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'a, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        self.row.try_get(column).map_err(|e| self.corrupt(column, e))
    }

    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }

    fn u32(&self, column: &str) -> Result<u32, StoreError> {
        u32::try_from(self.int(column)?).map_err(|e| self.corrupt(column, e))
    }

    fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(column)?).map_err(|e| self.corrupt(column, e))
    }

    fn opt_json(&self, column: &str) -> Result<Option<Value>, StoreError> {
        self.opt_text(column)?.map(|text| serde_json::from_str(&text).map_err(|e| self.corrupt(column, e))).transpose()
    }

    fn run_status(&self) -> Result<RunStatus, StoreError> {
        let text = self.text("status")?;
        RunStatus::parse(&text).ok_or_else(|| self.corrupt("status", format!("unknown run status {text:?}")))
    }
}

fn cell<'r>(row: &'r SqliteRow, what: &'static str, id_column: &str) -> Cell<'r> {
    let id = row.try_get::<String, _>(id_column).unwrap_or_else(|_| "?".to_string());
    Cell { row, what, id }
}

pub(super) fn run(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    let c = cell(row, "run", "id");
    Ok(RunRecord {
        id: c.text("id")?,
        workflow_name: c.text("workflow_name")?,
        workflow_version: c.text("workflow_version")?,
        workflow_path: c.text("workflow_path")?,
        workflow_digest: c.text("workflow_digest")?,
        goal: c.text("goal")?,
        status: c.run_status()?,
        status_detail: c.opt_text("status_detail")?,
        created_at: c.int("created_at")?,
        updated_at: c.int("updated_at")?,
        deadline_at: c.opt_int("deadline_at")?,
        counters: c.json("counters")?,
        options: c.json("options")?,
        checkpoint: c.json("checkpoint")?,
        version: c.int("version")?,
    })
}

pub(super) fn summary(row: &SqliteRow) -> Result<RunSummary, StoreError> {
    let c = cell(row, "run", "id");
    Ok(RunSummary {
        id: c.text("id")?,
        workflow_name: c.text("workflow_name")?,
        workflow_version: c.text("workflow_version")?,
        goal: c.text("goal")?,
        status: c.run_status()?,
        status_detail: c.opt_text("status_detail")?,
        created_at: c.int("created_at")?,
        updated_at: c.int("updated_at")?,
        counters: c.json("counters")?,
    })
}

pub(super) fn step(row: &SqliteRow) -> Result<StepRecord, StoreError> {
    let c = cell(row, "step", "run_id");
    Ok(StepRecord {
        run_id: c.text("run_id")?,
        step: c.u32("step")?,
        agent: c.text("agent")?,
        turn: c.json("turn")?,
        created_at: c.int("created_at")?,
    })
}

pub(super) fn tool_call(row: &SqliteRow) -> Result<ToolCallRecord, StoreError> {
    let c = cell(row, "tool call", "idempotency_key");
    let status = c.text("status")?;
    Ok(ToolCallRecord {
        run_id: c.text("run_id")?,
        step: c.u32("step")?,
        index: c.u32("call_index")?,
        call_id: c.text("call_id")?,
        agent: c.text("agent")?,
        tool: c.text("tool")?,
        input: c.json("input")?,
        idempotency_key: c.text("idempotency_key")?,
        status: ToolCallStatus::parse(&status)
            .ok_or_else(|| c.corrupt("status", format!("unknown tool call status {status:?}")))?,
        decision: c.json("decision")?,
        result: c.opt_json("result")?,
        report: c.opt_json("report")?,
        updated_at: c.int("updated_at")?,
    })
}

pub(super) fn approval(row: &SqliteRow) -> Result<ApprovalRecord, StoreError> {
    let c = cell(row, "approval", "id");
    let status = c.text("status")?;
    Ok(ApprovalRecord {
        id: c.text("id")?,
        run_id: c.text("run_id")?,
        step: c.u32("step")?,
        index: c.u32("call_index")?,
        agent: c.text("agent")?,
        tool: c.text("tool")?,
        input: c.json("input")?,
        plugin_digest: c.text("plugin_digest")?,
        binding_hash: c.text("binding_hash")?,
        reason: c.text("reason")?,
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| c.corrupt("status", format!("unknown approval status {status:?}")))?,
        requested_at: c.int("requested_at")?,
        expires_at: c.int("expires_at")?,
        decided_by: c.opt_text("decided_by")?,
        decided_at: c.opt_int("decided_at")?,
        note: c.opt_text("note")?,
        approved_input: c.opt_json("approved_input")?,
        kind: {
            let kind = c.text("kind")?;
            ApprovalKind::parse(&kind).ok_or_else(|| c.corrupt("kind", format!("unknown approval kind {kind:?}")))?
        },
        authority: serde_json::from_value(c.json("authority")?).map_err(|e| c.corrupt("authority", e))?,
        votes: serde_json::from_value(c.json("votes")?).map_err(|e| c.corrupt("votes", e))?,
    })
}

/// `seq` is kept as stored (an INTEGER); a negative one cannot be a record of ours.
pub(super) fn sealed(row: &SqliteRow) -> Result<SealedRecord, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(|e| StoreError::Database(e.to_string()))?;
    let c = Cell { row, what: "audit record", id: format!("seq {seq}") };
    Ok(SealedRecord {
        seq: u64::try_from(seq).map_err(|e| c.corrupt("seq", e))?,
        ts: c.int("ts")?,
        run_id: c.opt_text("run_id")?,
        kind: c.text("kind")?,
        body: c.json("body")?,
        prev_hash: c.text("prev_hash")?,
        hash: c.text("hash")?,
    })
}

pub(super) fn checkpoint(row: &SqliteRow) -> Result<AuditCheckpoint, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(|e| StoreError::Database(e.to_string()))?;
    let c = Cell { row, what: "audit checkpoint", id: format!("seq {seq}") };
    Ok(AuditCheckpoint {
        seq: u64::try_from(seq).map_err(|e| c.corrupt("seq", e))?,
        hash: c.text("hash")?,
        signed_at: c.int("signed_at")?,
        public_key: c.text("public_key")?,
        signature: c.text("signature")?,
    })
}
