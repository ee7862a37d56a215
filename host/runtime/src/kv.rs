//! Plugin kv backed by the store, so a plugin's state survives restarts with its runs. The
//! sandbox's kv interface is synchronous (it is called from inside a guest's host call); this
//! adapter blocks the current worker in place, which needs tokio's multi-threaded runtime.

use std::future::Future;
use std::sync::Arc;

use tollgate_sandbox::kv::KvStore;
use tollgate_store::Store;

/// A [`KvStore`] over a [`Store`].
pub struct StoreKv {
    store: Arc<dyn Store>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for StoreKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKv")
    }
}

impl StoreKv {
    /// Must be called inside a multi-threaded tokio runtime.
    pub fn new(store: Arc<dyn Store>) -> StoreKv {
        StoreKv { store, handle: tokio::runtime::Handle::current() }
    }

    fn block<T>(&self, f: impl Future<Output = Result<T, tollgate_store::StoreError>>) -> Result<T, String> {
        tokio::task::block_in_place(|| self.handle.block_on(f)).map_err(|e| e.to_string())
    }
}

impl KvStore for StoreKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.block(self.store.kv_get(ns, key))
    }
    fn set(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.block(self.store.kv_set(ns, key, value))
    }
    fn delete(&self, ns: &str, key: &str) -> Result<(), String> {
        self.block(self.store.kv_delete(ns, key))
    }
    fn list(&self, ns: &str, prefix: &str, limit: usize) -> Result<Vec<String>, String> {
        self.block(self.store.kv_list(ns, prefix, limit.min(u32::MAX as usize) as u32))
    }
    fn count(&self, ns: &str) -> Result<usize, String> {
        self.block(self.store.kv_count(ns)).map(|n| n as usize)
    }
}
