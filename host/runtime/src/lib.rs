//! `tollgate-runtime` runs agentic workflows: agents plan with a model, call sandboxed tools
//! through the gate, wait for humans where policy says so, and leave a durable, audited record.
//!
//! ```text
//! Runtime::open(store, sandbox, workflow, options)   load plugins under the workflow's grants
//!   ├─ start(goal) → run id                           run row + `run.started`
//!   ├─ advance(run id, observer) → RunOutcome         the loop (advance.rs):
//!   │     step.rs   ask the model; gate every call; turn commit
//!   │     finish.rs settle approvals; run allowed calls concurrently; result commit
//!   └─ approve(id, by, edit) / approvals::deny / approvals::cancel
//! ```
//!
//! Invariants:
//! - Only [`gate::check`] decides whether a plugin tool may run, and its verdict is committed
//!   (with its audit record) before the call starts.
//! - A tool call runs only from a committed `allowed` row, with the idempotency key
//!   `run:step:index`; after a crash, only rows without a recorded result run again.
//! - An approval authorises one plugin build, tool and input (its binding hash), once.
//! - The runtime never holds state a crash could lose: the loop's in-memory run and state only
//!   ever take changes a commit has written (a failed commit ends `advance`).
//! - Plugin instances are shared only by the calls of one run, only for plugins marked
//!   `instances = "per-run"`, and only while `advance` works on that run (warm.rs).

mod advance;
mod apply;
pub mod approvals;
mod authorise;
mod catalogue;
mod claim;
pub mod control;
mod crashtest;
pub mod deploy;
mod error;
pub mod events;
mod execute;
mod finish;
mod fixed;
pub mod gate;
mod guard;
mod ids;
pub mod kv;
pub mod lease;
mod options;
mod runtime;
mod state;
mod step;
mod warm;

pub use advance::RunOutcome;
pub use catalogue::{Catalogue, check_manifests, model_name};
pub use error::RuntimeError;
pub use events::{Event, Observer, Quiet};
pub use fixed::FixedCursor;
pub use ids::now_ms;
pub use options::RunOptions;
pub use runtime::{Runtime, Start, StartedRun, check_same_workflow};
pub use state::{CallTarget, PendingCall, PendingStep, RunState};
