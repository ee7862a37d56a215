//! Raw secret reads through `tollgate:plugin/secrets`. **Discouraged.**
//!
//! Prefer a manifest [`Credential`](crate::Credential): the host adds it to outgoing requests
//! at egress and the plugin never sees it. Use this only for secrets that cannot travel as a
//! header to one host (for example a key used to sign a payload). Every read is recorded in the
//! call report and the value is redacted from outputs, logs and errors; the operator must grant
//! each secret to the plugin by name. A plugin that never calls [`get`] does not import the
//! interface at all.

use crate::ToolError;
use crate::bindings::tollgate::plugin::secrets as wit;
// Natively (`cargo test` of a plugin) there is no host behind the imports: the stand-ins in
// [`crate::testing`] answer instead.
#[cfg(target_arch = "wasm32")]
use crate::bindings::tollgate::plugin::secrets as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::secrets as host;

/// The secret `name`. Not granted → `denied`; its source unreadable → `upstream` (an operator
/// problem the plugin cannot fix, and retrying will not help).
pub fn get(name: &str) -> Result<String, ToolError> {
    host::get(name).map_err(|error| match error {
        wit::SecretError::NotGranted(m) => {
            ToolError::denied(format!("secret `{name}` is not granted to this plugin: {m}"))
        }
        wit::SecretError::Unavailable(m) => ToolError::upstream(None, format!("secret `{name}` is unavailable: {m}")),
    })
}
