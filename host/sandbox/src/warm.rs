//! Warm instances: an explicit, opt-in mode in which the calls of one run reuse a plugin's
//! instances instead of instantiating a fresh one per call.
//!
//! Why: for components with a heavy start-up (a Python interpreter from componentize-py runs its
//! dynamic-linking initialisation on every instantiation), instantiation dominates a trivial
//! call. Reusing the instance skips it.
//!
//! What stays per call on a reused instance — every limit and everything in the report:
//! - fuel is refilled to the limit before each call; the timeout is a new deadline per call
//!   (the epoch deadline, the deadline on host waits, and the one egress uses);
//! - input and output size caps and schema checks are unchanged;
//! - the report holds only what this call did: egress records, logs, stdout and stderr, secrets
//!   read, kv operations, fuel; `memory_refused` is about this call only;
//! - credential values are read at each call (rotation works) and added to its redactor; the
//!   guest gets this call's context (run id, call id, idempotency key);
//! - secret values an earlier call on the instance read are redacted from this call too: the
//!   guest may have kept them.
//!
//! What is per instance: linear memory. A call's growth stays (wasm memory does not shrink), the
//! memory limit bounds the instance, and `peak_memory_bytes` is the instance's peak.
//!
//! When an instance is kept: only after a call in which the guest returned normally — output
//! the host accepted, or a tool error of the guest's own. After a trap, running out of fuel or
//! time, a stack overflow, a refused memory grow (even one the guest recovered from), output
//! the host refused, or any host-side failure, the instance is dropped, and the next call
//! instantiates fresh. A call whose future is dropped (cancelled) drops its instance too: an
//! instance is out of the idle set for the whole of a call.
//!
//! Isolation: what one call leaves in guest memory (globals, caches, module state) is visible
//! to the later calls of the same set. A set belongs to one plugin, with one set of grants;
//! the runtime makes one per run and drops it when the run stops advancing, so nothing
//! crosses runs or plugins. Instances of a set are created on demand: concurrent calls each
//! take their own, so the set holds as many idle instances as the run's highest concurrency,
//! and each holds a slot of the sandbox's instance pool until the set is dropped.
//!
//! See `docs/plugins/instances.md` for when to choose this mode.

use std::sync::{Mutex, MutexGuard};

use wasmtime::Store;

use crate::call::{CallContext, CallOutcome, Instance};
use crate::plugin::Plugin;
use crate::state::CallState;

/// An instance between two calls, with the store it lives in.
pub(crate) struct Warm {
    pub store: Store<CallState>,
    pub instance: Instance,
    /// Every secret value (by name) the instance's calls read: later calls are redacted of them.
    pub secrets_seen: Vec<(String, String)>,
}

/// The idle instances of one set.
#[derive(Default)]
pub(crate) struct Idle(Mutex<Vec<Warm>>);

impl Idle {
    fn lock(&self) -> MutexGuard<'_, Vec<Warm>> {
        // Nothing panics while holding the lock; a poisoned list is still a valid list.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes an idle instance, if there is one: the caller owns it for the whole call.
    pub fn take(&self) -> Option<Warm> {
        self.lock().pop()
    }

    /// Gives back an instance fit for another call.
    pub fn put(&self, warm: Warm) {
        self.lock().push(warm);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Instances of one plugin kept for reuse by the calls of one run. Created empty by
/// [`Plugin::warm_instances`]; instances are made by calls and dropped with the set. Send and
/// Sync: calls may run concurrently, each on its own instance.
pub struct WarmInstances {
    plugin: Plugin,
    idle: Idle,
}

impl std::fmt::Debug for WarmInstances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmInstances").field("plugin", &self.plugin).field("idle", &self.idle()).finish()
    }
}

impl Plugin {
    /// An empty set of warm instances for this plugin (nothing is instantiated until a call).
    pub fn warm_instances(&self) -> WarmInstances {
        WarmInstances { plugin: self.clone(), idle: Idle::default() }
    }
}

impl WarmInstances {
    /// Like [`Plugin::call`], on an idle instance left by an earlier call of this set when
    /// there is one, else on a fresh one. Calls may run concurrently (each takes its own
    /// instance). The report's `reused_instance` says which it was.
    pub async fn call(&self, tool: &str, input: &str, ctx: &CallContext) -> CallOutcome {
        self.plugin.run(tool, input, ctx, Some(&self.idle)).await
    }

    /// Instances currently idle (for tests and reports).
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// The plugin the set belongs to.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<WarmInstances>();
    }
}
