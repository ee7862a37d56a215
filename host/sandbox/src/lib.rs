//! `tollgate-sandbox` runs Tollgate plugins — WebAssembly components built against
//! `wit/plugin.wit` — under enforced capabilities and limits. The vocabulary it enforces (host
//! patterns, limits, secret sources, manifests, which import is which capability) is plain data
//! in `tollgate-contract`.
//!
//! ```text
//! Sandbox::new(config)            engine, linker (all capabilities), epoch ticker — once
//!   └─ sandbox.load(bytes, grants) compile (cache) → imports ∩ grants → manifest → Plugin
//!        ├─ plugin.call(tool, input, ctx)  fresh Store + instance per call → CallOutcome
//!        └─ plugin.warm_instances()        opt-in: instances reused by the calls of one run
//!             └─ warm.call(tool, input, ctx)  idle instance (reset per call) or fresh → CallOutcome
//! ```
//!
//! A component that does not export `tollgate:plugin/tool` is a *plain* component: each of its
//! exported functions becomes a tool, with JSON Schemas derived from its WIT types (see
//! `plain`), under the same grants, limits and reports.
//!
//! Invariants:
//! - Deny by default: [`Grants::new`] grants nothing; a plugin importing a capability that is
//!   not granted does not load, and the error names the import.
//! - Only [`egress`] opens connections for guests, and only to addresses it checked.
//! - Every [`Plugin::call`] gets a fresh store and instance: nothing of one call is visible to
//!   another except through the kv capability, which is scoped per plugin. The one exception
//!   is explicit: calls through one [`WarmInstances`] set may share guest memory (see `warm`).
//! - Guest behaviour never panics the host: every outcome is a [`CallError`] or a value.
//! - Secret values leave a call only as `[REDACTED:name]`.

mod bindings;
mod cache;
mod cache_key;
mod call;
pub mod capability;
pub mod egress;
mod engine;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod grants;
pub mod isolate;
pub mod kv;
mod limits;
mod manifest;
mod pipe;
mod plain;
mod plugin;
mod precheck;
mod redact;
pub mod report;
mod schema;
mod state;
mod warm;

pub use cache::CacheOutcome;
pub use call::{CallContext, CallOutcome};
pub use capability::Import;
pub use egress::{Network, Recorder, Replayer, TapRequest, TapResponse};
pub use engine::{Sandbox, SandboxConfig, SandboxError};
pub use error::{CallError, LoadError, ToolError, ValueSide};
pub use grants::{Grants, Upstream};
pub use isolate::{CompileIsolation, compile_child_main};
pub use plain::{PlainInfo, PlainTool, UnsupportedFunction};
pub use plugin::{Inspection, Plugin, sha256_hex};
pub use precheck::CompileLimits;
pub use redact::Redactor;
pub use report::{CallReport, EgressRecord, LogRecord};
pub use schema::{RegexBudget, Schema};
/// The `tollgate-contract` types this crate's API takes and returns (other crates import them
/// from `tollgate_contract`).
pub use tollgate_contract::{Capability, Effects, Limits, Manifest, SecretSource, ToolOverride, ToolSpec};
pub use warm::WarmInstances;
