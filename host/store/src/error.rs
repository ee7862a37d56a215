//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The run changed since it was read (another process advanced it).
    #[error("run {run_id} was changed by another process (expected version {expected}, found {found})")]
    Conflict { run_id: String, expected: i64, found: i64 },
    /// A cap charge would pass its limit; nothing was written.
    #[error("cap {scope} exceeded: {used} used + {amount} requested > limit {limit}")]
    CapExceeded { scope: String, used: i64, amount: i64, limit: i64 },
    /// An approval transition found the approval in another status; nothing was written.
    #[error("approval {id} is {found}, not {expected}")]
    ApprovalMoved { id: String, expected: String, found: String },
    /// The commit's lease on its run is no longer the run's lease (another process took the
    /// run over); nothing was written.
    #[error("run {run_id}: the lease of {owner} was taken over; this process writes nothing more for the run")]
    Fenced { run_id: String, owner: String },
    /// `by` already approved this approval: a quorum counts distinct approvers.
    #[error("{by} has already approved {id}; a quorum needs different approvers")]
    AlreadyVoted { id: String, by: String },
    /// An approval of an approval others approved already must approve the same input.
    #[error("approval {id} was approved with another input; approve that input, or deny")]
    VoteDiffers { id: String },
    /// Something recorded once cannot change (a deployed workflow version).
    #[error("{0}")]
    Immutable(String),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The database file, its migrations or the audit key could not be opened.
    #[error("cannot open store at {path}: {message}")]
    Open { path: String, message: String },
    #[error("database error: {0}")]
    Database(String),
    /// A stored row could not be decoded (the database was edited by hand, or is newer).
    #[error("corrupt {what}: {message}")]
    Corrupt { what: &'static str, message: String },
    #[error("audit key: {0}")]
    Key(String),
    /// The audit log cannot vouch for something the runtime would act on: a record, its link
    /// to a signed checkpoint, or the signature itself does not hold.
    #[error("the audit log does not vouch for this: {0}")]
    Tampered(String),
}
