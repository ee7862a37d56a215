//! [`EgressRecord`]: what one outbound request attempt of a plugin was, allowed or refused. The
//! sandbox's egress gate fills it, call reports carry it, and the audit log keeps it in every
//! `tool.call` record. Nothing in it is secret: paths only (queries can carry tokens), and a
//! credential by name, never its value.

use serde::{Deserialize, Serialize};

/// One outbound request attempt, allowed or not.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EgressRecord {
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Path only: queries can carry tokens.
    pub path: String,
    /// Where the operator's upstream remap sent it, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The checked address the host connected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The upstream's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Set when the gate refused the request: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,
    /// Set when an allowed request failed: how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Name of the credential the host injected, if any (never the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// A header of the request carried the call's idempotency key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotency_key: bool,
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub duration_us: u64,
}
