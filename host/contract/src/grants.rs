//! What an operator grants one plugin, as plain data: [`GrantSet`]. A workflow file's
//! `[plugins.<name>.grants]` and `[plugins.<name>.limits]` become one of these (paths resolved,
//! defaults applied); the sandbox's deny-by-default `Grants` builder, which also carries
//! egress-only settings (upstream remaps, pinned DNS answers, opened address ranges), is built
//! from it where the sandbox is linked.

use std::collections::BTreeMap;

use crate::limits::Limits;
use crate::pattern::HostPattern;
use crate::scope::RequestScope;
use crate::secret::SecretSource;

/// The grants of one plugin. [`GrantSet::default`] grants nothing (no hosts, credentials, kv or
/// log) under [`Limits::default`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSet {
    /// Outbound hosts; each can only narrow what the plugin's manifest declares. Empty: no HTTP.
    pub hosts: Vec<HostPattern>,
    /// Manifest credential name → where its value comes from.
    pub credentials: BTreeMap<String, SecretSource>,
    /// The kv store's namespace; `None`: no kv.
    pub kv_namespace: Option<String>,
    /// Structured logging into the call report.
    pub log: bool,
    /// Per-call limits.
    pub limits: Limits,
    /// Tool name → the only requests it may make. A tool not listed is limited by hosts alone.
    pub tool_requests: BTreeMap<String, Vec<RequestScope>>,
}
