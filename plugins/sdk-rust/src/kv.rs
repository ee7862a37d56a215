//! A key-value store scoped to this plugin, through `tollgate:plugin/kv`.
//!
//! Calling any function here makes the plugin import `tollgate:plugin/kv`; a plugin that never
//! calls one does not. Errors map to [`ToolError`]: a full store or an oversized key or value
//! is `internal` (the plugin chose what to store), an unavailable store is `retryable`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ToolError;
use crate::bindings::tollgate::plugin::kv as wit;
// Natively (`cargo test` of a plugin) there is no host behind the imports: the stand-ins in
// [`crate::testing`] answer instead.
#[cfg(target_arch = "wasm32")]
use crate::bindings::tollgate::plugin::kv as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::kv as host;

fn map_error(error: wit::KvError) -> ToolError {
    match error {
        wit::KvError::TooLarge(m) => ToolError::internal(format!("kv: too large: {m}")),
        wit::KvError::Unavailable(m) => ToolError::retryable(format!("kv: unavailable: {m}")),
    }
}

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, ToolError> {
    host::get(key).map_err(map_error)
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: &[u8]) -> Result<(), ToolError> {
    host::set(key, value).map_err(map_error)
}

/// Removes `key`; removing a missing key is not an error.
pub fn delete(key: &str) -> Result<(), ToolError> {
    host::delete(key).map_err(map_error)
}

/// Keys starting with `prefix`, sorted, at most `limit`.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, ToolError> {
    host::list_keys(prefix, limit).map_err(map_error)
}

/// The JSON value stored under `key`, if any. A value that does not decode as `T` is
/// `internal`: the plugin wrote something else there.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, ToolError> {
    let Some(bytes) = get(key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ToolError::internal(format!("kv: value under `{key}` is not the expected JSON: {e}")))
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), ToolError> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| ToolError::internal(format!("kv: could not serialise `{key}`: {e}")))?;
    set(key, &bytes)
}
