//! Python plugins end to end: the example (`plugins/examples/lead-score-py`), a
//! `tollgate new plugin --lang python` project and the `tests/fixtures/py-caps` project (kv,
//! secrets, memory) are built once per test binary with the real
//! pinned toolchain through `tollgate_pluginkit::build`, then loaded and called in the real
//! sandbox. Network: only the HubSpot stand-in on 127.0.0.1 this binary starts (and PyPI, once,
//! to install the pinned componentize-py into the toolchain cache under the target dir).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tollgate_pluginkit::{BuildError, BuildOptions, Lang};
use tollgate_sandbox::{
    CallContext, CallError, CallOutcome, Capability, Grants, Limits, Plugin, Sandbox, SandboxConfig, SecretSource,
    ToolError, Upstream,
};
use tollgate_standins::{StandIns, Tokens};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where this binary builds its projects; wiped per run, kept afterwards for inspection.
fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("pluginkit-python-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options() -> BuildOptions {
    BuildOptions { toolchains: Some(target_dir().join("tollgate-toolchains")), ..BuildOptions::default() }
}

fn sandbox() -> Sandbox {
    let cache_dir = Some(target_dir().join("tollgate-test-cache"));
    Sandbox::new(SandboxConfig { max_concurrent_instances: 16, cache_dir, ..SandboxConfig::default() })
        .expect("sandbox starts")
}

/// A built component and the project directory it came from.
struct Built {
    dir: PathBuf,
    component: PathBuf,
}

/// Builds `dir` (blocking, off the async threads) and compiles the component once into the
/// shared cache, so every test's load is a cache hit.
async fn build(dir: PathBuf) -> Built {
    let started = Instant::now();
    let install = tokio::task::spawn_blocking(|| {
        tollgate_pluginkit::python::install_toolchain(&target_dir().join("tollgate-toolchains"), &Default::default())
    });
    install.await.unwrap().unwrap_or_else(|e| panic!("toolchain install: {e}"));
    eprintln!("componentize-py toolchain ready after {:?}", started.elapsed());
    let started = Instant::now();
    let project = dir.clone();
    let built = tokio::task::spawn_blocking(move || tollgate_pluginkit::build(&project, &options()))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("build of {}: {e}", dir.display()));
    eprintln!("built {} in {:?}: {} bytes", built.component.display(), started.elapsed(), built.size);
    assert_eq!(built.lang, Lang::Python);
    let bytes = std::fs::read(&built.component).unwrap();
    let started = Instant::now();
    sandbox().inspect(&bytes).await.unwrap_or_else(|e| panic!("{} does not load: {e}", built.component.display()));
    eprintln!("compiled {} in {:?}", built.component.display(), started.elapsed());
    Built { dir, component: built.component }
}

static EXAMPLE: OnceCell<Built> = OnceCell::const_new();
static TEMPLATE: OnceCell<Built> = OnceCell::const_new();
static CAPS: OnceCell<Built> = OnceCell::const_new();

/// The example, copied out of the source tree (a build writes `.tollgate/` and `target/`).
async fn example() -> &'static Built {
    EXAMPLE
        .get_or_init(|| async {
            let dir = scratch("lead-score");
            let source = repo().join("plugins/examples/lead-score-py");
            for file in ["pyproject.toml", "app.py", "scoring.py", "test_app.py"] {
                std::fs::copy(source.join(file), dir.join(file)).unwrap();
            }
            build(dir).await
        })
        .await
}

/// `tollgate new plugin hello-py --lang python`, plus one tool with a bug, to see what an
/// uncaught exception becomes.
async fn template() -> &'static Built {
    TEMPLATE
        .get_or_init(|| async {
            let dir = scratch("hello-py");
            tollgate_pluginkit::new_project(&dir, "hello-py", Lang::Python).unwrap();
            let app = dir.join("app.py");
            let mut text = std::fs::read_to_string(&app).unwrap();
            text.push_str(
                "\n\n@plugin.tool\ndef ratio(a: int, b: int) -> float:\n    \"\"\"a / b.\"\"\"\n    return a / b\n",
            );
            std::fs::write(&app, text).unwrap();
            build(dir).await
        })
        .await
}

async fn load(built: &Built, grants: Grants) -> Plugin {
    sandbox().load_file(&built.component, grants).await.unwrap_or_else(|e| panic!("load: {e}"))
}

fn ctx(key: &str) -> CallContext {
    CallContext { run_id: "run-7".into(), call_id: key.into(), idempotency_key: key.into() }
}

async fn call(plugin: &Plugin, tool: &str, input: Value) -> CallOutcome {
    let outcome = tokio::time::timeout(Duration::from_secs(60), plugin.call(tool, &input.to_string(), &ctx("k-1")))
        .await
        .expect("the call ends within 60 s");
    eprintln!("{tool}: {} fuel, {} µs", outcome.report.fuel_used, outcome.report.duration_us);
    outcome
}

/// What the example needs to load (it imports log and http) when no test reaches HubSpot.
fn example_grants() -> Grants {
    Grants::new().log(true).allow_host("https://unused.example").unwrap()
}

fn dmitri() -> Value {
    json!({"email": "dmitri@initech.example", "jobtitle": "VP Sales", "employees": 450,
           "email_opens": 4, "email_clicks": 2, "page_views": 12})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_declares_its_manifest_and_imports() {
    let plugin = load(example().await, example_grants()).await;
    let m = plugin.manifest();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("lead-score", "0.1.0"));
    let tools: Vec<_> = m.tools.iter().map(|t| (t.name.as_str(), t.effects.read, t.idempotent)).collect();
    assert_eq!(tools, [("score_lead", false, true), ("rank_leads", false, true), ("fetch_and_score", true, true)]);
    assert_eq!(m.hosts, ["https://api.hubapi.com"]);
    // The `requests` export: pure tools declare none, the HubSpot read its one kind of request.
    let requests: Vec<Option<Vec<String>>> =
        m.tools.iter().map(|t| t.requests.as_ref().map(|r| r.iter().map(ToString::to_string).collect())).collect();
    assert_eq!(
        requests,
        [Some(vec![]), Some(vec![]), Some(vec!["GET api.hubapi.com/crm/v3/objects/contacts/*".to_string()])]
    );
    assert_eq!((m.credentials[0].name.as_str(), m.credentials[0].host.as_str()), ("hubspot", "api.hubapi.com"));
    let input = &m.tools[2].input_schema;
    assert_eq!(input["properties"]["contact_id"]["pattern"], json!("^[0-9]{1,20}$"), "{input}");
    assert_eq!(plugin.capabilities(), [Capability::Http, Capability::Log]);
    // Declared capabilities only: no kv, no secrets.
    let err = sandbox().load_file(&example().await.component, Grants::new().log(true)).await.unwrap_err();
    assert!(err.to_string().contains("wasi:http/outgoing-handler@0.2.12"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_scores_and_ranks_leads() {
    let plugin = load(example().await, example_grants()).await;
    let out = call(&plugin, "score_lead", json!({"contact": dmitri()})).await.result.unwrap();
    assert_eq!((out["score"].clone(), out["grade"].clone()), (json!(68), json!("B")), "{out}");
    let points: Vec<f64> = out["factors"].as_array().unwrap().iter().map(|f| f["points"].as_f64().unwrap()).collect();
    assert_eq!(points, [22.0, 15.0, 15.0, 16.0]);
    assert_eq!(out["factors"][2]["reason"], json!("corporate domain (initech.example)"));

    let contacts = json!([
        {"email": "kid@gmail.com", "jobtitle": "Student", "id": "1"},
        {"email": "ceo@acme.example", "jobtitle": "CEO", "employees": 2000, "id": "2"},
        dmitri(),
    ]);
    let ranked = call(&plugin, "rank_leads", json!({"contacts": contacts, "top": 2})).await.result.unwrap();
    let order: Vec<_> = ranked.as_array().unwrap().iter().map(|r| (r["rank"].clone(), r["email"].clone())).collect();
    assert_eq!(order, [(json!(1), json!("dmitri@initech.example")), (json!(2), json!("ceo@acme.example"))]);

    // Per-call cost once compiled: a fresh instance per call.
    let mut times = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        call(&plugin, "score_lead", json!({"contact": dmitri()})).await.result.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    eprintln!("score_lead round trip: median {:?}, min {:?}", times[times.len() / 2], times[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_violating_the_schema_is_refused_by_the_host() {
    let plugin = load(example().await, example_grants()).await;
    for input in [
        json!({"contact": {"email": 5}}),
        json!({"contact": dmitri(), "extra": true}),
        json!({"contacts": [], "top": 1}),
        json!({"contact_id": "12/../1"}),
    ] {
        let tool = if input.get("contacts").is_some() {
            "rank_leads"
        } else if input.get("contact_id").is_some() {
            "fetch_and_score"
        } else {
            "score_lead"
        };
        let outcome = call(&plugin, tool, input.clone()).await;
        assert!(matches!(outcome.result, Err(CallError::InvalidInput { .. })), "{input}: {:?}", outcome.result);
        assert_eq!(outcome.report.fuel_used, 0, "{input}: the plugin ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_typed_error_reaches_the_host_typed() {
    let plugin = load(example().await, example_grants()).await;
    let outcome = call(&plugin, "score_lead", json!({"contact": {"email": "not-an-email"}})).await;
    match outcome.result {
        Err(CallError::Tool(ToolError::InvalidInput { message })) => {
            assert_eq!(message, "`contact.email` is not an email address: 'not-an-email'")
        }
        other => panic!("want the tool's invalid-input, got {other:?}"),
    }
}

/// The example with `allow` granted and api.hubapi.com routed to the stand-in; the HubSpot
/// token is mapped only when api.hubapi.com is the granted host (the host refuses a credential
/// for a host the operator did not name).
async fn hubspot_plugin(standins: &StandIns, dir: &Path, allow: &str) -> Plugin {
    let mut grants = Grants::new()
        .log(true)
        .allow_host(allow)
        .unwrap()
        .upstream("api.hubapi.com", Upstream::parse(&standins.hubspot.base_url()).unwrap());
    if allow.contains("api.hubapi.com") {
        let token = dir.join("hubspot-token");
        std::fs::write(&token, Tokens::default().hubspot).unwrap();
        grants = grants.credential("hubspot", SecretSource::File(token));
    }
    load(example().await, grants).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_score_reads_the_crm_through_the_gate() {
    let standins = StandIns::start(Tokens::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plugin = hubspot_plugin(&standins, tmp.path(), "https://api.hubapi.com").await;
    let outcome = call(&plugin, "fetch_and_score", json!({"contact_id": "1004"})).await;
    let out = outcome.result.unwrap();
    // Seed 1004: Dmitri Ivanov, VP Sales at Initech; no size or engagement in the stand-in.
    assert_eq!(out["name"], json!("Dmitri Ivanov"));
    assert_eq!(out["email"], json!("dmitri.ivanov@initech.example"));
    assert_eq!((out["score"].clone(), out["grade"].clone()), (json!(37), json!("C")), "{out}");
    let request = standins.hubspot.requests().pop().unwrap();
    assert_eq!(request.header("authorization"), Some("Bearer hubspot-test-token"));
    let egress = &outcome.report.egress[0];
    assert_eq!((egress.host.as_str(), egress.status, egress.denied.as_deref()), ("api.hubapi.com", Some(200), None));
    assert!(egress.path.starts_with("/crm/v3/objects/contacts/1004"), "{}", egress.path);
    assert_eq!(outcome.report.logs[0].message, "scored contact");
    assert_eq!(outcome.report.logs[0].fields["score"], json!(37));
    assert!(!serde_json::to_string(&outcome.report).unwrap().contains("hubspot-test-token"));

    let missing = call(&plugin, "fetch_and_score", json!({"contact_id": "999999"})).await;
    assert!(matches!(missing.result, Err(CallError::Tool(ToolError::NotFound { .. }))), "{:?}", missing.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_a_host_not_granted_is_denied_and_sends_nothing() {
    let standins = StandIns::start(Tokens::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // http is granted, but not for api.hubapi.com; the upstream would route it to the stand-in.
    let plugin = hubspot_plugin(&standins, tmp.path(), "https://crm.other.example").await;
    let outcome = call(&plugin, "fetch_and_score", json!({"contact_id": "1004"})).await;
    match &outcome.result {
        Err(CallError::Tool(ToolError::Denied { message })) => {
            assert!(message.contains("denied by the host"), "{message}")
        }
        other => panic!("want denied, got {other:?}"),
    }
    let denied = outcome.report.egress[0].denied.as_deref().unwrap_or_default();
    assert!(denied.contains("api.hubapi.com") && denied.contains("not granted"), "{denied}");
    assert_eq!(standins.hubspot.requests().len(), 0, "the stand-in received a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuel_limit_stops_the_call_and_the_next_call_works() {
    let built = example().await;
    let single = call(&load(built, example_grants()).await, "score_lead", json!({"contact": dmitri()})).await;
    let per_call = single.report.fuel_used;
    assert!(single.result.is_ok() && per_call > 0);
    let limits = Limits { fuel: per_call * 4, ..Limits::default() };
    let plugin = load(built, example_grants().limits(limits)).await;
    let many: Vec<Value> =
        (0..2000).map(|i| json!({"email": format!("lead{i}@corp{i}.example"), "jobtitle": "Director"})).collect();
    let outcome = call(&plugin, "rank_leads", json!({"contacts": many})).await;
    match outcome.result {
        Err(CallError::FuelExhausted { limit }) => assert_eq!(limit, per_call * 4),
        other => panic!("want fuel-exhausted, got {other:?}"),
    }
    let next = call(&plugin, "score_lead", json!({"contact": dmitri()})).await;
    assert_eq!(next.result.unwrap()["score"], json!(68));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_builds_a_pure_component_that_imports_no_capability() {
    let built = template().await;
    let inspection = sandbox().inspect(&std::fs::read(&built.component).unwrap()).await.unwrap();
    assert!(inspection.capabilities.is_empty(), "{:?}", inspection.capabilities);
    for import in &inspection.imports {
        for capability in ["tollgate:plugin/log", "tollgate:plugin/kv", "tollgate:plugin/secrets", "wasi:http"] {
            assert!(!import.name.starts_with(capability), "imports {}", import.name);
        }
    }
    // Nothing granted at all, and it loads.
    let plugin = load(built, Grants::new()).await;
    assert_eq!(plugin.manifest().name, "hello-py");
    let out = call(&plugin, "greet", json!({"name": "Ada", "excited": true})).await.result.unwrap();
    assert_eq!(out, json!({"message": "Hello, Ada!", "length": 11}));
    let blank = call(&plugin, "greet", json!({"name": "  "})).await;
    assert!(matches!(blank.result, Err(CallError::Tool(ToolError::InvalidInput { .. }))), "{:?}", blank.result);
    // An uncaught exception is the plugin's internal error with its message, not a trap.
    let bug = call(&plugin, "ratio", json!({"a": 1, "b": 0})).await;
    match bug.result {
        Err(CallError::Tool(ToolError::Internal { message })) => {
            assert!(message.starts_with("ZeroDivisionError: division by zero (at app.py:"), "{message}")
        }
        other => panic!("want internal, got {other:?}"),
    }
    assert_eq!(call(&plugin, "ratio", json!({"a": 3, "b": 2})).await.result.unwrap(), json!(1.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_unit_tests_pass_natively() {
    for built in [template().await, example().await] {
        let output = Command::new("python3")
            .args(["-m", "unittest", "-q"])
            .current_dir(&built.dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {log}", built.dir.display());
        assert!(log.contains("OK"), "{log}");
    }
}

#[test]
fn the_sdk_unit_tests_pass_natively() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk-python");
    let output = Command::new("python3")
        .args(["-m", "unittest", "discover", "-q", "-s", "tests"])
        .current_dir(&sdk)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && log.contains("OK"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_project_fails_the_build_with_the_reason() {
    let dir = scratch("broken");
    tollgate_pluginkit::new_project(&dir, "broken", Lang::Python).unwrap();
    let pyproject = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap().replace("capabilities = []", "capabilities = [\"net\"]");
    std::fs::write(&pyproject, text).unwrap();
    let err = tollgate_pluginkit::build(&dir, &options()).unwrap_err();
    assert!(
        matches!(&err, BuildError::Project { message, .. } if message.contains("unknown capability \"net\"")),
        "{err}"
    );

    let text = std::fs::read_to_string(&pyproject).unwrap().replace("[\"net\"]", "[]");
    std::fs::write(&pyproject, text).unwrap();
    let app = dir.join("app.py");
    let text =
        std::fs::read_to_string(&app).unwrap().replace("@plugin.tool(idempotent=True)", "@plugin.tool(name=\"Greet\")");
    std::fs::write(&app, text).unwrap();
    let project = dir.clone();
    let err = tokio::task::spawn_blocking(move || tollgate_pluginkit::build(&project, &options())).await.unwrap();
    match err {
        Err(BuildError::Build { log, .. }) => assert!(log.contains("tool name `Greet` must match"), "{log}"),
        other => panic!("want a build error, got {other:?}"),
    }
}

/// Issue 14: the component is the plugin's modules, not the project folder. componentize-py
/// snapshots what the import machinery saw, directory listings included, so a name of a file
/// the build was given shows up in the component's bytes.
#[test]
fn the_component_holds_the_imported_modules_not_the_project_folder() {
    let dir = scratch("bundle");
    tollgate_pluginkit::new_project(&dir, "bundle", Lang::Python).unwrap();
    let app = dir.join("app.py");
    let text = std::fs::read_to_string(&app).unwrap().replace("from tollgate", "import greeting_words\nfrom tollgate");
    std::fs::write(&app, text).unwrap();
    std::fs::write(dir.join("greeting_words.py"), "WORDS = ['hello']\n").unwrap();
    std::fs::write(dir.join("unused_module.py"), "").unwrap();
    std::fs::create_dir_all(dir.join("tests_data_dir")).unwrap();
    std::fs::write(dir.join("tests_data_dir/notes_blob.txt"), "x".repeat(100_000)).unwrap();
    let built = tollgate_pluginkit::build(&dir, &options()).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&built.component).unwrap();
    let holds = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(holds("greeting_words"), "an imported module is bundled");
    for absent in ["test_app.py", "unused_module", "tests_data_dir", "bundle.wasm"] {
        assert!(!holds(absent), "{absent} is not part of the plugin but is in the component");
    }
    assert!(!dir.join("__pycache__").exists(), "the build writes no bytecode into the project");

    std::fs::write(
        dir.join("pyproject.toml"),
        std::fs::read_to_string(dir.join("pyproject.toml"))
            .unwrap()
            .replace("requires-python = \">=3.11\"", "requires-python = \">=3.11\"\ndependencies = [\"requests\"]"),
    )
    .unwrap();
    let err = tollgate_pluginkit::build(&dir, &options()).unwrap_err().to_string();
    assert!(err.contains("`[project] dependencies` lists requests") && err.contains("does not install"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// kv, secrets and memory inside a Python component: `tests/fixtures/py-caps`.

async fn caps() -> &'static Built {
    CAPS.get_or_init(|| async {
        let dir = scratch("py-caps");
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/py-caps");
        for file in ["pyproject.toml", "app.py"] {
            std::fs::copy(source.join(file), dir.join(file)).unwrap();
        }
        build(dir).await
    })
    .await
}

const SIGNING_KEY: &str = "hmac-key-Zq81-never-printed";

/// kv in `namespace`, and the secret `signing-key` (a file in `dir`): all the fixture imports.
fn caps_grants(dir: &Path, namespace: &str) -> Grants {
    let key = dir.join("signing-key");
    std::fs::write(&key, SIGNING_KEY).unwrap();
    Grants::new().kv(true).kv_namespace(namespace).secret("signing-key", SecretSource::File(key))
}

/// HMAC-SHA256 (RFC 2104) as lowercase hex.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

#[test]
fn the_hmac_helper_matches_rfc_4231() {
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_persists_across_calls_within_the_plugins_scope() {
    let built = caps().await;
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = sandbox();
    let plugin = sandbox.load_file(&built.component, caps_grants(tmp.path(), "team-a")).await.unwrap();
    assert_eq!(plugin.capabilities(), [Capability::Kv, Capability::Secrets]);
    assert!(!plugin.imports().iter().any(|i| i.name.starts_with("wasi:http")), "{:?}", plugin.imports());

    let first = call(&plugin, "remember", json!({"key": "plan", "value": "ship friday"})).await;
    assert_eq!(first.result.unwrap(), json!({"previous": null}));
    assert_eq!(first.report.kv_ops, 2, "a get and a set");
    // Each call is a fresh instance: the note lives in the host's store, not in the guest.
    let recalled = call(&plugin, "recall", json!({"key": "plan"})).await;
    assert_eq!(recalled.result.unwrap(), json!({"value": "ship friday", "keys": ["plan"]}));
    let again = call(&plugin, "remember", json!({"key": "plan", "value": "ship monday"})).await.result.unwrap();
    assert_eq!(again, json!({"previous": "ship friday"}));
    assert_eq!(call(&plugin, "recall", json!({"key": "nothing"})).await.result.unwrap()["value"], Value::Null);

    // The same component under another operator-chosen namespace sees none of it.
    let other = sandbox.load_file(&built.component, caps_grants(tmp.path(), "team-b")).await.unwrap();
    assert_eq!(
        call(&other, "recall", json!({"key": "plan"})).await.result.unwrap(),
        json!({"value": null, "keys": []})
    );
    // kv is a declared capability: without the grant the component does not load.
    let no_kv = Grants::new().secret("signing-key", SecretSource::Env("UNUSED".into()));
    let err = sandbox.load_file(&built.component, no_kv).await.unwrap_err();
    assert!(err.to_string().contains("tollgate:plugin/kv"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_secret_is_usable_an_ungranted_one_denied_and_neither_leaves() {
    let built = caps().await;
    let tmp = tempfile::tempdir().unwrap();
    let plugin = load(built, caps_grants(tmp.path(), "signing")).await;
    let message = "pay 100 EUR to acme";
    let signed = call(&plugin, "sign", json!({"message": message})).await;
    let seen = format!("{:?} {}", signed.result, serde_json::to_string(&signed.report).unwrap());
    let out = signed.result.unwrap();
    assert_eq!(out["hmac"], json!(hmac_sha256_hex(SIGNING_KEY.as_bytes(), message.as_bytes())), "{out}");
    assert_eq!(out["key_length"], json!(SIGNING_KEY.len()));
    assert_eq!(signed.report.secrets_read, ["signing-key"]);
    assert!(!seen.contains(SIGNING_KEY), "{seen}");

    let denied = call(&plugin, "sign", json!({"message": message, "key_name": "root-password"})).await;
    match &denied.result {
        Err(CallError::Tool(ToolError::Denied { message })) => {
            assert!(message.contains("secret `root-password` is not granted"), "{message}")
        }
        other => panic!("want the typed denial, got {other:?}"),
    }
    assert_eq!(denied.report.outcome, "tool-denied");
    assert_eq!(denied.report.secrets_read, ["root-password"], "the attempt is audited");
    let seen = format!("{:?} {}", denied.result, serde_json::to_string(&denied.report).unwrap());
    assert!(!seen.contains(SIGNING_KEY), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_memory_error_is_reported_as_the_memory_limit() {
    let built = caps().await;
    let tmp = tempfile::tempdir().unwrap();
    let limits = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    let plugin = load(built, caps_grants(tmp.path(), "hog").limits(limits)).await;
    // CPython's allocator gets -1 from `memory.grow`, raises MemoryError, the tool catches it
    // and raises its own internal error: the host reports the limit and keeps those words.
    let o = call(&plugin, "hog", json!({"mib": 512})).await;
    assert_eq!(o.result, Err(CallError::MemoryLimit { limit: 64 << 20 }));
    assert_eq!(o.report.outcome, "memory-limit");
    assert!(o.report.memory_refused);
    assert_eq!(o.report.guest_error.as_deref(), Some("internal plugin error: out of memory allocating 512 MiB"));

    // The guest that recovers returns its output; the report still says it ran short.
    let o = call(&plugin, "hog", json!({"mib": 512, "recover": true})).await;
    assert_eq!(o.result.unwrap(), json!({"allocated": 0, "recovered": true}));
    assert!(o.report.memory_refused && o.report.guest_error.is_none());

    // Within the limit: no refusal, and the next call is unaffected.
    let o = call(&plugin, "hog", json!({"mib": 4})).await;
    assert_eq!(o.result.unwrap(), json!({"allocated": 4 << 20, "recovered": false}));
    assert!(!o.report.memory_refused);
}
