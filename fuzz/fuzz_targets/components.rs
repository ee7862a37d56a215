//! Components the sandbox has never seen: a wasm-smith core module (any code, memories, tables,
//! globals; no imports) wrapped in a component that instantiates it. Loading must end in a
//! plugin or a typed refusal, within the compile limits, never a host crash.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tollgate_sandbox::{Grants, Sandbox, SandboxConfig};
use wasm_encoder::{Component, ComponentSectionId, InstanceSection, ModuleArg, RawSection};

fn module(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut config: wasm_smith::Config = u.arbitrary()?;
    config.max_imports = 0;
    config.max_memory32_bytes = 1 << 24;
    config.max_funcs = config.max_funcs.min(200);
    Ok(wasm_smith::Module::new(config, u)?.to_bytes())
}

/// A component holding `core` and one instance of it (no arguments: the module imports nothing).
fn component(core: &[u8]) -> Vec<u8> {
    let mut c = Component::new();
    c.section(&RawSection { id: ComponentSectionId::CoreModule as u8, data: core });
    let mut instances = InstanceSection::new();
    instances.instantiate(0, std::iter::empty::<(&str, ModuleArg)>());
    c.section(&instances);
    c.finish()
}

struct Env {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let sandbox = runtime.block_on(async { Sandbox::new(SandboxConfig::default()) }).expect("sandbox");
        Env { runtime, sandbox }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(core) = module(&mut u) else { return };
    let bytes = component(&core);
    let e = env();
    let _ = e.runtime.block_on(e.sandbox.inspect(&bytes));
    let _ = e.runtime.block_on(e.sandbox.load(&bytes, Grants::new()));
});
