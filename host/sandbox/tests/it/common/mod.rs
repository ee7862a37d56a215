//! Shared test support: where the built plugins are, a sandbox per test, and a loopback HTTP
//! server that records what reached it.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tollgate_sandbox::{CallContext, CallOutcome, Grants, Plugin, Sandbox, SandboxConfig};

/// `target/plugins/<name>.wasm`, built by `cargo xtask plugins`.
pub fn plugin_path(name: &str) -> PathBuf {
    crate::built_plugins::path(name)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// A sandbox with a compilation cache shared by all tests, so each plugin compiles once.
pub fn sandbox() -> Sandbox {
    let cache_dir = Some(target_dir().join("tollgate-test-cache"));
    Sandbox::new(SandboxConfig { max_concurrent_instances: 64, cache_dir, ..SandboxConfig::default() })
        .expect("sandbox starts")
}

pub async fn load(sandbox: &Sandbox, name: &str, grants: Grants) -> Plugin {
    sandbox.load_file(plugin_path(name), grants).await.unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

/// Grants everything misbehave imports, nothing outbound unless `hosts` say so.
pub fn misbehave_grants(hosts: &[&str]) -> Grants {
    let mut g = Grants::new()
        .log(true)
        .kv(true)
        .secret("demo", tollgate_sandbox::SecretSource::Env("TOLLGATE_TEST_DEMO_SECRET".into()));
    for h in hosts {
        g = g.allow_host(h).expect("pattern parses");
    }
    if hosts.is_empty() {
        // http must be granted for misbehave to load at all; a host no test uses.
        g = g.allow_host("https://granted-but-unused.test").expect("pattern parses");
    }
    g
}

pub fn ctx(key: &str) -> CallContext {
    CallContext { run_id: "test-run".into(), call_id: key.into(), idempotency_key: key.into() }
}

pub async fn call(plugin: &Plugin, tool: &str, input: serde_json::Value) -> CallOutcome {
    plugin.call(tool, &input.to_string(), &ctx("k1")).await
}

/// A request as the test server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A loopback server: `/ok` echoes the request headers as JSON, `/redirect?to=URL` answers
/// 302, `/big?bytes=N` sends N bytes, `/slow` never answers within a test.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let app = Router::new().fallback(any(handle)).with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        TestServer { addr, hits, _shutdown: tx }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn handle(
    State(hits): State<Arc<Mutex<Vec<Hit>>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    _body: axum::body::Bytes,
) -> Response {
    let header_list: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).to_string())).collect();
    hits.lock().unwrap().push(Hit {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: header_list.clone(),
    });
    match uri.path() {
        "/redirect" => {
            (StatusCode::FOUND, [("location", q.get("to").cloned().unwrap_or_default())], "").into_response()
        }
        "/big" => {
            let n: usize = q.get("bytes").and_then(|b| b.parse().ok()).unwrap_or(0);
            "x".repeat(n).into_response()
        }
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            "late".into_response()
        }
        _ => {
            let map: serde_json::Map<String, serde_json::Value> =
                header_list.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            axum::Json(serde_json::json!({"path": uri.path(), "headers": map})).into_response()
        }
    }
}
