//! Structured log lines through `tollgate:plugin/log`, captured into the call report.
//!
//! Calling any function here makes the plugin import `tollgate:plugin/log`; a plugin that never
//! logs does not. The host caps line count and size, so log decisions, not payloads.
//!
//! ```ignore
//! log::info("searching contacts");
//! log::with_fields(log::Level::Warn, "slow upstream", &serde_json::json!({"ms": 2300}));
//! ```

use crate::bindings::tollgate::plugin::log as wit;
// Natively (`cargo test` of a plugin) there is no host behind the imports: the stand-ins in
// [`crate::testing`] answer instead.
#[cfg(target_arch = "wasm32")]
use crate::bindings::tollgate::plugin::log as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::log as host;

/// Severity of a log line.
pub use wit::Level;

/// Logs `message` at `level` with no fields.
pub fn log(level: Level, message: &str) {
    host::log(level, message, "");
}

/// Logs `message` at `level` with `fields`, which should be a JSON object
/// (for example `serde_json::json!({"contact_id": id})`).
pub fn with_fields(level: Level, message: &str, fields: &serde_json::Value) {
    host::log(level, message, &fields.to_string());
}

pub fn trace(message: &str) {
    log(Level::Trace, message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}
