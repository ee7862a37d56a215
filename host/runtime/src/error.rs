//! The runtime's error type: what stops the runtime from advancing a run at all (as opposed to
//! tool errors and denials, which go back to the model, and bounds, which end the run).

use tollgate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("plugin `{plugin}`: {message}")]
    Plugin { plugin: String, message: String },
    #[error("run {0} not found")]
    RunNotFound(String),
    #[error("approval {0} not found")]
    ApprovalNotFound(String),
    /// The request cannot be done in the state the run or approval is in.
    #[error("{0}")]
    State(String),
    /// The workflow file changed since the run started; resuming would mix two workflows.
    #[error(
        "workflow {path} changed since run {run_id} started (sha256 was {was}, now {now}); restore it or start a new run"
    )]
    WorkflowChanged { run_id: String, path: String, was: String, now: String },
    /// A plugin's component is another build than the one the run started with.
    #[error(
        "plugin `{plugin}` changed since run {run_id} started (sha256 was {was}, now {now}); restore that build or start a new run"
    )]
    PluginChanged { run_id: String, plugin: String, was: String, now: String },
    /// Another process claimed the call and may still be running it.
    #[error(
        "run {run_id}: call {call} is in flight in process {by} (its claim holds until {until} ms since the epoch unless that process stops); try again once it has finished"
    )]
    InFlight { run_id: String, call: String, by: String, until: i64 },
    /// The store does not match the signed audit log: something was edited behind the
    /// runtime's back. Nothing was run.
    #[error(
        "run {run_id}: the store does not match its signed audit log ({what}); nothing was run — check it with `tollgate audit verify`"
    )]
    Tampered { run_id: String, what: String },
    #[error("workflow: {0}")]
    Workflow(String),
    #[error("model: {0}")]
    Model(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The decider may not decide this approval (not among its approvers, or the run's starter).
    #[error("{0}")]
    NotPermitted(String),
    /// An idempotency key was used before, for a different start.
    #[error("idempotency key `{key}` already started run {run_id} with a different request")]
    KeyReused { key: String, run_id: String },
}
