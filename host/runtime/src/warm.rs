//! Warm plugin instances for the runs this process is advancing: the plugins a workflow marks
//! `instances = "per-run"` serve a run's calls from a [`WarmInstances`] set that lives while
//! [`Runtime::advance`](crate::Runtime::advance) works on that run and is dropped when it stops
//! (the run ends, waits for approval, hits a bound, or the call fails). So instances are never
//! shared between runs, and a run resumed later, here or in another process, starts fresh.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tollgate_sandbox::{Plugin, WarmInstances};

/// Run id → plugin name → its warm set.
#[derive(Default)]
pub(crate) struct WarmSets {
    sets: Mutex<BTreeMap<String, BTreeMap<String, Arc<WarmInstances>>>>,
}

impl WarmSets {
    /// The warm set of `plugin` (named `name` in the workflow) for `run_id`, created on first use.
    pub(crate) fn get(&self, run_id: &str, name: &str, plugin: &Plugin) -> Arc<WarmInstances> {
        let mut sets = self.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let run = sets.entry(run_id.to_string()).or_default();
        run.entry(name.to_string()).or_insert_with(|| Arc::new(plugin.warm_instances())).clone()
    }

    /// Holds `run_id`'s warm sets until the guard drops, then drops them.
    pub(crate) fn advancing<'a>(&'a self, run_id: &'a str) -> Advancing<'a> {
        Advancing { sets: self, run_id }
    }
}

/// Drops a run's warm sets when [`Runtime::advance`](crate::Runtime::advance) returns, however it returns.
pub(crate) struct Advancing<'a> {
    sets: &'a WarmSets,
    run_id: &'a str,
}

impl Drop for Advancing<'_> {
    fn drop(&mut self) {
        let mut sets = self.sets.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sets.remove(self.run_id);
    }
}
