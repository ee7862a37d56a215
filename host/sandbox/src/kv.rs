//! The plugin-scoped key-value store behind `tollgate:plugin/kv`. Storage sits behind
//! [`KvStore`] so the agent runtime can back it with its database; [`MemoryKv`] is the
//! in-process default. Scoping is done here, not by the backend: a plugin can only ever name
//! keys inside its own namespace.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A backend. `namespace` is the plugin name; backends must keep namespaces apart.
pub trait KvStore: Send + Sync {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, namespace: &str, key: &str) -> Result<(), String>;
    /// Keys with `prefix`, sorted, at most `limit`.
    fn list(&self, namespace: &str, prefix: &str, limit: usize) -> Result<Vec<String>, String>;
    fn count(&self, namespace: &str) -> Result<usize, String>;
}

/// An in-memory [`KvStore`], shared by every call of a [`crate::Sandbox`]; gone at exit.
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl KvStore for MemoryKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.data.lock().map_err(|e| e.to_string())?.get(&(ns.to_string(), key.to_string())).cloned())
    }
    fn set(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.data.lock().map_err(|e| e.to_string())?.insert((ns.to_string(), key.to_string()), value.to_vec());
        Ok(())
    }
    fn delete(&self, ns: &str, key: &str) -> Result<(), String> {
        self.data.lock().map_err(|e| e.to_string())?.remove(&(ns.to_string(), key.to_string()));
        Ok(())
    }
    fn list(&self, ns: &str, prefix: &str, limit: usize) -> Result<Vec<String>, String> {
        let data = self.data.lock().map_err(|e| e.to_string())?;
        Ok(data
            .range((ns.to_string(), prefix.to_string())..)
            .take_while(|((n, k), _)| n == ns && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), _)| k.clone())
            .collect())
    }
    fn count(&self, ns: &str) -> Result<usize, String> {
        let data = self.data.lock().map_err(|e| e.to_string())?;
        Ok(data.range((ns.to_string(), String::new())..).take_while(|((n, _), _)| n == ns).count())
    }
}

/// Refuses everything: what `manifest()` sees while a plugin is being loaded or inspected.
#[derive(Debug, Default)]
pub struct NullKv;

const LOADING: &str = "kv is not available while a plugin is loading";

impl KvStore for NullKv {
    fn get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, String> {
        Err(LOADING.into())
    }
    fn set(&self, _: &str, _: &str, _: &[u8]) -> Result<(), String> {
        Err(LOADING.into())
    }
    fn delete(&self, _: &str, _: &str) -> Result<(), String> {
        Err(LOADING.into())
    }
    fn list(&self, _: &str, _: &str, _: usize) -> Result<Vec<String>, String> {
        Err(LOADING.into())
    }
    fn count(&self, _: &str) -> Result<usize, String> {
        Err(LOADING.into())
    }
}

/// Longest key a plugin may use.
pub const MAX_KEY_BYTES: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_separate() {
        let kv = MemoryKv::default();
        kv.set("a", "k1", b"1").unwrap();
        kv.set("a", "k2", b"2").unwrap();
        kv.set("b", "k1", b"other").unwrap();
        assert_eq!(kv.get("a", "k1").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(kv.list("a", "k", 10).unwrap(), vec!["k1", "k2"]);
        assert_eq!(kv.list("a", "k", 1).unwrap(), vec!["k1"]);
        assert_eq!(kv.count("b").unwrap(), 1);
        kv.delete("a", "k1").unwrap();
        assert_eq!(kv.get("a", "k1").unwrap(), None);
        assert_eq!(kv.get("b", "k1").unwrap().as_deref(), Some(&b"other"[..]));
    }
}
