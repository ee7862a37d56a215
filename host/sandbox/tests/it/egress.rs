//! Data-driven egress gate cases: one folder per case under `tests/egress_cases/`, each with a
//! `case.json` holding the operator's grants, the `misbehave` plugin's request, and what must
//! happen (tool error kind, what the egress record says, what reached the server).
//! Placeholders: `{port}` is the test server's port, `{token_file}` a file holding the
//! credential `tok-SECRET-123`.

use crate::common;

use std::path::Path;

use serde_json::Value;
use tollgate_contract::RequestScope;
use tollgate_sandbox::{Grants, Limits, SecretSource, Upstream};

const TOKEN: &str = "tok-SECRET-123";

fn grants_from(spec: &Value) -> Grants {
    let mut g = Grants::new().log(true).kv(true).secret("demo", SecretSource::Env("TOLLGATE_TEST_UNSET".into()));
    for h in spec["hosts"].as_array().into_iter().flatten() {
        g = g.allow_host(h.as_str().unwrap()).unwrap();
    }
    for (host, ip) in spec["resolve"].as_object().into_iter().flatten() {
        g = g.resolve(host, vec![ip.as_str().unwrap().parse().unwrap()]);
    }
    for r in spec["open_ranges"].as_array().into_iter().flatten() {
        g = g.open_range(r.as_str().unwrap().parse().unwrap());
    }
    for (host, url) in spec["upstreams"].as_object().into_iter().flatten() {
        g = g.upstream(host, Upstream::parse(url.as_str().unwrap()).unwrap());
    }
    for (tool, scopes) in spec["requests"].as_object().into_iter().flatten() {
        let scopes =
            scopes.as_array().unwrap().iter().map(|s| RequestScope::parse(s.as_str().unwrap()).unwrap()).collect();
        g = g.tool_requests(tool, scopes);
    }
    for (name, src) in spec["credentials"].as_object().into_iter().flatten() {
        g = g.credential(name, SecretSource::parse(src.as_str().unwrap()).unwrap());
    }
    let mut limits = Limits::default();
    if let Some(l) = spec.get("limits") {
        let mut base = serde_json::to_value(&limits).unwrap();
        for (k, v) in l.as_object().unwrap() {
            base[k] = v.clone();
        }
        limits = serde_json::from_value(base).unwrap();
    }
    g.limits(limits)
}

async fn run_case(dir: &Path, token_file: &Path) -> Result<(), String> {
    let server = common::TestServer::start().await;
    let raw = std::fs::read_to_string(dir.join("case.json")).map_err(|e| e.to_string())?;
    let raw =
        raw.replace("{port}", &server.port().to_string()).replace("{token_file}", &token_file.display().to_string());
    let case: Value = serde_json::from_str(&raw).map_err(|e| format!("case.json: {e}"))?;
    let sandbox = common::sandbox();
    let loaded = sandbox.load_file(common::plugin_path("misbehave"), grants_from(&case["grants"])).await;
    if let Some(want) = case["expect"]["load_error_contains"].as_str() {
        return match loaded {
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!("load error `{e}` lacks `{want}`")),
            Ok(_) => Err(format!("loaded, want a load error containing `{want}`")),
        };
    }
    let plugin = loaded.map_err(|e| format!("load failed: {e}"))?;
    let tool = case["tool"].as_str().unwrap_or("fetch");
    let outcome = common::call(&plugin, tool, case["input"].clone()).await;
    let expect = &case["expect"];
    let report = &outcome.report;
    let mut problems = Vec::new();
    let output_text = outcome.result.as_ref().map(|v| v.to_string()).unwrap_or_default();

    let want_ok = expect["ok"].as_bool().unwrap_or(true);
    if outcome.result.is_ok() != want_ok {
        problems.push(format!("ok = {}, want {want_ok}: {:?}", outcome.result.is_ok(), outcome.result));
    }
    if let Some(kind) = expect["error_kind"].as_str() {
        let got = outcome.result.as_ref().err().map(|e| e.kind());
        if got != Some(kind) {
            problems.push(format!("error kind {got:?}, want {kind}"));
        }
    }
    if let Some(s) = expect["error_contains"].as_str() {
        let text = outcome.result.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
        if !text.contains(s) {
            problems.push(format!("error `{text}` lacks `{s}`"));
        }
    }
    if let Some(status) = expect["output_status"].as_u64()
        && outcome.result.as_ref().ok().and_then(|v| v["status"].as_u64()) != Some(status)
    {
        problems.push(format!("output status, want {status}: {output_text}"));
    }
    if let Some(s) = expect["output_contains"].as_str()
        && !output_text.contains(s)
    {
        problems.push(format!("output lacks `{s}`: {output_text}"));
    }
    if let Some(s) = expect["output_not_contains"].as_str()
        && (output_text.contains(s) || serde_json::to_string(report).unwrap().contains(s))
    {
        problems.push(format!("output or report contains `{s}`"));
    }
    if let Some(s) = expect["egress_denied_contains"].as_str()
        && !report.egress.iter().any(|e| e.denied.as_deref().is_some_and(|d| d.contains(s)))
    {
        problems.push(format!("no egress record denied with `{s}`: {:?}", report.egress));
    }
    if let Some(want) = expect.get("credentials_scrubbed") {
        let got = serde_json::json!(report.credentials_scrubbed);
        if &got != want {
            problems.push(format!("credentials scrubbed {got}, want {want}"));
        }
    }
    let hits = server.hits();
    if let Some(n) = expect["server_hits"].as_u64()
        && hits.len() as u64 != n
    {
        problems.push(format!("server saw {} requests, want {n}", hits.len()));
    }
    for (name, want) in expect["server_header"].as_object().into_iter().flatten() {
        let got = hits.last().and_then(|h| h.header(name));
        if got != want.as_str() {
            problems.push(format!("server saw header {name} = {got:?}, want {want}"));
        }
    }
    for name in expect["server_header_absent"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        if hits.iter().any(|h| h.header(name).is_some()) {
            problems.push(format!("server saw header {name}, which must not be sent"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n    ")) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_cases() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/egress_cases");
    let mut cases: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 20, "expected the egress case folders, found {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run_case(case, &token_file).await {
            failures.push(format!("{}:\n    {why}", case.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(failures.is_empty(), "{} of {} egress cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
