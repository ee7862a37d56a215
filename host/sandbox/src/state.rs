//! The per-call store state: one [`CallState`] per `Store`, holding the neutered WASI context,
//! the egress gate, the capped stdio pipes, the memory limiter and the host side of the
//! `log`, `kv` and `secrets` capabilities. It is the single "view" that threads host state
//! through every linked interface.
//!
//! A store normally lives for one call. A warm instance's store lives for several
//! ([`crate::WarmInstances`]): [`CallState::begin_call`] then resets everything that belongs to
//! one call — the deadline and credentials egress uses, the egress log and counters, logs,
//! captured stdio, secrets read, kv counts, the memory limiter's `refused` flag — and keeps
//! what belongs to the instance: the WASI context and resource table (the guest holds handles
//! into them), and the memory the instance has grown (its peak, and the limit, are per instance).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tollgate_contract::{Limits, SecretSource};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::tollgate::plugin::{kv, log, secrets};
use crate::egress::{EgressCaps, EgressHooks, EgressLog, EgressPolicy};
use crate::kv::{KvStore, MAX_KEY_BYTES};
use crate::limits::clip_text;
use crate::pipe::CallPipe;
use crate::redact::Redactor;
use crate::report::LogRecord;

/// Live resource handles (streams, pollables, header maps, …) one call may hold.
const MAX_RESOURCES: usize = 4096;
/// Size of one header map a guest may build.
const MAX_HEADER_BYTES: usize = 32 << 10;
/// Longest secret name, and how many distinct secrets one call may read.
const MAX_SECRET_NAME: usize = 128;
const MAX_SECRET_READS: usize = 64;

/// Linear-memory limiter that also records the peak and whether a grow was refused (so a
/// resulting trap, or a tool error from a guest that caught its allocation failure, can be
/// reported as a memory limit rather than a generic trap or the guest's vague error).
pub(crate) struct MemoryLimiter {
    inner: StoreLimits,
    current: usize,
    pub peak: usize,
    pub refused: bool,
}

impl MemoryLimiter {
    fn new(limits: &Limits) -> Self {
        MemoryLimiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(limits.instances)
                .tables(limits.tables)
                .memories(limits.memories)
                .table_elements(limits.table_elements)
                .build(),
            current: 0,
            peak: 0,
            refused: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if ok {
            self.current += desired.saturating_sub(current);
            self.peak = self.peak.max(self.current);
        } else {
            self.refused = true;
        }
        Ok(ok)
    }
    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// What a call's capabilities need from the plugin, shared by all its calls.
pub(crate) struct PluginScope {
    /// Chosen by the operator (or the component digest), never by the plugin itself: a plugin
    /// cannot name its way into another plugin's keys.
    pub kv_namespace: String,
    pub kv: Arc<dyn KvStore>,
    pub secrets: BTreeMap<String, SecretSource>,
    pub egress: Arc<EgressPolicy>,
}

pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    pub egress: EgressHooks,
    pub limiter: MemoryLimiter,
    pub stdout: CallPipe,
    pub stderr: CallPipe,
    scope: Arc<PluginScope>,
    limits: Limits,
    pub logs: Vec<LogRecord>,
    pub logs_dropped: usize,
    pub secrets_read: Vec<String>,
    /// Secret values handed to the guest, for redaction.
    pub secret_values: Vec<(String, String)>,
    pub kv_ops: usize,
}

impl CallState {
    pub fn new(
        scope: Arc<PluginScope>,
        limits: &Limits,
        deadline: Instant,
        credential_values: Arc<BTreeMap<String, Result<String, String>>>,
    ) -> CallState {
        let stdout = CallPipe::new(limits.stdio_bytes);
        let stderr = CallPipe::new(limits.stdio_bytes);
        // Deny by default, spelled out: nothing from the host process reaches the guest.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(64 << 10)
            .build();
        let caps = EgressCaps {
            max_requests: limits.http_requests,
            max_request_bytes: limits.http_request_bytes,
            max_response_bytes: limits.http_response_bytes,
        };
        let egress = EgressHooks {
            policy: scope.egress.clone(),
            caps,
            deadline,
            log: EgressLog::default(),
            redactor: Redactor::for_credentials(&credential_values),
            scrubbed: Arc::default(),
            credential_values,
            requests: 0,
            dropped: 0,
            idempotency_key: String::new(),
            tool: String::new(),
        };
        // wasmtime's defaults (1M table entries, 128 KiB per header map) would let a guest
        // make the host allocate gigabytes through cheap calls such as `fields.clone`.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HEADER_BYTES);
        CallState {
            wasi,
            table,
            http,
            egress,
            limiter: MemoryLimiter::new(limits),
            stdout,
            stderr,
            scope,
            limits: limits.clone(),
            logs: Vec::new(),
            logs_dropped: 0,
            secrets_read: Vec::new(),
            secret_values: Vec::new(),
            kv_ops: 0,
        }
    }
}

impl CallState {
    /// Starts another call on this state's (reused) instance: everything the report and the
    /// gates count per call starts again from nothing, under the new call's deadline and
    /// credential values.
    pub fn begin_call(&mut self, deadline: Instant, credential_values: Arc<BTreeMap<String, Result<String, String>>>) {
        let e = &mut self.egress;
        e.deadline = deadline;
        e.redactor = Redactor::for_credentials(&credential_values);
        // A new set, like the log: a response the previous call left unread keeps the old one.
        e.scrubbed = Arc::default();
        e.credential_values = credential_values;
        // A new log, not an emptied one: a request the previous call left in flight still
        // holds a handle into the old log, and must not write into this call's records.
        e.log = EgressLog::default();
        e.requests = 0;
        e.dropped = 0;
        self.limiter.refused = false;
        self.logs.clear();
        self.logs_dropped = 0;
        self.secrets_read.clear();
        self.secret_values.clear();
        self.kv_ops = 0;
        self.stdout.take();
        self.stderr.take();
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

/// Adds the host side of `wit/plugin.wit`'s imports (`log`, `kv`, `secrets`, `types`) to the
/// sandbox's linker, implemented by [`CallState`] below.
pub(crate) fn add_plugin_interfaces(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    crate::bindings::PluginCore::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

impl crate::bindings::tollgate::plugin::types::Host for CallState {}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String, fields: String) {
        if self.logs.len() >= self.limits.log_lines {
            self.logs_dropped += 1;
            return;
        }
        let cap = self.limits.log_line_bytes;
        // Redacted before clipped: a secret cut at the cap would escape the redactor.
        let redactor = &self.egress.redactor;
        let message = clip_text(redactor.text(&message), cap);
        let fields = if fields.trim().is_empty() {
            serde_json::Value::Null
        } else if fields.len() > cap {
            serde_json::Value::String(format!(
                "<{} bytes of fields dropped: over the {cap}-byte line cap>",
                fields.len()
            ))
        } else {
            let mut value = serde_json::from_str(&fields).unwrap_or(serde_json::Value::String(fields));
            redactor.json(&mut value);
            value
        };
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.logs.push(LogRecord { level: level.into(), message, fields });
    }
}

impl CallState {
    fn kv_key(&self, key: &str) -> Result<(), kv::KvError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(kv::KvError::TooLarge(format!("keys must be 1 to {MAX_KEY_BYTES} bytes")));
        }
        Ok(())
    }
}

impl kv::Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::KvError> {
        self.kv_ops += 1;
        self.kv_key(&key)?;
        self.scope.kv.get(&self.scope.kv_namespace, &key).map_err(kv::KvError::Unavailable)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        self.kv_ops += 1;
        self.kv_key(&key)?;
        if value.len() > self.limits.kv_value_bytes {
            return Err(kv::KvError::TooLarge(format!(
                "value is {} bytes, over the {}-byte limit",
                value.len(),
                self.limits.kv_value_bytes
            )));
        }
        let store = &self.scope.kv;
        let exists = store.get(&self.scope.kv_namespace, &key).map_err(kv::KvError::Unavailable)?.is_some();
        if !exists && store.count(&self.scope.kv_namespace).map_err(kv::KvError::Unavailable)? >= self.limits.kv_keys {
            return Err(kv::KvError::TooLarge(format!("store is full ({} keys)", self.limits.kv_keys)));
        }
        store.set(&self.scope.kv_namespace, &key, &value).map_err(kv::KvError::Unavailable)
    }

    async fn delete(&mut self, key: String) -> Result<(), kv::KvError> {
        self.kv_ops += 1;
        self.kv_key(&key)?;
        self.scope.kv.delete(&self.scope.kv_namespace, &key).map_err(kv::KvError::Unavailable)
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, kv::KvError> {
        self.kv_ops += 1;
        let limit = (limit as usize).min(self.limits.kv_keys);
        self.scope.kv.list(&self.scope.kv_namespace, &prefix, limit).map_err(kv::KvError::Unavailable)
    }
}

impl secrets::Host for CallState {
    async fn get(&mut self, name: String) -> Result<String, secrets::SecretError> {
        if name.len() > MAX_SECRET_NAME {
            return Err(secrets::SecretError::NotGranted(format!("secret names are at most {MAX_SECRET_NAME} bytes")));
        }
        if !self.secrets_read.contains(&name) {
            if self.secrets_read.len() >= MAX_SECRET_READS {
                return Err(secrets::SecretError::Unavailable(format!("at most {MAX_SECRET_READS} secrets per call")));
            }
            self.secrets_read.push(name.clone());
        }
        let Some(source) = self.scope.secrets.get(&name) else {
            return Err(secrets::SecretError::NotGranted(format!("secret `{name}` is not granted to this plugin")));
        };
        match source.read() {
            Ok(value) => {
                if !self.secret_values.iter().any(|(n, _)| *n == name) {
                    self.egress.redactor.add(&name, &value);
                    self.secret_values.push((name, value.clone()));
                }
                Ok(value)
            }
            Err(why) => Err(secrets::SecretError::Unavailable(why.to_string())),
        }
    }
}
