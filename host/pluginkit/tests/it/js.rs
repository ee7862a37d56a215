//! JavaScript plugins end to end: the example (`plugins/examples/utm-links-js`), the
//! `tollgate new --lang js` template and a QuickJS-engine project are built with the real
//! pinned toolchains through `tollgate_pluginkit::build` (each once per test binary, in a
//! temporary copy), then loaded and called in `tollgate_sandbox::Sandbox`.
//!
//! Needs `node` and `npm` on PATH and the npm registry for the first toolchain install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;
use tollgate_pluginkit::js::{Capability, Engine, Project};
use tollgate_pluginkit::{BuildError, BuildOptions, Lang};
use tollgate_sandbox::{
    CallContext, CallError, CallOutcome, Capability as HostCapability, Grants, Limits, Plugin, Sandbox, SandboxConfig,
    ToolError,
};

/// Every network wait and every call is bounded by this.
const BOUND: Duration = Duration::from_secs(60);

/// A project built once for the whole test binary.
struct Built {
    /// Keeps the project copy (and its `.tollgate/`) alive.
    _dir: TempDir,
    project: PathBuf,
    bytes: Vec<u8>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"))
}

/// One sandbox per test; the compilation cache is shared, so each component compiles once.
fn sandbox() -> Sandbox {
    let cache_dir = Some(target_dir().join("tollgate-test-cache"));
    Sandbox::new(SandboxConfig { max_concurrent_instances: 16, cache_dir, ..SandboxConfig::default() })
        .expect("sandbox starts")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Build output of a local build in the source tree is not part of the project.
        if name == ".tollgate" || name == "target" || name == "node_modules" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Builds `project` (blocking, on a blocking thread) and compiles it once into the cache.
async fn build(dir: TempDir, project: PathBuf) -> Built {
    let target = project.clone();
    let built = tokio::task::spawn_blocking(move || tollgate_pluginkit::build(&target, &BuildOptions::default()))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{} builds: {e}", project.display()));
    assert_eq!(built.lang, Lang::Js);
    let bytes = std::fs::read(&built.component).unwrap();
    assert_eq!(bytes.len() as u64, built.size);
    sandbox().inspect(&bytes).await.unwrap_or_else(|e| panic!("{} inspects: {e}", built.component.display()));
    Built { _dir: dir, project, bytes }
}

async fn example() -> &'static Built {
    static EXAMPLE: OnceCell<Built> = OnceCell::const_new();
    EXAMPLE
        .get_or_init(|| async {
            let dir = TempDir::new().unwrap();
            let project = dir.path().join("utm-links-js");
            copy_dir(&repo().join("plugins/examples/utm-links-js"), &project);
            build(dir, project).await
        })
        .await
}

async fn template() -> &'static Built {
    static TEMPLATE: OnceCell<Built> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let dir = TempDir::new().unwrap();
            let project = dir.path().join("slugs");
            tollgate_pluginkit::new_project(&project, "slugs", Lang::Js).unwrap();
            build(dir, project).await
        })
        .await
}

/// A small QuickJS project: a `log` tool, a tool with an uncaught exception and a CPU burner.
const QUICKJS_PLUGIN: &str = r#"
import { definePlugin, tool, s, log } from '#tollgate';

export default definePlugin({
  name: 'qjs-probe',
  version: '1.2.3',
  description: 'QuickJS engine probe',
  tools: [
    tool({
      name: 'shout', description: 'Uppercase text and log it.', idempotent: true,
      input: s.object({ text: s.string() }),
      run: ({ text }, ctx) => { log.info('shouting', { key: ctx.idempotencyKey }); return { text: text.toUpperCase() + '!' }; },
    }),
    tool({ name: 'crash', description: 'Throws a TypeError.', input: s.object({}), run: () => null.property }),
    tool({ name: 'spin', description: 'Loops forever.', input: s.object({}), run: () => { for (;;) {} } }),
  ],
});
"#;

fn write_project(dir: &Path, package: serde_json::Value, plugin: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&package).unwrap()).unwrap();
    std::fs::write(dir.join("src/plugin.js"), plugin).unwrap();
}

fn package(name: &str, tollgate: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "name": name, "type": "module", "imports": {"#tollgate": "./.tollgate/sdk/index.js"}, "tollgate": tollgate
    })
}

async fn quickjs() -> &'static Built {
    static QUICKJS: OnceCell<Built> = OnceCell::const_new();
    QUICKJS
        .get_or_init(|| async {
            let dir = TempDir::new().unwrap();
            let project = dir.path().join("qjs-probe");
            let tollgate = serde_json::json!({"engine": "quickjs", "capabilities": ["log"]});
            write_project(&project, package("qjs-probe", tollgate), QUICKJS_PLUGIN);
            build(dir, project).await
        })
        .await
}

fn ctx(key: &str) -> CallContext {
    CallContext { run_id: "run-js".into(), call_id: key.into(), idempotency_key: key.into() }
}

async fn call(plugin: &Plugin, tool: &str, input: serde_json::Value) -> CallOutcome {
    tokio::time::timeout(BOUND, plugin.call(tool, &input.to_string(), &ctx("idem-42"))).await.expect("call is bounded")
}

async fn load(built: &Built, grants: Grants) -> Plugin {
    sandbox().load(&built.bytes, grants).await.unwrap_or_else(|e| panic!("loads: {e}"))
}

/// A request as the test server saw it.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    idempotency_key: Option<String>,
}

/// A loopback HTTP/1.1 server: `/hop/N` redirects to `/hop/N-1` (keeping the query), `/hop/0`
/// redirects to `/landing` (dropping it), `/away?to=URL` redirects to URL, `/landing` answers
/// 200, anything else 404.
struct Server {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let seen = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match tokio::time::timeout(BOUND, socket.read(&mut buf)).await {
                            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = text.lines();
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let (method, target) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
                    let idempotency_key = lines
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"))
                        .map(|(_, v)| v.trim().to_owned());
                    let (path, query) = target.split_once('?').unwrap_or((target, ""));
                    seen.lock().unwrap().push(Hit { method: method.into(), path: path.into(), idempotency_key });
                    let (status, location) = match path.strip_prefix("/hop/").map(str::parse::<u32>) {
                        Some(Ok(0)) => ("302 Found", Some("/landing".to_owned())),
                        Some(Ok(n)) => ("301 Moved Permanently", Some(format!("/hop/{}?{query}", n - 1))),
                        _ if path == "/landing" => ("200 OK", None),
                        _ if path == "/away" => ("302 Found", query.strip_prefix("to=").map(str::to_owned)),
                        _ => ("404 Not Found", None),
                    };
                    let location = location.map(|l| format!("location: {l}\r\n")).unwrap_or_default();
                    let response =
                        format!("HTTP/1.1 {status}\r\n{location}content-length: 2\r\nconnection: close\r\n\r\nok");
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Server { port, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn example_grants(server: &Server) -> Grants {
    Grants::new().log(true).allow_host(&format!("http://127.0.0.1:{}", server.port)).unwrap()
}

fn tool_error(outcome: &CallOutcome) -> &ToolError {
    match &outcome.result {
        Err(CallError::Tool(error)) => error,
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_builds_tagged_links() {
    let server = Server::start().await;
    let plugin = load(example().await, example_grants(&server)).await;
    let input = serde_json::json!({
        "url": "https://shop.example.com/sale?ref=nav#top",
        "source": "Newsletter", "medium": "Email", "campaign": "Spring Sale 2025", "content": "hero button"
    });
    let outcome = call(&plugin, "build_link", input).await;
    let output = outcome.result.unwrap_or_else(|e| panic!("build_link: {e}"));
    assert_eq!(
        output["url"],
        "https://shop.example.com/sale?ref=nav&utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale_2025\
         &utm_content=hero_button#top"
    );
    assert_eq!(output["params"]["utm_campaign"], "spring_sale_2025");
    assert_eq!(output["warnings"], serde_json::json!([]));

    let links = [
        "https://a.example/?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale",
        "https://a.example/b?utm_source=newsletter&utm_medium=email&utm_campaign=Spring-Sale",
        "https://a.example/c?utm_source=newsletter",
    ];
    let outcome = call(&plugin, "audit_links", serde_json::json!({"links": links})).await;
    let report = outcome.result.unwrap_or_else(|e| panic!("audit_links: {e}"));
    assert_eq!((report["total"].as_u64(), report["clean"].as_u64()), (Some(3), Some(1)));
    assert_eq!(report["inconsistencies"][0]["variants"], serde_json::json!(["Spring-Sale", "spring_sale"]));
    assert_eq!(report["links"][1]["problems"], serde_json::json!(["missing utm_medium", "missing utm_campaign"]));
    assert!(server.hits().is_empty(), "pure tools make no requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_manifest_and_imports_match_its_declaration() {
    let built = example().await;
    let inspection = sandbox().inspect(&built.bytes).await.unwrap();
    let manifest = &inspection.manifest;
    assert_eq!((manifest.name.as_str(), manifest.version.as_str()), ("utm-links", "0.1.0"));
    let tools: Vec<(&str, Vec<&str>, bool)> =
        manifest.tools.iter().map(|t| (t.name.as_str(), t.effects.names(), t.idempotent)).collect();
    assert_eq!(
        tools,
        vec![("build_link", vec![], true), ("audit_links", vec![], true), ("check_link", vec!["read"], true)]
    );
    assert_eq!(manifest.hosts, vec!["https://*:*", "http://*:*"]);
    // The `requests` export: the pure tools declare none; check_link goes where links point.
    let declared: Vec<Option<usize>> = manifest.tools.iter().map(|t| t.requests.as_ref().map(Vec::len)).collect();
    assert_eq!(declared, [Some(0), Some(0), None]);
    let schema = serde_json::to_value(&manifest.tools[0]).unwrap();
    assert_eq!(schema["input_schema"]["required"], serde_json::json!(["url", "source", "medium", "campaign"]));
    // package.json declares http and log: exactly those capabilities, nothing else.
    assert_eq!(inspection.capabilities, vec![HostCapability::Http, HostCapability::Log]);
    assert_eq!(Project::read(&built.project).unwrap().capabilities, vec![Capability::Http, Capability::Log]);
    assert!(inspection.imports.iter().all(|i| !i.name.starts_with("tollgate:plugin/kv")), "{:?}", inspection.imports);
    // Without the http grant the component does not load.
    let refused = sandbox().load(&built.bytes, Grants::new().log(true)).await.unwrap_err();
    assert!(refused.to_string().contains("wasi:http/outgoing-handler"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_errors_come_from_the_host_and_tool_errors_are_typed() {
    let server = Server::start().await;
    let plugin = load(example().await, example_grants(&server)).await;
    // `campaign` is required by the schema: the host refuses before the plugin runs.
    let outcome =
        call(&plugin, "build_link", serde_json::json!({"url": "https://a.example/", "source": "x", "medium": "email"}))
            .await;
    assert!(
        matches!(&outcome.result, Err(CallError::InvalidInput { message }) if message.contains("campaign")),
        "{:?}",
        outcome.result
    );
    assert_eq!(outcome.report.fuel_used, 0, "the plugin did not run");
    // Well-formed but unacceptable: the plugin's own invalid-input.
    let input = serde_json::json!({"url": "https://a.example/?utm_source=bing", "source": "google", "medium": "cpc", "campaign": "x"});
    let outcome = call(&plugin, "build_link", input).await;
    assert!(
        matches!(tool_error(&outcome), ToolError::InvalidInput { message } if message.contains("already has utm_source=bing")),
        "{:?}",
        outcome.result
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_link_follows_redirects_through_the_gate() {
    let server = Server::start().await;
    let plugin = load(example().await, example_grants(&server)).await;
    let url = server.url("/hop/2?utm_source=news&utm_medium=email&utm_campaign=spring");
    let outcome = call(&plugin, "check_link", serde_json::json!({"url": url})).await;
    let output = outcome.result.unwrap_or_else(|e| panic!("check_link: {e}"));
    assert_eq!(output["status"], 200);
    assert_eq!(output["redirects"], 3);
    assert_eq!(output["final_url"], server.url("/landing"));
    assert_eq!(output["ok"], true);
    assert_eq!(output["utm_preserved"], false, "the last hop drops the query");
    let hits = server.hits();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/hop/2", "/hop/1", "/hop/0", "/landing"]);
    assert!(hits.iter().all(|h| h.method == "HEAD" && h.idempotency_key.as_deref() == Some("idem-42")), "{hits:?}");
    assert_eq!(outcome.report.egress.len(), 4);
    assert_eq!(outcome.report.logs.len(), 4, "one log line per hop");

    let outcome =
        call(&plugin, "check_link", serde_json::json!({"url": url, "max_redirects": 1, "method": "GET"})).await;
    let output = outcome.result.unwrap_or_else(|e| panic!("check_link: {e}"));
    assert_eq!((output["ok"].as_bool(), output["stopped"].as_str()), (Some(false), Some("more than 1 redirects")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_a_host_not_granted_is_denied_and_never_sent() {
    let granted = Server::start().await;
    let other = Server::start().await;
    let plugin = load(example().await, example_grants(&granted)).await;
    let outcome = call(&plugin, "check_link", serde_json::json!({"url": other.url("/landing")})).await;
    assert!(
        matches!(tool_error(&outcome), ToolError::Denied { message } if message.contains("HTTP-request-denied")),
        "{:?}",
        outcome.result
    );
    assert!(outcome.report.egress.iter().all(|e| e.denied.is_some()), "{:?}", outcome.report.egress);
    assert!(other.hits().is_empty() && granted.hits().is_empty());

    // A redirect to a host not granted is a finding about the link, not a failure.
    let url = granted.url(&format!("/away?to={}", other.url("/landing")));
    let outcome = call(&plugin, "check_link", serde_json::json!({"url": url})).await;
    let output = outcome.result.unwrap_or_else(|e| panic!("check_link: {e}"));
    assert_eq!(output["ok"], false);
    assert!(output["stopped"].as_str().is_some_and(|s| s.contains("denied")), "{output}");
    assert_eq!(granted.hits().len(), 1);
    assert!(other.hits().is_empty(), "the host never sent the redirected request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuel_limit_stops_the_call_and_the_next_call_works() {
    let server = Server::start().await;
    let links: Vec<String> = (0..200)
        .map(|i| {
            let campaign = if i % 2 == 0 { format!("C-{}", i % 7) } else { format!("c_{}", i % 7) };
            format!("https://shop{i}.example.com/p?utm_source=Src{i}&utm_medium=e%20mail&utm_campaign={campaign}")
        })
        .collect();
    let input = serde_json::json!({"links": links});
    // Under the default budget the largest audit the schema allows fits comfortably.
    let unlimited = load(example().await, example_grants(&server)).await;
    let outcome = call(&unlimited, "audit_links", input.clone()).await;
    let report = outcome.result.as_ref().unwrap_or_else(|e| panic!("audit_links: {e}"));
    assert_eq!(report["inconsistencies"].as_array().map(Vec::len), Some(7), "C-0 … C-6 against c_0 … c_6");
    let used = outcome.report.fuel_used;
    assert!(used > 40_000_000 && used < Limits::default().fuel / 2, "fuel used: {used}");

    let limits = Limits { fuel: 40_000_000, ..Limits::default() };
    let plugin = load(example().await, example_grants(&server).limits(limits)).await;
    let outcome = call(&plugin, "audit_links", input).await;
    assert!(matches!(outcome.result, Err(CallError::FuelExhausted { limit: 40_000_000 })), "{:?}", outcome.result);
    let outcome = call(
        &plugin,
        "build_link",
        serde_json::json!({"url": "https://a.example/", "source": "a", "medium": "email", "campaign": "c"}),
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_builds_a_pure_plugin_and_its_node_tests_pass() {
    let built = template().await;
    let inspection = sandbox().inspect(&built.bytes).await.unwrap();
    assert!(inspection.capabilities.is_empty(), "{:?}", inspection.capabilities);
    let names: Vec<&str> = inspection.imports.iter().map(|i| i.name.as_str()).collect();
    assert!(
        names.iter().all(|n| !n.starts_with("tollgate:plugin/") || n.starts_with("tollgate:plugin/types")),
        "{names:?}"
    );
    assert!(names.iter().all(|n| !n.starts_with("wasi:http")), "{names:?}");
    // Grants nothing at all, and still loads and runs.
    let plugin = load(built, Grants::new()).await;
    let outcome = call(&plugin, "slugify", serde_json::json!({"text": "Crème Brûlée: a Recipe!"})).await;
    assert_eq!(outcome.result.unwrap(), serde_json::json!({"slug": "creme-brulee-a-recipe"}));
    let outcome = call(&plugin, "slugify", serde_json::json!({"text": "!!!"})).await;
    assert!(matches!(tool_error(&outcome), ToolError::InvalidInput { .. }), "{:?}", outcome.result);

    node_test(&built.project);
    node_test(&example().await.project);
}

#[test]
fn the_sdk_unit_tests_pass_natively() {
    node_test(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk-js"));
}

fn node_test(project: &Path) {
    let output = Command::new("node").arg("--test").current_dir(project).output().expect("node runs");
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && log.contains("# fail 0"), "node --test in {}:\n{log}", project.display());
}

/// Issue 14: `fetch()` (disabled in both engines: only the SDK's `http` reaches the host)
/// fails with a message saying what to use, not a trap in the engine's stubbed WASI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_says_to_use_the_sdks_http() {
    const FETCHER: &str = r#"
import { definePlugin, tool, s } from '#tollgate';
export default definePlugin({
  name: 'fetcher', version: '0.1.0', description: 'Calls fetch()',
  tools: [tool({ name: 'get', description: 'fetch()', input: s.object({}), run: () => fetch('https://example.com') })],
});
"#;
    let dir = TempDir::new().unwrap();
    let project = dir.path().join("fetcher");
    write_project(&project, package("fetcher", serde_json::json!({})), FETCHER);
    let built = build(dir, project).await;
    let plugin = load(&built, Grants::new()).await;
    let outcome = call(&plugin, "get", serde_json::json!({})).await;
    assert!(
        matches!(tool_error(&outcome), ToolError::Internal { message } if message.contains("fetch() is not available") && message.contains("`http` from '#tollgate'")),
        "{:?}",
        outcome.result
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickjs_engine_builds_smaller_and_reports_uncaught_exceptions_as_internal() {
    let built = quickjs().await;
    let example = example().await;
    assert!(
        built.bytes.len() * 3 < example.bytes.len(),
        "QuickJS {} vs StarlingMonkey {}",
        built.bytes.len(),
        example.bytes.len()
    );
    assert_eq!(Project::read(&built.project).unwrap().engine, Engine::QuickJs);
    // Fuel high enough that the 300 ms timeout, not fuel, stops the endless loop.
    let limits = Limits { timeout: Duration::from_millis(300), fuel: 1_000_000_000_000, ..Limits::default() };
    let plugin = load(built, Grants::new().log(true).limits(limits)).await;
    assert_eq!(plugin.manifest().version, "1.2.3");
    let outcome = call(&plugin, "shout", serde_json::json!({"text": "hi"})).await;
    assert_eq!(outcome.result.unwrap(), serde_json::json!({"text": "HI!"}));
    assert_eq!(outcome.report.logs[0].message, "shouting");
    assert_eq!(outcome.report.logs[0].fields, serde_json::json!({"key": "idem-42"}));

    let outcome = call(&plugin, "crash", serde_json::json!({})).await;
    assert!(
        matches!(tool_error(&outcome), ToolError::Internal { message } if message.starts_with("uncaught exception: TypeError")),
        "{:?}",
        outcome.result
    );
    let outcome = call(&plugin, "spin", serde_json::json!({})).await;
    assert!(matches!(outcome.result, Err(CallError::Timeout { .. })), "{:?}", outcome.result);
    assert!(call(&plugin, "shout", serde_json::json!({"text": "again"})).await.result.is_ok());
}

#[test]
fn build_errors_name_the_cause() {
    let toolchains = tollgate_pluginkit::toolchain::default_dir();
    let dir = TempDir::new().unwrap();
    // QuickJS cannot build the http world: refused before any toolchain runs.
    let project = dir.path().join("qjs-http");
    write_project(
        &project,
        package("qjs-http", serde_json::json!({"engine": "quickjs", "capabilities": ["http"]})),
        QUICKJS_PLUGIN,
    );
    let err = tollgate_pluginkit::js::build(&project, &toolchains, &BuildOptions::default()).unwrap_err();
    assert!(matches!(&err, BuildError::Project { message, .. } if message.contains("quickjs")), "{err}");

    // A syntax error fails the bundler, which names the file and line.
    let project = dir.path().join("broken");
    write_project(
        &project,
        package("broken", serde_json::json!({"engine": "quickjs"})),
        "export default {\n  oops(;\n",
    );
    let err = tollgate_pluginkit::js::build(&project, &toolchains, &BuildOptions::default()).unwrap_err();
    assert!(matches!(&err, BuildError::Build { log, .. } if log.contains("src/plugin.js:2")), "{err}");

    // A plugin definition the host would refuse fails the build (it runs at pre-initialisation).
    let project = dir.path().join("bad-def");
    let plugin =
        "import { definePlugin } from '#tollgate';\nexport default definePlugin({ name: 'bad-def', version: '' });\n";
    write_project(&project, package("bad-def", serde_json::json!({"engine": "quickjs"})), plugin);
    let err = tollgate_pluginkit::js::build(&project, &toolchains, &BuildOptions::default()).unwrap_err();
    assert!(matches!(&err, BuildError::Build { log, .. } if log.contains("plugin version is empty")), "{err}");
}
