//! `tollgate-contract`: the vocabulary the Tollgate crates share, as plain data with its
//! parsers, so that crates that only *describe* plugins (the workflow format, the plugin-project
//! builder) need not link the runtime that *runs* them.
//!
//! What lives here, one module per concept:
//! - [`pattern`] — host patterns (`[scheme://]host[:port]`), request targets, IP spellings;
//! - [`units`] — the one syntax for durations (`250ms`, `30s`, `5m`, `24h`, `7d`) and sizes
//!   (`64MiB`), for CLI flags, workflow files and everything else;
//! - [`limits`] — per-call [`Limits`] with their defaults, ceilings and validation;
//! - [`secret`] — [`SecretSource`] (`env:VAR`, `file:PATH`) and reading it;
//! - [`grants`] — [`GrantSet`], what an operator grants one plugin;
//! - [`manifest`] — [`Manifest`], [`ToolSpec`], [`Effects`], [`CredentialSpec`];
//! - [`capability`] — [`Capability`] and the only map from import names to capabilities;
//! - [`egress`] — [`EgressRecord`], one outbound request attempt, for reports and the audit log;
//! - [`text`] — [`escape_for_terminal`] and its variants: the one rule for showing text a plugin
//!   or an upstream supplied to a person.
//!
//! The rule: **no wasmtime here** — nor tokio, hyper or jsonschema. Enforcement (egress,
//! limits, the load-time import check, manifest validation) stays in `tollgate-sandbox`; this
//! crate only names things. `tollgate-workflow` depends on it and not on the sandbox (a test in
//! `tests/dependencies.rs` checks the workflow's dependency tree).

pub mod capability;
pub mod egress;
pub mod grants;
pub mod limits;
pub mod manifest;
pub mod pattern;
pub mod scope;
pub mod secret;
pub mod text;
pub mod units;

pub use capability::Capability;
pub use egress::EgressRecord;
pub use grants::GrantSet;
pub use limits::Limits;
pub use manifest::{CredentialSpec, Effects, Manifest, ToolOverride, ToolSpec};
pub use scope::RequestScope;
pub use secret::SecretSource;
pub use text::escape_for_terminal;
