//! [`Context`]: what a tool knows about the call it is serving.

use crate::bindings::tollgate::plugin::types::CallContext;

/// Identifies one tool call. Passed to every tool function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    run_id: String,
    call_id: String,
    idempotency_key: String,
}

impl Context {
    /// Builds a context by hand, for unit tests of tool functions.
    pub fn new(run_id: impl Into<String>, call_id: impl Into<String>, idempotency_key: impl Into<String>) -> Self {
        Self { run_id: run_id.into(), call_id: call_id.into(), idempotency_key: idempotency_key.into() }
    }

    /// The agent run this call belongs to.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// This call, unique within the run.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Stable across retries of the same logical call: forward it to APIs that deduplicate
    /// (usually as an `Idempotency-Key` header) so a retry does not act twice.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
}

impl From<CallContext> for Context {
    fn from(context: CallContext) -> Self {
        Self { run_id: context.run_id, call_id: context.call_id, idempotency_key: context.idempotency_key }
    }
}
