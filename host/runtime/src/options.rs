//! Operator options a run is started with. They are stored with the run (never secrets) so a
//! resume in another process sees the same models and upstreams.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    /// Model spec for every agent, overriding each agent's `model` (`--model`).
    pub model: Option<String>,
    /// Host → base URL remaps (`--upstream api.hubapi.com=http://127.0.0.1:4010`): the plugins
    /// keep addressing the real host, credentials stay bound to it.
    pub upstreams: BTreeMap<String, String>,
}
