//! The call report: what one sandboxed call did, for the CLI, the audit log and tests.
//! Everything in it has already passed through the redactor.

use serde::Serialize;
pub use tollgate_contract::EgressRecord;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogRecord {
    pub level: String,
    pub message: String,
    /// A JSON object, or null.
    pub fields: serde_json::Value,
}

/// Everything one call did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallReport {
    pub plugin: String,
    pub plugin_version: String,
    pub digest: String,
    pub tool: String,
    pub call_id: String,
    /// `ok`, or the error kind (see [`crate::CallError::kind`]).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_us: u64,
    /// The call ran on an instance an earlier call of the same [`crate::WarmInstances`] set
    /// used (guest memory left by that call was visible to this one). Always false for
    /// [`crate::Plugin::call`], which instantiates fresh.
    pub reused_instance: bool,
    /// Exact when the call returns or runs out of fuel; a lower bound when it is stopped by
    /// the timeout (wasmtime does not flush the fuel counter on an interrupt).
    pub fuel_used: u64,
    pub fuel_limit: u64,
    /// The instance's peak linear memory: on a reused instance, memory earlier calls grew counts.
    pub peak_memory_bytes: usize,
    /// The memory limit refused a `memory.grow` during the call. Set even when the guest
    /// recovered (caught its allocation failure) and the call succeeded: it ran short.
    pub memory_refused: bool,
    /// The guest's own error, when the host reported a more precise cause in its place: a
    /// guest that caught a refused `memory.grow` and returned a tool error (`MemoryError`,
    /// "out of memory") gets [`crate::CallError::MemoryLimit`], and its words are kept here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_error: Option<String>,
    pub egress: Vec<EgressRecord>,
    /// Outbound attempts past the per-call cap: refused, counted, not recorded one by one.
    pub egress_dropped: usize,
    /// Credentials whose value an upstream reflected in a response and the host scrubbed
    /// before the guest could read it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials_scrubbed: Vec<String>,
    pub logs: Vec<LogRecord>,
    pub logs_dropped: usize,
    pub stdout: String,
    pub stderr: String,
    pub stdio_truncated: bool,
    /// Names of secrets the plugin read through the secrets capability.
    pub secrets_read: Vec<String>,
    pub kv_ops: usize,
}
