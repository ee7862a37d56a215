//! Loading: two-key capabilities (imports ∩ grants), malformed components (the compilation
//! cache is in `cache.rs`).

use crate::common;

use tollgate_sandbox::{Capability, Grants, LoadError, SecretSource};

#[tokio::test]
async fn pure_plugin_loads_with_no_grants() {
    let p = common::load(&common::sandbox(), "echo", Grants::new()).await;
    assert!(p.capabilities().is_empty(), "{:?}", p.capabilities());
    assert_eq!(p.manifest().name, "echo");
}

#[tokio::test]
async fn ungranted_imports_are_refused_by_name() {
    let sandbox = common::sandbox();
    let path = common::plugin_path("misbehave");
    let err = sandbox.load_file(&path, Grants::new()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LoadError::Import(_)), "{err}");
    assert!(text.contains("tollgate:plugin/") || text.contains("wasi:http/outgoing-handler"), "{text}");
    assert!(text.contains("did not grant"), "{text}");

    // Grant everything but http: the error names wasi:http/outgoing-handler.
    let no_http = Grants::new().log(true).kv(true).secret("demo", SecretSource::Env("X".into()));
    let text = sandbox.load_file(&path, no_http).await.unwrap_err().to_string();
    assert!(text.contains("wasi:http/outgoing-handler"), "{text}");

    // Everything but kv: names tollgate:plugin/kv.
    let no_kv =
        Grants::new().log(true).secret("demo", SecretSource::Env("X".into())).allow_host("https://x.test").unwrap();
    let text = sandbox.load_file(&path, no_kv).await.unwrap_err().to_string();
    assert!(text.contains("tollgate:plugin/kv"), "{text}");

    let all = common::misbehave_grants(&[]);
    let p = sandbox.load_file(&path, all).await.unwrap();
    assert_eq!(p.capabilities(), &[Capability::Http, Capability::Kv, Capability::Log, Capability::Secrets]);
}

#[tokio::test]
async fn credentials_the_plugin_does_not_declare_are_refused() {
    let g = Grants::new().credential("not-declared", SecretSource::Env("X".into()));
    let err = common::sandbox().load_file(common::plugin_path("echo"), g).await.unwrap_err();
    assert!(err.to_string().contains("not-declared"), "{err}");
}

#[tokio::test]
async fn garbage_is_not_a_component() {
    let sandbox = common::sandbox();
    let err = sandbox.load(b"\0asm\x01\0\0\0garbage", Grants::new()).await.unwrap_err();
    assert!(matches!(err, LoadError::InvalidComponent(_)), "{err}");
    let err = sandbox.load(b"hello", Grants::new()).await.unwrap_err();
    assert!(matches!(err, LoadError::InvalidComponent(_)), "{err}");
}

#[tokio::test]
async fn absurd_limits_are_refused() {
    let l = tollgate_sandbox::Limits { memory_bytes: 1 << 40, ..Default::default() };
    let err = common::sandbox().load_file(common::plugin_path("echo"), Grants::new().limits(l)).await.unwrap_err();
    assert!(matches!(err, LoadError::InvalidLimits(_)), "{err}");
}

/// Contract 0.1.1 only adds the optional `requests` export: a component built against 0.1.0
/// (its imports and its `tool` export at `@0.1.0`, no `requests`) loads and runs unchanged.
/// The echo component is rewritten to that shape: the version strings have the same length.
#[tokio::test]
async fn a_component_built_against_contract_0_1_0_loads_and_runs() {
    let bytes = std::fs::read(common::plugin_path("echo")).unwrap();
    let (new, old) = (b"tollgate:plugin/tool@0.1.1".as_slice(), b"tollgate:plugin/tool@0.1.0".as_slice());
    assert!(bytes.windows(new.len()).any(|w| w == new), "echo is not built against 0.1.1");
    let mut v010 = bytes.clone();
    let mut replaced = 0;
    for i in 0..v010.len().saturating_sub(6) {
        if &v010[i..i + 6] == b"@0.1.1" && (v010[..i].ends_with(b"tool") || v010[..i].ends_with(b"types")) {
            v010[i + 5] = b'0';
            replaced += 1;
        }
    }
    assert!(replaced >= 2, "{replaced}");
    assert!(v010.windows(old.len()).any(|w| w == old) && !v010.windows(new.len()).any(|w| w == new));
    let plugin = common::sandbox().load(&v010, Grants::new()).await.expect("a 0.1.0 component loads");
    assert!(plugin.manifest().tools.iter().all(|t| t.requests.is_none()));
    let out = common::call(&plugin, "echo", serde_json::json!({"msg": "hi"})).await;
    assert_eq!(out.result.unwrap()["msg"], "hi");
}

/// A tool's declared request scopes reach the manifest; tools that declare none have `None`.
#[tokio::test]
async fn declared_request_scopes_are_part_of_the_manifest() {
    let p = common::load(&common::sandbox(), "misbehave", common::misbehave_grants(&[])).await;
    let scoped = p.manifest().tool("fetch_scoped").unwrap();
    let scopes: Vec<String> = scoped.requests.as_ref().unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(scopes, ["GET api.example.test/items/*", "POST api.example.test/search"]);
    assert!(p.manifest().tool("fetch").unwrap().requests.is_none());
}
