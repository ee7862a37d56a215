//! The [`Sandbox`]: one wasmtime engine, one linker, one epoch ticker, shared by every plugin
//! it loads. Lifecycle (after Spin's factors): link everything once here; resolve each
//! plugin's grants at load ([`crate::Plugin`]); create cheap per-call state per call.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tollgate_contract::limits::MAX_MEMORY_BYTES;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::isolate::CompileIsolation;
use crate::kv::{KvStore, MemoryKv};
use crate::precheck::CompileLimits;
use crate::state::{self, CallState};

/// Host-wide settings. Defaults:
///
/// | field | default |
/// |---|---|
/// | `cache_dir` | `None` (compile every load) |
/// | `cache_key` | `None`: `<cache_dir>.key`, beside the cache directory |
/// | `max_wasm_stack` | 512 KiB |
/// | `max_concurrent_instances` | 256 (pooling allocator slots) |
/// | `epoch_tick` | 10 ms (timeout granularity) |
/// | `pooling` | `true` |
/// | `compile` | [`CompileLimits::default`]: what a component may contain to be compiled |
/// | `compile_isolation` | `None`: compile in this process (see [`CompileIsolation`]) |
///
/// Not configurable: after each call a pool slot's dirty pages are reset in place, or, on a
/// host with swap on, every page is discarded (see `slot_reset`).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The compilation cache's directory (see `cache`).
    pub cache_dir: Option<PathBuf>,
    /// The file holding the key that seals cache entries, created if missing. Must be outside
    /// `cache_dir` and readable only by the host's user: whoever can read it can forge entries.
    pub cache_key: Option<PathBuf>,
    pub max_wasm_stack: usize,
    pub max_concurrent_instances: u32,
    pub epoch_tick: Duration,
    pub pooling: bool,
    /// Checked before compiling a component that is not in the cache.
    pub compile: CompileLimits,
    /// Compile components in a child process under CPU-time and memory limits.
    pub compile_isolation: Option<CompileIsolation>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: None,
            cache_key: None,
            max_wasm_stack: 512 << 10,
            max_concurrent_instances: 256,
            epoch_tick: Duration::from_millis(10),
            pooling: true,
            compile: CompileLimits::default(),
            compile_isolation: None,
        }
    }
}

/// Why the sandbox could not start (bad host configuration).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the sandbox: {0}")]
pub struct SandboxError(String);

pub(crate) struct SandboxInner {
    pub engine: Engine,
    pub linker: Linker<CallState>,
    pub config: SandboxConfig,
    pub kv: Arc<dyn KvStore>,
    ticker: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Drop for SandboxInner {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// Loads and runs plugins. Cheap to clone; all clones share the engine.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<SandboxInner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("config", &self.inner.config).finish()
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        Self::with_kv(config, Arc::new(MemoryKv::default()))
    }

    /// A sandbox whose plugins' kv capability is backed by `kv`.
    pub fn with_kv(config: SandboxConfig, kv: Arc<dyn KvStore>) -> Result<Sandbox, SandboxError> {
        let err = |e: wasmtime::Error| SandboxError(format!("{e:#}"));
        let mut cfg = compile_config(config.max_wasm_stack);
        if config.pooling {
            let n = config.max_concurrent_instances;
            let mut pool = PoolingAllocationConfig::default();
            // Python components hold ~14 core instances and several memories each.
            pool.total_component_instances(n)
                .total_core_instances(n * 20)
                .total_memories(n * 4)
                .total_tables(n * 20)
                .max_core_instances_per_component(64)
                .max_memories_per_component(16)
                .max_tables_per_component(64)
                .max_memory_size(MAX_MEMORY_BYTES)
                .table_elements(50_000)
                .max_component_instance_size(8 << 20)
                .max_core_instance_size(8 << 20);
            let reset = slot_reset(swap_in_use());
            pool.linear_memory_keep_resident(reset.keep_resident)
                .table_keep_resident(reset.keep_resident.min(1 << 20))
                .pagemap_scan(reset.pagemap_scan);
            cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&cfg).map_err(err)?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(err)?;
        state::add_plugin_interfaces(&mut linker).map_err(err)?;

        let stop = Arc::new(AtomicBool::new(false));
        let (e, s, tick) = (engine.clone(), stop.clone(), config.epoch_tick);
        let handle = std::thread::Builder::new()
            .name("tollgate-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    e.increment_epoch();
                }
            })
            .map_err(|e| SandboxError(format!("epoch thread: {e}")))?;
        Ok(Sandbox { inner: Arc::new(SandboxInner { engine, linker, config, kv, ticker: Some((stop, handle)) }) })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// The engine, for benchmarks that measure the bare floor next to the sandbox.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

/// Every engine setting that shapes compiled code: the sandbox's engine and the compile child
/// ([`crate::isolate`]) build theirs from this, so the child's artifacts load in the parent.
/// (The allocation strategy is not among them: pooling changes no compiled code.)
pub(crate) fn compile_config(max_wasm_stack: usize) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(max_wasm_stack)
        // No toolchain we support emits GC types; off means less attack surface.
        .wasm_gc(false);
    cfg
}

/// How the instance pool returns a slot to its initial state after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotReset {
    keep_resident: usize,
    pagemap_scan: wasmtime::Enabled,
}

/// In place where that is safe; by discarding every page where swap is on.
///
/// In place: the dirty pages a `PAGEMAP_SCAN` finds are copied back from the image and stay
/// resident, instead of `madvise(DONTNEED)` on every call (on a VM each madvise is a cross-CPU
/// shootdown, which made 2 threads slower than 1; BENCHMARKS.md).
///
/// With swap: wasmtime 48's scan only matches dirty pages that are *present*. A dirty page the
/// kernel swapped out is neither reset nor discarded, so the next instance in the slot would
/// read what the previous call left there (reported upstream as part of wasmtime PR #14357).
/// Discarding every page is never stale, at a cost (Python p50 1.3 → 1.5–1.9 ms).
fn slot_reset(swap: bool) -> SlotReset {
    if swap {
        SlotReset { keep_resident: 0, pagemap_scan: wasmtime::Enabled::No }
    } else {
        SlotReset { keep_resident: 8 << 20, pagemap_scan: wasmtime::Enabled::Auto }
    }
}

/// Whether this host has swap on (`/proc/swaps` lists a device). When that cannot be read on
/// Linux, assume it is: the safe reset only costs time.
fn swap_in_use() -> bool {
    if !cfg!(target_os = "linux") {
        // No PAGEMAP_SCAN elsewhere: the pool already discards pages.
        return false;
    }
    std::fs::read_to_string("/proc/swaps").map(|text| swap_devices(&text) > 0).unwrap_or(true)
}

/// Swap devices in `/proc/swaps` text (a header line, then one line per device).
fn swap_devices(text: &str) -> usize {
    text.lines().skip(1).filter(|line| !line.trim().is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_devices_are_the_lines_after_the_header() {
        let none = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert_eq!(swap_devices(none), 0);
        let zram = format!("{none}/dev/zram0                              partition\t8388604\t\t0\t\t100\n");
        assert_eq!(swap_devices(&zram), 1);
        assert_eq!(swap_devices(""), 0);
    }

    #[test]
    fn slots_are_reset_in_place_only_without_swap() {
        assert_eq!(slot_reset(false).pagemap_scan, wasmtime::Enabled::Auto);
        let with_swap = slot_reset(true);
        assert_eq!((with_swap.keep_resident, with_swap.pagemap_scan), (0, wasmtime::Enabled::No));
    }
}
