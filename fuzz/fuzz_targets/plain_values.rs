//! JSON ↔ WIT value conversion of plain components: the `plain` test component (every WIT
//! type the mapping supports) is loaded once; each input picks a tool with its first byte and
//! is that tool's JSON input. Conversion (with its budget), the schema check and, when they
//! pass, the call and the result's conversion back must end in a value or a typed error.
//! `TOLLGATE_FUZZ_PLAIN` names the component (`cargo xtask fuzz` sets it).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate_sandbox::{CallContext, Grants, Plugin, Sandbox, SandboxConfig};

struct Loaded {
    runtime: tokio::runtime::Runtime,
    plugin: Plugin,
    tools: Vec<String>,
    // Kept alive: the plugin's engine belongs to it.
    _sandbox: Sandbox,
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let path = std::env::var("TOLLGATE_FUZZ_PLAIN").expect("TOLLGATE_FUZZ_PLAIN names plain.wasm");
        let bytes = std::fs::read(&path).expect("plain.wasm");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let sandbox = runtime.block_on(async { Sandbox::new(SandboxConfig::default()) }).expect("sandbox");
        let plugin = runtime.block_on(sandbox.load(&bytes, Grants::new())).expect("plain loads");
        let tools = plugin.manifest().tools.iter().map(|t| t.name.clone()).collect();
        Loaded { runtime, plugin, tools, _sandbox: sandbox }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(input) = std::str::from_utf8(rest) else { return };
    let l = loaded();
    let tool = &l.tools[pick as usize % l.tools.len()];
    let ctx = CallContext { run_id: "fuzz".into(), call_id: "c".into(), idempotency_key: "k".into() };
    let _ = l.runtime.block_on(l.plugin.call(tool, input, &ctx));
});
