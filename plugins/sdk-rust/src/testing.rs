//! Native stand-ins for the host's `kv`, `secrets` and `log`, so `cargo test` of a plugin can
//! run tools that use them. Compiled only for targets other than wasm32: there the bindings'
//! imports have no host behind them, and calling one aborted the whole test run.
//!
//! State is per thread, and cargo runs each `#[test]` on a thread of its own, so tests never see
//! each other's keys, secrets or log lines. A test grants secrets with [`set_secret`] (an
//! ungranted one is `denied`, as on the host) and reads what the tools logged with [`logs`].
//!
//! ```ignore
//! #[test]
//! fn remembers_the_last_greeting() {
//!     tollgate_sdk::testing::set_secret("api_key", "test-key");
//!     greet(&ctx(), GreetInput { name: "Ada".into() }).unwrap();
//!     assert_eq!(tollgate_sdk::kv::get("last").unwrap().as_deref(), Some(&b"Ada"[..]));
//!     assert_eq!(tollgate_sdk::testing::logs()[0].message, "greeted");
//! }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bindings::tollgate::plugin::kv::KvError;
use crate::bindings::tollgate::plugin::log::Level;
use crate::bindings::tollgate::plugin::secrets::SecretError;

/// The host's bound on a key (`tollgate-sandbox`'s `MAX_KEY_BYTES`), so a test meets the
/// refusal the host would give.
const MAX_KEY_BYTES: usize = 512;

/// One line a tool logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
    /// The fields given with [`crate::log::with_fields`], if any.
    pub fields: Option<serde_json::Value>,
}

#[derive(Default)]
struct State {
    kv: BTreeMap<String, Vec<u8>>,
    secrets: BTreeMap<String, String>,
    logs: Vec<LogLine>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

/// Grants the secret `name` with `value` to the tools this test calls.
pub fn set_secret(name: &str, value: &str) {
    with(|s| s.secrets.insert(name.to_owned(), value.to_owned()));
}

/// The lines logged so far in this test, oldest first.
pub fn logs() -> Vec<LogLine> {
    with(|s| s.logs.clone())
}

/// Forgets this test's keys, secrets and log lines.
pub fn reset() {
    with(|s| *s = State::default());
}

/// The fake `tollgate:plugin/kv`, with the bindings' signatures.
pub(crate) mod kv {
    use super::*;

    fn check(key: &str) -> Result<(), KvError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::TooLarge(format!("key is {} bytes, over {MAX_KEY_BYTES}", key.len())));
        }
        Ok(())
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check(key)?;
        Ok(with(|s| s.kv.get(key).cloned()))
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
        check(key)?;
        with(|s| s.kv.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &str) -> Result<(), KvError> {
        check(key)?;
        with(|s| s.kv.remove(key));
        Ok(())
    }

    pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
        Ok(with(|s| s.kv.keys().filter(|k| k.starts_with(prefix)).take(limit as usize).cloned().collect()))
    }
}

/// The fake `tollgate:plugin/secrets`.
pub(crate) mod secrets {
    use super::*;

    pub fn get(name: &str) -> Result<String, SecretError> {
        with(|s| s.secrets.get(name).cloned()).ok_or_else(|| {
            SecretError::NotGranted("not set in this test (tollgate_sdk::testing::set_secret)".to_owned())
        })
    }
}

/// The fake `tollgate:plugin/log`.
pub(crate) mod log {
    use super::*;

    pub fn log(level: Level, message: &str, fields: &str) {
        let fields = (!fields.is_empty()).then(|| serde_json::from_str(fields).unwrap_or(fields.into()));
        with(|s| s.logs.push(LogLine { level, message: message.to_owned(), fields }));
    }
}

#[cfg(test)]
mod tests {
    use crate::{ToolError, kv, log, secrets, testing};

    #[test]
    fn kv_keeps_values_per_test() {
        assert_eq!(kv::get("count").unwrap(), None);
        kv::set_json("count", &3).unwrap();
        kv::set("other", b"x").unwrap();
        assert_eq!(kv::get_json::<u32>("count").unwrap(), Some(3));
        assert_eq!(kv::list_keys("c", 10).unwrap(), ["count"]);
        kv::delete("count").unwrap();
        assert_eq!(kv::get("count").unwrap(), None);
        assert!(matches!(kv::get(&"k".repeat(513)), Err(ToolError::Internal(_))));
    }

    #[test]
    fn kv_of_another_test_is_not_seen() {
        assert_eq!(kv::get("other").unwrap(), None);
    }

    #[test]
    fn secrets_are_denied_until_the_test_sets_them() {
        assert!(matches!(secrets::get("api_key"), Err(ToolError::Denied(_))));
        testing::set_secret("api_key", "k-123");
        assert_eq!(secrets::get("api_key").unwrap(), "k-123");
        testing::reset();
        assert!(secrets::get("api_key").is_err());
    }

    #[test]
    fn log_lines_are_kept_with_their_fields() {
        log::info("searching");
        log::with_fields(log::Level::Warn, "slow", &serde_json::json!({"ms": 2300}));
        let lines = testing::logs();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].level, lines[0].message.as_str(), &lines[0].fields),
            (log::Level::Info, "searching", &None)
        );
        assert_eq!(lines[1].fields, Some(serde_json::json!({"ms": 2300})));
    }
}
