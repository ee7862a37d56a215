//! One sandboxed call: validate input → a store and instance under the plugin's limits (fresh,
//! or a warm one from [`crate::WarmInstances`], reset for this call) → run with fuel, an epoch
//! deadline and a wall-clock deadline on host waits → classify what happened into a typed
//! result → validate and redact output → the [`CallReport`]. A plain component's call differs
//! only in the middle: arguments converted from the input, one export called dynamically
//! ([`crate::plain`]). Fresh and warm calls share every step; they differ only in where the
//! instance comes from and whether it is kept afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tollgate_contract::Limits;
use wasmtime::component::{InstancePre, Val};
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::PluginCoreIndices;
use crate::bindings::exports::tollgate::plugin::tool::{CallContext as WitContext, ToolError as WitToolError};
use crate::bindings::requests::{PluginRequestsIndices, exports::tollgate::plugin::requests::ToolRequests};
use crate::bindings::tollgate::plugin::types::Manifest as WitManifest;
use crate::engine::Sandbox;
use crate::error::{CallError, ToolError};
use crate::limits::clip_text;
use crate::plain;
use crate::plugin::{Kind, Plugin};
use crate::redact::Redactor;
use crate::report::CallReport;
use crate::schema::CheckError;
use crate::state::{CallState, PluginScope};
use crate::warm::{Idle, Warm};

/// Identifies a call; the idempotency key must be stable across retries of the same call.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallContext {
    pub run_id: String,
    pub call_id: String,
    pub idempotency_key: String,
}

/// The result of a call and its report. The report exists whatever the result.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub result: Result<serde_json::Value, CallError>,
    pub report: CallReport,
}

/// The executor-side deadline, shared by instantiation and the call: a little after the epoch
/// deadline, so that a guest running code is stopped by the epoch callback (a clean trap, with
/// fuel accounted), and only a guest blocked in a host wait (HTTP, clocks) is stopped by
/// dropping its future.
pub(crate) fn wait_until(deadline: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(deadline + std::time::Duration::from_millis(50))
}

fn new_store(sandbox: &Sandbox, state: CallState, limits: &Limits, deadline: Instant) -> Store<CallState> {
    let mut store = Store::new(&sandbox.inner.engine, state);
    store.limiter(|s| &mut s.limiter);
    arm(&mut store, limits, deadline);
    store
}

/// Gives the store a full tank of fuel and this call's epoch deadline: done for every call,
/// so a reused store starts each call with the same budget as a fresh one.
fn arm(store: &mut Store<CallState>, limits: &Limits, deadline: Instant) {
    // Fuel metering is always on in this engine, so setting fuel cannot fail.
    let _ = store.set_fuel(limits.fuel);
    // Each epoch tick: past the deadline, stop; otherwise yield to the executor so that one
    // busy guest cannot starve other calls on the same thread.
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline { Err(Trap::Interrupt.into()) } else { Ok(UpdateDeadline::Yield(1)) }
    });
    store.set_epoch_deadline(1);
}

/// The result of a guest future run under [`wait_until`], in the call's terms.
pub(crate) fn settle<T>(
    r: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    store: &Store<CallState>,
    limits: &Limits,
    instantiating: bool,
) -> Result<T, CallError> {
    match r {
        Err(_) => Err(CallError::Timeout { limit: limits.timeout }),
        Ok(Err(e)) => Err(classify(e, store, limits, instantiating)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Turns a wasmtime error into the precise [`CallError`].
pub(crate) fn classify(
    err: wasmtime::Error,
    store: &Store<CallState>,
    limits: &Limits,
    instantiating: bool,
) -> CallError {
    let state = store.data();
    if let Some(trap) = err.downcast_ref::<Trap>() {
        match trap {
            Trap::OutOfFuel => return CallError::FuelExhausted { limit: limits.fuel },
            Trap::StackOverflow => return CallError::StackOverflow,
            Trap::Interrupt => return CallError::Timeout { limit: limits.timeout },
            _ if state.limiter.refused => return CallError::MemoryLimit { limit: limits.memory_bytes },
            _ => {}
        }
    }
    if state.limiter.refused {
        return CallError::MemoryLimit { limit: limits.memory_bytes };
    }
    // Only a full instance pool is the host's capacity (retryable); anything else failing during
    // instantiation is the guest's own doing (its start function, its own limits).
    if instantiating && format!("{err:#}").contains("maximum concurrent") {
        return CallError::Capacity { message: format!("{err:#}") };
    }
    let backtrace =
        err.downcast_ref::<wasmtime::WasmBacktrace>().map(|b| b.to_string()).filter(|b| !b.trim().is_empty());
    let mut message = match err.downcast_ref::<Trap>() {
        Some(t) => t.to_string(),
        None => format!("{:#}", err),
    };
    // A Rust panic prints its message to stderr before trapping: surface it.
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).to_string();
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
        let detail = lines.get(i + 1).filter(|l| !l.starts_with("note:")).map(|l| format!(" {l}")).unwrap_or_default();
        message = format!("{message} (guest {}{detail})", lines[i].trim_start_matches("thread '<unnamed>' (1) "));
    }
    CallError::Trap { message, backtrace }
}

/// A Tollgate plugin's component, pre-instantiated against the sandbox's linker, with the
/// export indices of its `tool` interface and, when it has one (contract 0.1.1), its `requests`
/// interface. Wraps the generated types so that only this module and the bindings name them.
pub(crate) struct TollgatePre {
    pre: InstancePre<CallState>,
    core: PluginCoreIndices,
    requests: Option<PluginRequestsIndices>,
}

impl TollgatePre {
    /// Fails when the component does not export `tollgate:plugin/tool` as the contract says.
    /// A `requests` export of the wrong shape fails too: declared scopes are never dropped.
    pub(crate) fn new(pre: InstancePre<CallState>) -> wasmtime::Result<TollgatePre> {
        let core = PluginCoreIndices::new(&pre)?;
        let requests = if exports_requests(pre.component(), pre.engine()) {
            Some(PluginRequestsIndices::new(&pre)?)
        } else {
            None
        };
        Ok(TollgatePre { pre, core, requests })
    }
}

/// Whether the component exports the contract's `requests` interface, at any version.
fn exports_requests(component: &wasmtime::component::Component, engine: &wasmtime::Engine) -> bool {
    component.component_type().exports(engine).any(|(name, _)| name.split('@').next() == Some(REQUESTS_INTERFACE))
}

/// The optional export of contract 0.1.1, unversioned.
const REQUESTS_INTERFACE: &str = "tollgate:plugin/requests";

/// A live instance of either kind of component.
pub(crate) enum Instance {
    Tollgate(crate::bindings::PluginCore),
    Plain(wasmtime::component::Instance),
}

/// Instantiates a fresh Tollgate plugin in `store` under the call's deadline.
async fn instantiate(
    pre: &TollgatePre,
    store: &mut Store<CallState>,
    limits: &Limits,
    deadline: Instant,
) -> Result<crate::bindings::PluginCore, CallError> {
    let instantiated = tokio::time::timeout_at(wait_until(deadline), pre.pre.instantiate_async(&mut *store)).await;
    let instance = settle(instantiated, store, limits, true)?;
    pre.core.load(&mut *store, &instance).map_err(|e| classify(e, store, limits, true))
}

async fn instantiate_kind(
    kind: &Kind,
    store: &mut Store<CallState>,
    limits: &Limits,
    deadline: Instant,
) -> Result<Instance, CallError> {
    match kind {
        Kind::Tollgate(pre) => instantiate(pre, store, limits, deadline).await.map(Instance::Tollgate),
        Kind::Plain(exports, _) => plain::instantiate(exports, store, limits, deadline).await.map(Instance::Plain),
    }
}

/// What the guest is called with: the JSON text and context, or a plain export's arguments.
enum Invocation<'a> {
    Tollgate { input: &'a str, ctx: WitContext },
    Plain(Vec<Val>),
}

/// Runs `tool` on `instance`; returns the guest's output text or its failure.
async fn invoke(
    kind: &Kind,
    instance: &Instance,
    store: &mut Store<CallState>,
    tool: &str,
    invocation: Invocation<'_>,
    limits: &Limits,
    deadline: Instant,
) -> Result<String, CallError> {
    match (kind, instance, invocation) {
        (Kind::Tollgate(_), Instance::Tollgate(i), Invocation::Tollgate { input, ctx }) => {
            let call = i.tollgate_plugin_tool().call_call(&mut *store, tool, input, &ctx);
            match settle(tokio::time::timeout_at(wait_until(deadline), call).await, store, limits, false)? {
                Err(tool_error) => Err(CallError::Tool(tool_error.into())),
                Ok(output) => Ok(output),
            }
        }
        (Kind::Plain(exports, _), Instance::Plain(i), Invocation::Plain(args)) => {
            plain::invoke(exports, i, tool, args, store, limits, deadline).await
        }
        // Instances are only ever made from their own plugin's kind.
        _ => Err(CallError::Trap { message: "instance of the wrong kind for this plugin".into(), backtrace: None }),
    }
}

/// Calls `manifest()` on a fresh instance under `limits`.
pub(crate) async fn fetch_manifest(
    sandbox: &Sandbox,
    pre: &TollgatePre,
    scope: Arc<PluginScope>,
    limits: &Limits,
) -> Result<(WitManifest, Option<Vec<ToolRequests>>), CallError> {
    let deadline = Instant::now() + limits.timeout;
    let state = CallState::new(scope, limits, deadline, Arc::new(BTreeMap::new()));
    let mut store = new_store(sandbox, state, limits, deadline);
    let instantiated = tokio::time::timeout_at(wait_until(deadline), pre.pre.instantiate_async(&mut store)).await;
    let instance = settle(instantiated, &store, limits, true)?;
    let core = pre.core.load(&mut store, &instance).map_err(|e| classify(e, &store, limits, true))?;
    let called =
        tokio::time::timeout_at(wait_until(deadline), core.tollgate_plugin_tool().call_manifest(&mut store)).await;
    let manifest = settle(called, &store, limits, false)?;
    // Both reads share the instance and the one deadline and fuel budget.
    let Some(indices) = &pre.requests else { return Ok((manifest, None)) };
    let requests = indices.load(&mut store, &instance).map_err(|e| classify(e, &store, limits, true))?;
    let called =
        tokio::time::timeout_at(wait_until(deadline), requests.tollgate_plugin_requests().call_declared(&mut store))
            .await;
    Ok((manifest, Some(settle(called, &store, limits, false)?)))
}

/// Longest message a plugin's tool error may carry into results and reports. The message is
/// clipped once the call's redactor has seen it (in [`Plugin::run`]), not when it is converted.
pub(crate) const MAX_TOOL_ERROR: usize = 8 << 10;

impl From<WitToolError> for ToolError {
    fn from(e: WitToolError) -> ToolError {
        match e {
            WitToolError::InvalidInput(message) => ToolError::InvalidInput { message },
            WitToolError::Denied(message) => ToolError::Denied { message },
            WitToolError::NotFound(message) => ToolError::NotFound { message },
            WitToolError::Upstream(u) => ToolError::Upstream { status: u.status, message: u.message },
            WitToolError::Retryable(message) => ToolError::Retryable { message },
            WitToolError::Internal(message) => ToolError::Internal { message },
        }
    }
}

impl Plugin {
    /// Runs `tool` with `input` (JSON text). Never panics on guest behaviour; every failure is
    /// a typed [`CallError`], and the report is filled in either way.
    pub async fn call(&self, tool: &str, input: &str, ctx: &CallContext) -> CallOutcome {
        self.run(tool, input, ctx, None).await
    }

    /// The call, fresh or warm: with `warm`, an idle instance from it is reused when there is
    /// one, and the instance goes back to it after a call that leaves it fit for reuse.
    pub(crate) async fn run(&self, tool: &str, input: &str, ctx: &CallContext, warm: Option<&Idle>) -> CallOutcome {
        let started = Instant::now();
        let p = &self.inner;
        let limits = &p.grants.limits;
        let mut report = CallReport {
            plugin: p.manifest.name.clone(),
            plugin_version: p.manifest.version.clone(),
            digest: p.digest.clone(),
            tool: tool.to_string(),
            call_id: ctx.call_id.clone(),
            fuel_limit: limits.fuel,
            ..CallReport::default()
        };
        let mut redactor = Redactor::default();
        let result = self.call_inner(tool, input, ctx, &mut report, &mut redactor, warm).await;
        let result = result.map(|mut v| {
            redactor.json(&mut v);
            v
        });
        // Redacted, then clipped: the other order lets a secret cut at the boundary escape.
        let result = result.map_err(|mut e| {
            e.map_text(&|s| redactor.text(s));
            e.clip_tool_message(MAX_TOOL_ERROR);
            e
        });
        report.outcome = match &result {
            Ok(_) => "ok".into(),
            Err(e) => e.kind().into(),
        };
        report.error = result.as_ref().err().map(|e| e.to_string());
        report.duration_us = started.elapsed().as_micros() as u64;
        CallOutcome { result, report }
    }

    async fn call_inner(
        &self,
        tool: &str,
        input: &str,
        ctx: &CallContext,
        report: &mut CallReport,
        redactor: &mut Redactor,
        warm: Option<&Idle>,
    ) -> Result<serde_json::Value, CallError> {
        let p = &self.inner;
        let limits = &p.grants.limits;
        let Some((input_schema, output_schema)) = p.schemas.get(tool) else {
            let available = p.manifest.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(CallError::UnknownTool { tool: tool.to_string(), available });
        };
        if input.len() > limits.input_bytes {
            return Err(CallError::InputTooLarge { size: input.len(), limit: limits.input_bytes });
        }
        // The call's deadline starts now: checking the input counts against it.
        let deadline = Instant::now() + limits.timeout;
        let value: Arc<serde_json::Value> =
            Arc::new(serde_json::from_str(input).map_err(|e| CallError::InputNotJson { message: e.to_string() })?);
        match input_schema.check_until(value.clone(), deadline).await {
            Ok(()) => {}
            Err(CheckError::Deadline) => return Err(CallError::Timeout { limit: limits.timeout }),
            Err(CheckError::Invalid(message)) => {
                // The schema decides; for a plain component the conversion says exactly where
                // and what (`input.items[2].qty: expected u8 (0..=255), got 300`) when it can.
                let message = match &*p.kind {
                    Kind::Plain(exports, _) => plain::explain(exports, tool, &value, limits).unwrap_or(message),
                    Kind::Tollgate(_) => message,
                };
                return Err(CallError::InvalidInput { message });
            }
        }
        let invocation = match &*p.kind {
            Kind::Plain(exports, _) => Invocation::Plain(plain::arguments(exports, tool, &value, limits)?),
            Kind::Tollgate(_) => Invocation::Tollgate {
                input,
                ctx: WitContext {
                    run_id: ctx.run_id.clone(),
                    call_id: ctx.call_id.clone(),
                    idempotency_key: ctx.idempotency_key.clone(),
                },
            },
        };

        // Credentials are read now, so rotation takes effect on the next call; every value
        // read is known to the redactor before the guest runs.
        let mut credential_values = BTreeMap::new();
        for binding in &p.scope.egress.credentials {
            if let Some(source) = &binding.source {
                let value = source.read().map_err(|e| e.to_string());
                if let Ok(v) = &value {
                    redactor.add(&binding.name, v);
                }
                credential_values.insert(binding.name.clone(), value);
            }
        }
        let credential_values = Arc::new(credential_values);
        // Secret values earlier calls handed to a reused instance: the guest may still hold
        // them, so this call's output, logs and errors are redacted of them too.
        let (mut store, instance, mut secrets_seen) = match warm.and_then(Idle::take) {
            Some(Warm { mut store, instance, secrets_seen }) => {
                store.data_mut().begin_call(deadline, credential_values);
                arm(&mut store, limits, deadline);
                report.reused_instance = true;
                for (name, value) in &secrets_seen {
                    redactor.add(name, value);
                    store.data_mut().egress.redactor.add(name, value);
                }
                (store, Some(instance), secrets_seen)
            }
            None => {
                let state = CallState::new(p.scope.clone(), limits, deadline, credential_values);
                (new_store(&p.sandbox, state, limits, deadline), None, Vec::new())
            }
        };
        store.data_mut().egress.idempotency_key = ctx.idempotency_key.clone();
        store.data_mut().egress.tool = tool.to_string();
        let instance = match instance {
            Some(instance) => Ok(instance),
            None => instantiate_kind(&p.kind, &mut store, limits, deadline).await,
        };
        let (instance, outcome) = match instance {
            Ok(instance) => {
                let outcome = invoke(&p.kind, &instance, &mut store, tool, invocation, limits, deadline).await;
                (Some(instance), outcome)
            }
            Err(e) => (None, Err(e)),
        };

        let state = store.data_mut();
        for (name, value) in state.secret_values.drain(..) {
            redactor.add(&name, &value);
            if warm.is_some() && !secrets_seen.contains(&(name.clone(), value.clone())) {
                secrets_seen.push((name, value));
            }
        }
        fill_report(report, &mut store, limits, redactor);
        let plain = matches!(*p.kind, Kind::Plain(..));
        let result = finish(outcome, report, limits, plain, redactor, output_schema.as_ref(), deadline).await;
        if let (Some(idle), Some(instance)) = (warm, instance)
            && reusable(&result, report)
        {
            idle.put(Warm { store, instance, secrets_seen });
        }
        result
    }
}

/// Whether the instance a call ran on may serve another call: only after the guest returned
/// normally (output, or a tool error of its own). A trapped instance cannot be entered again;
/// one stopped by a limit, or whose output the host refused, is not trusted to be in a sane
/// state. A grow the memory limit refused counts even when the guest recovered.
fn reusable(result: &Result<serde_json::Value, CallError>, report: &CallReport) -> bool {
    matches!(result, Ok(_) | Err(CallError::Tool(_))) && !report.memory_refused
}

/// The guest's outcome → the call's result: the host's more precise causes first, then the
/// output size, JSON and schema checks.
async fn finish(
    outcome: Result<String, CallError>,
    report: &mut CallReport,
    limits: &Limits,
    plain: bool,
    redactor: &Redactor,
    output_schema: Option<&crate::schema::Schema>,
    deadline: Instant,
) -> Result<serde_json::Value, CallError> {
    let output = attribute(outcome, report, limits, plain, redactor)?;
    if output.len() > limits.output_bytes {
        return Err(CallError::OutputTooLarge { size: output.len(), limit: limits.output_bytes });
    }
    let value: serde_json::Value =
        serde_json::from_str(&output).map_err(|e| CallError::InvalidOutput { message: format!("not JSON: {e}") })?;
    let Some(schema) = output_schema else { return Ok(value) };
    let value = Arc::new(value);
    match schema.check_until(value.clone(), deadline).await {
        Ok(()) => Ok(Arc::unwrap_or_clone(value)),
        Err(CheckError::Deadline) => Err(CallError::Timeout { limit: limits.timeout }),
        Err(CheckError::Invalid(m)) => {
            Err(CallError::InvalidOutput { message: format!("does not match the output schema: {m}") })
        }
    }
}

/// Puts what the host knows above the guest's own account of a failure.
///
/// A guest whose `memory.grow` the limiter refused often catches the failure (CPython's
/// `MemoryError`, a JS engine's "out of memory", Rust's `try_reserve`) and returns a tool error
/// of its own, typically `internal`: the limit is the precise cause, so it is the result, and
/// the guest's words go to the report. A guest that recovered and returned output keeps it
/// (the report still says a grow was refused).
///
/// A plain component's `err` after the gate denied one of its requests is that denial: a
/// plain function has no way to say "denied" itself, and `invalid-input` would tell the model
/// to change its input.
fn attribute(
    outcome: Result<String, CallError>,
    report: &mut CallReport,
    limits: &Limits,
    plain: bool,
    redactor: &Redactor,
) -> Result<String, CallError> {
    match outcome {
        Err(CallError::Tool(own)) if report.memory_refused => {
            report.guest_error = Some(clip_text(redactor.text(&own.to_string()), MAX_TOOL_ERROR));
            Err(CallError::MemoryLimit { limit: limits.memory_bytes })
        }
        Err(CallError::Tool(ToolError::InvalidInput { message }))
            if plain && report.egress.iter().any(|r| r.denied.is_some()) =>
        {
            Err(CallError::Tool(ToolError::Denied { message }))
        }
        other => other,
    }
}

fn fill_report(report: &mut CallReport, store: &mut Store<CallState>, limits: &Limits, redactor: &Redactor) {
    report.fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let state = store.data_mut();
    report.peak_memory_bytes = state.limiter.peak;
    report.memory_refused = state.limiter.refused;
    report.egress = state.egress.log.take();
    report.egress_dropped = state.egress.dropped;
    report.credentials_scrubbed =
        std::mem::take(&mut *state.egress.scrubbed.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
    for r in &mut report.egress {
        r.path = redactor.text(&r.path);
        r.host = redactor.text(&r.host);
        r.method = redactor.text(&r.method);
        r.upstream = r.upstream.as_deref().map(|u| redactor.text(u));
        r.denied = r.denied.as_deref().map(|d| redactor.text(d));
        r.error = r.error.as_deref().map(|d| redactor.text(d));
    }
    report.logs = std::mem::take(&mut state.logs);
    for l in &mut report.logs {
        l.message = redactor.text(&l.message);
        redactor.json(&mut l.fields);
    }
    report.logs_dropped = state.logs_dropped;
    // Taken, not copied: an idle warm instance keeps nothing of the call it served.
    let out = state.stdout.take();
    let err = state.stderr.take();
    report.stdio_truncated = out.len() >= limits.stdio_bytes || err.len() >= limits.stdio_bytes;
    // A full pipe was cut at the cap, possibly inside a secret.
    let redact = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        if bytes.len() >= limits.stdio_bytes { redactor.text_cut(&text) } else { redactor.text(&text) }
    };
    report.stdout = redact(&out);
    report.stderr = redact(&err);
    report.secrets_read = std::mem::take(&mut state.secrets_read);
    report.kv_ops = state.kv_ops;
}
