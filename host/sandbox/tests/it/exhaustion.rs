//! Issue 13 §1: components built to exhaust the host while loading are refused before the
//! expensive step, with typed errors — compile bombs before wasmtime compiles them, plain
//! components with thousands of exports before any schema is derived.

use std::time::{Duration, Instant};

use crate::common;

use tollgate_sandbox::{Grants, LoadError, Sandbox, SandboxConfig};

/// A component wrapping one core module made of `funcs`.
fn component_with_core(funcs: &str) -> Vec<u8> {
    wat::parse_str(format!("(component (core module {funcs}))")).unwrap()
}

fn no_cache() -> Sandbox {
    Sandbox::new(SandboxConfig { max_concurrent_instances: 8, ..SandboxConfig::default() }).unwrap()
}

/// Loads `bytes`, which must be refused within `within`; returns the error.
async fn refused_quickly(bytes: &[u8], within: Duration) -> LoadError {
    let started = Instant::now();
    let err = no_cache().load(bytes, Grants::new()).await.expect_err("the component must be refused");
    assert!(started.elapsed() < within, "refused only after {:?}: {err}", started.elapsed());
    err
}

/// 100,000 trivial functions (about 1 MB): took 7.7 s and 634 MiB to load.
#[tokio::test]
async fn many_functions_are_refused_before_compiling() {
    let bytes = component_with_core(&"(func)".repeat(100_000));
    let err = refused_quickly(&bytes, Duration::from_secs(3)).await;
    assert!(
        matches!(&err, LoadError::ComponentTooComplex { what, found: 100_000, .. } if what.contains("core functions")),
        "{err}"
    );
}

/// One function of 60,000 nested blocks (175 KiB): took 5.2 s, super-linear in the depth.
#[tokio::test]
async fn deeply_nested_bodies_are_refused_before_compiling() {
    let bytes = component_with_core(&format!("(func {} {})", "(block ".repeat(60_000), ")".repeat(60_000)));
    let err = refused_quickly(&bytes, Duration::from_secs(3)).await;
    assert!(matches!(&err, LoadError::ComponentTooComplex { what, .. } if what.contains("nesting")), "{err}");
}

/// A plain component whose one function is exported under `n` names.
fn plain_with_exports(n: usize) -> Vec<u8> {
    let exports: String = (0..n).map(|i| format!("(export \"f{i}\" (func $f))")).collect();
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const 7))
            (core instance $i (instantiate $m))
            (func $f (result u32) (canon lift (core func $i "f")))
            {exports})"#
    ))
    .unwrap()
}

/// 20,000 exports were refused only after 3.3 s and 129 MiB, after a schema pair per export.
#[tokio::test]
async fn plain_components_are_held_to_the_tool_cap_before_schemas() {
    let small = no_cache().load(&plain_with_exports(3), Grants::new()).await.unwrap();
    assert_eq!(small.manifest().tools.len(), 3);
    let err = refused_quickly(&plain_with_exports(20_000), Duration::from_secs(2)).await;
    assert!(
        matches!(&err, LoadError::PlainComponent(m) if m.contains("exports 20000 functions, over the limit of 256")),
        "{err}"
    );
}

/// Limits are per sandbox: an operator can tighten them.
#[tokio::test]
async fn compile_limits_are_configurable() {
    let config = SandboxConfig {
        compile: tollgate_sandbox::CompileLimits { max_bytes: 1024, ..Default::default() },
        ..SandboxConfig::default()
    };
    let bytes = std::fs::read(common::plugin_path("echo")).unwrap();
    let err = Sandbox::new(config).unwrap().load(&bytes, Grants::new()).await.unwrap_err();
    assert!(matches!(&err, LoadError::ComponentTooComplex { what, .. } if what.contains("size")), "{err}");
}
