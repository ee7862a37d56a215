//! Foreign components (issue 14 §3): toolchain internals are not tools, an import no grant can
//! satisfy is refused before compiling with every such import named, a component that imports
//! `wasi:filesystem/preopens` is warned about at load, and an operator's overrides of a plain
//! component's descriptions and effects apply to plain components only. The components are
//! written in WAT.

use crate::common;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;
use tollgate_sandbox::{CallError, Effects, Grants, LoadError, Plugin, ToolOverride};

#[path = "../../../../tests/support/foreign_component.rs"]
mod foreign_component;
use foreign_component::{COMPONENTIZE_PY_PARAMS, component, init_export};

async fn load(bytes: &[u8]) -> Result<Plugin, LoadError> {
    common::sandbox().load(bytes, Grants::new()).await
}

fn tool_names(p: &Plugin) -> Vec<&str> {
    p.manifest().tools.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn componentize_py_init_is_hidden_from_every_view() {
    let bytes = component("", &init_export("exports", COMPONENTIZE_PY_PARAMS));
    let p = load(&bytes).await.unwrap();
    assert_eq!(tool_names(&p), ["seven"]);
    let o = p.call("exports_init", r#"{"app-name": "app", "symbols": 0}"#, &common::ctx("k")).await;
    assert!(matches!(o.result, Err(CallError::UnknownTool { .. })), "{:?}", o.result);

    // inspect lists it as not offered, with the reason.
    let i = common::sandbox().inspect(&bytes).await.unwrap();
    let plain = i.plain.unwrap();
    let hidden = plain.unsupported.iter().find(|u| u.export == "exports#init").expect("listed as not offered");
    assert!(hidden.reason.contains("componentize-py"), "{}", hidden.reason);
    assert!(i.manifest.description.contains("1 of its 2 exported function(s)"), "{}", i.manifest.description);
}

#[tokio::test]
async fn the_rule_is_exact_other_inits_stay_tools() {
    // Another interface's `init`, and an `exports#init` with other parameters, are the author's.
    let other_interface = component("", &init_export("acme:app/exports", COMPONENTIZE_PY_PARAMS));
    assert_eq!(tool_names(&load(&other_interface).await.unwrap()), ["seven", "exports_init"]);
    let other_params = component("", &init_export("exports", r#"(param "name" string) (param "symbols" u32)"#));
    assert_eq!(tool_names(&load(&other_params).await.unwrap()), ["seven", "exports_init"]);
}

#[tokio::test]
async fn unsupported_imports_are_all_named_before_compiling() {
    let imports = r#"(import "wasi:config/store@0.2.0-draft" (instance))
                     (import "wasi:cli/environment@0.2.0" (instance))
                     (import "acme:evil/backdoor" (instance))"#;
    let bytes = component(imports, "");
    for err in [load(&bytes).await.unwrap_err(), common::sandbox().inspect(&bytes).await.unwrap_err()] {
        let LoadError::UnsupportedImports { imports } = &err else { panic!("want unsupported imports, got {err}") };
        assert_eq!(imports, &["wasi:config/store@0.2.0-draft", "acme:evil/backdoor"]);
        let text = err.to_string();
        assert!(text.contains("`wasi:config/store@0.2.0-draft`, `acme:evil/backdoor`"), "{text}");
        assert!(text.contains("which Tollgate does not provide"), "{text}");
        assert!(text.contains("Tollgate provides: wasi:io") && text.contains("wasi:http/outgoing-handler"), "{text}");
    }

    // Nothing was compiled: a component whose nested module wasmtime would reject outright is
    // still refused for its import, not as invalid.
    let broken = wat::parse_str(
        r#"(component
            (import "wasi:config/store@0.2.0-draft" (instance))
            (core module $m (func (result i32) i64.const 1)))"#,
    )
    .unwrap();
    let err = load(&broken).await.unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedImports { .. }), "{err}");
}

/// Measured, not asserted against the compile (the machine is shared): a component of 50,000
/// functions importing an unsupported interface is refused in well under a second; compiling
/// it (what the refusal used to wait for) takes seconds.
#[tokio::test]
async fn refusing_an_unsupported_import_does_not_wait_for_a_compile() {
    let functions = "(func)".repeat(50_000);
    let big = |imports: &str| {
        wat::parse_str(format!("(component {imports} (core module $m {functions}) (core instance (instantiate $m)))"))
            .unwrap()
    };
    let refused = big(r#"(import "wasi:config/store@0.2.0-draft" (instance))"#);
    let start = Instant::now();
    let err = load(&refused).await.unwrap_err();
    let refuse = start.elapsed();
    assert!(matches!(err, LoadError::UnsupportedImports { .. }), "{err}");
    assert!(refuse.as_secs_f64() < 1.0, "refusing took {refuse:?}");

    // The same shape without the import, compiled with no cache: what a refusal used to cost.
    let sandbox = tollgate_sandbox::Sandbox::new(tollgate_sandbox::SandboxConfig::default()).unwrap();
    let start = Instant::now();
    let _ = sandbox.load(&big(""), Grants::new()).await;
    eprintln!("refused before compiling in {refuse:?}; compiling the same component took {:?}", start.elapsed());
}

#[tokio::test]
async fn a_component_importing_preopens_is_warned_about_at_load() {
    let bytes = component(r#"(import "wasi:filesystem/preopens@0.2.0" (instance))"#, "");
    let p = load(&bytes).await.unwrap();
    let warnings = p.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("`wasi:filesystem/preopens@0.2.0`"), "{}", warnings[0]);
    assert!(warnings[0].contains("preopens no directories") && warnings[0].contains("os error 44"));
    assert_eq!(common::sandbox().inspect(&bytes).await.unwrap().warnings, warnings);
    // It still loads and runs: only file access fails.
    assert_eq!(p.call("seven", "{}", &common::ctx("k")).await.result.unwrap(), json!(7));

    assert!(load(&component("", "")).await.unwrap().warnings().is_empty());
}

#[tokio::test]
async fn overrides_change_a_plain_components_tools_only() {
    let p = load(&component("", "")).await.unwrap();
    let spend = Effects { spend: true, write: true, ..Effects::default() };
    let overrides = BTreeMap::from([(
        "seven".to_string(),
        ToolOverride { description: Some("Returns seven; costs money.".into()), effects: Some(spend) },
    )]);
    let q = p.with_tool_overrides(&overrides).unwrap();
    let tool = q.manifest().tool("seven").unwrap();
    assert_eq!((tool.description.as_str(), tool.effects), ("Returns seven; costs money.", spend));
    assert_eq!(p.manifest().tool("seven").unwrap().effects, Effects::default(), "the original is untouched");
    assert_eq!(q.call("seven", "{}", &common::ctx("k")).await.result.unwrap(), json!(7));

    let only_effects =
        BTreeMap::from([("seven".to_string(), ToolOverride { description: None, effects: Some(spend) })]);
    let q = p.with_tool_overrides(&only_effects).unwrap();
    assert_eq!(q.manifest().tool("seven").unwrap().description, p.manifest().tool("seven").unwrap().description);

    let unknown = BTreeMap::from([("eight".to_string(), ToolOverride::default())]);
    let err = p.with_tool_overrides(&unknown).unwrap_err().to_string();
    assert!(err.contains("`eight`"), "{err}");

    let echo = common::load(&common::sandbox(), "echo", Grants::new()).await;
    let tool = echo.manifest().tools[0].name.clone();
    let err = echo.with_tool_overrides(&BTreeMap::from([(tool, ToolOverride::default())])).unwrap_err().to_string();
    assert!(err.contains("Tollgate plugin") && err.contains("contract"), "{err}");
}
