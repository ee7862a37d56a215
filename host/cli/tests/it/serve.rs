//! `tollgate serve` over real sockets on 127.0.0.1 (issue 15 §1, §3, §4, §8): the real binary,
//! started as a user starts it, with tokens made by `tollgate tokens create`. Every (role ×
//! endpoint) pair of `tollgate_server::access::ACCESS` is tried; decisions carry the token's
//! name and the run continues by itself; bad bodies, rate limits and TLS are checked; SIGTERM
//! drains and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_server::Role;
use tollgate_server::access::{ACCESS, Endpoint};

use crate::anchor::World;

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A running `tollgate serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    /// Its log lines (stderr), as they come.
    pub(crate) logs: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `tollgate serve --config server.toml` in the world's folder with `config` and
    /// waits (60 s at most) for the line that says where it listens.
    pub(crate) fn start(w: &World, config: &str) -> Server {
        Server::start_with(w, "server.toml", config, &[])
    }

    /// [`Server::start`] with its config in `file` and more environment variables.
    pub(crate) fn start_with(w: &World, file: &str, config: &str, env: &[(&str, &str)]) -> Server {
        std::fs::write(w.dir.path().join(file), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--config", file])
            .envs(env.iter().copied())
            .current_dir(w.dir.path())
            .env("HOME", w.dir.path().join("home"))
            .env("TOLLGATE_DATA_DIR", w.dir.path().join("data"))
            .env("TOLLGATE_CACHE_DIR", w.dir.path().join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tollgate serve starts");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let logs = lines(Box::new(child.stderr.take().unwrap()));
        let first = stdout.recv_timeout(Duration::from_secs(60)).expect("serve says where it listens");
        let url = first.split("listening on ").nth(1).and_then(|r| r.split(' ').next()).expect(&first).to_string();
        Server { child, url, logs }
    }

    /// SIGKILL, and wait for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (30 s at most).
    pub(crate) fn terminate(mut self) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tollgate tokens create` for each role; role → token.
pub(crate) fn tokens(w: &World) -> Vec<(Role, String)> {
    Role::ALL
        .into_iter()
        .map(|role| {
            let out = w.tollgate(&["tokens", "create", "--name", &format!("{role}-1"), "--role", role.name()]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            (role, text(&out.stdout).trim().to_string())
        })
        .collect()
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

pub(crate) fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// One request: status, content type and JSON body (or the text as a JSON string).
pub(crate) async fn call(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, Value) {
    let mut req = c.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let bytes = resp.bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text(&bytes)));
    (status, kind, value)
}

/// A request that exercises `endpoint` (its resource may not exist: authorization comes first).
fn request_for(endpoint: Endpoint) -> (&'static str, &'static str, Option<&'static str>) {
    match endpoint {
        Endpoint::Whoami => ("GET", "/v1/whoami", None),
        Endpoint::ListRuns => ("GET", "/v1/runs", None),
        Endpoint::ShowRun => ("GET", "/v1/runs/run_nope", None),
        Endpoint::ListApprovals => ("GET", "/v1/approvals", None),
        Endpoint::ShowApproval => ("GET", "/v1/approvals/ap_nope", None),
        Endpoint::DecideApproval => ("POST", "/v1/approvals/ap_nope/deny", Some(r#"{"reason":"no"}"#)),
        Endpoint::VerifyAudit => ("GET", "/v1/audit/verify", None),
        Endpoint::ListTokens => ("GET", "/v1/tokens", None),
        Endpoint::CreateToken => ("POST", "/v1/tokens", Some(r#"{"name":"bad name!","role":"viewer"}"#)),
        Endpoint::RevokeToken => ("DELETE", "/v1/tokens/tok_000000000000", None),
        Endpoint::ListWorkflows => ("GET", "/v1/workflows", None),
        Endpoint::ShowWorkflow => ("GET", "/v1/workflows/nope", None),
        Endpoint::DeployWorkflow => ("POST", "/v1/workflows", Some(r#"{"file":"nope.toml"}"#)),
        Endpoint::SwitchWorkflow => ("POST", "/v1/workflows/nope/disable", None),
        Endpoint::StartRun => ("POST", "/v1/runs", Some(r#"{"workflow":"nope"}"#)),
        Endpoint::ControlRun => ("POST", "/v1/runs/run_nope/pause", None),
    }
}

#[test]
fn every_role_reaches_exactly_the_endpoints_the_access_table_gives_it() {
    let w = World::new();
    let tokens = tokens(&w);
    // 30 bad tokens are tried below, from one address: more than the default allows.
    let server = Server::start(&w, "listen = \"127.0.0.1:0\"\n[limits]\nfailed_auth_per_minute = 1000\n");
    let c = client();
    block(async {
        let (status, _, body) = call(&c, "GET", &format!("{}/healthz", server.url), None, None).await;
        assert_eq!((status, body), (200, Value::String("ok\n".into())));
        assert_eq!(call(&c, "GET", &format!("{}/readyz", server.url), None, None).await.0, 200);
        let mut checked = 0;
        for (endpoint, roles) in ACCESS {
            let (method, path, body) = request_for(*endpoint);
            let url = format!("{}{path}", server.url);
            // No token, a malformed one, an unknown one: 401 alike, as problem+json.
            for bad in [None, Some("nope"), Some(&*format!("tok_000000000000.{}", "a".repeat(64)))] {
                let (status, kind, problem) = call(&c, method, &url, bad, body).await;
                assert_eq!(status, 401, "{endpoint:?} with {bad:?}: {problem}");
                assert_eq!(kind, "application/problem+json");
                assert_eq!(problem["type"], "urn:tollgate:problem:unauthenticated");
            }
            for (role, token) in &tokens {
                let (status, _, answer) = call(&c, method, &url, Some(token), body).await;
                if roles.contains(role) {
                    assert!(status != 401 && status != 403, "{role} must reach {endpoint:?}: {status} {answer}");
                } else {
                    assert_eq!(status, 403, "{role} must not reach {endpoint:?}: {answer}");
                    assert_eq!(answer["type"], "urn:tollgate:problem:forbidden");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, ACCESS.len() * Role::ALL.len());
        let (_, _, me) = call(&c, "GET", &format!("{}/v1/whoami", server.url), Some(&tokens[2].1), None).await;
        assert_eq!((me["name"].as_str(), me["role"].as_str()), (Some("approver-1"), Some("approver")));
    });
    assert_eq!(server.terminate(), Some(0), "SIGTERM drains and exits 0");
}

#[test]
fn an_approver_token_decides_as_its_name_and_the_run_continues_by_itself() {
    let w = World::new();
    let (run_id, approval_id) = w.waiting_run();
    let tokens = tokens(&w);
    let token = |role: Role| tokens.iter().find(|(r, _)| *r == role).unwrap().1.clone();
    let server = Server::start(&w, "listen = \"127.0.0.1:0\"\n");
    let c = client();
    block(async {
        let base = &server.url;
        let (status, _, pending) =
            call(&c, "GET", &format!("{base}/v1/approvals"), Some(&token(Role::Viewer)), None).await;
        assert_eq!(status, 200);
        assert_eq!(pending["approvals"][0]["id"], json!(approval_id));
        assert_eq!(pending["approvals"][0]["input"], json!({"note": "hello"}));
        assert_eq!(pending["next"], Value::Null, "one page");
        let (status, _, problem) =
            call(&c, "GET", &format!("{base}/v1/approvals?after=x"), Some(&token(Role::Viewer)), None).await;
        assert_eq!(status, 400, "{problem}");
        let approve = format!("{base}/v1/approvals/{approval_id}/approve");
        // Bad bodies are refused before anything is decided.
        let (status, kind, problem) = call(&c, "POST", &approve, Some(&token(Role::Approver)), Some("{not json")).await;
        assert_eq!((status, kind.as_str()), (400, "application/problem+json"), "{problem}");
        let (status, _, problem) =
            call(&c, "POST", &approve, Some(&token(Role::Approver)), Some(r#"{"edit":{"note":"x"},"as":"ceo"}"#)).await;
        assert_eq!(status, 400, "unknown fields, such as a name to act as, are refused: {problem}");
        let (status, _, decided) = call(&c, "POST", &approve, Some(&token(Role::Approver)), Some("{}")).await;
        assert_eq!(status, 200, "{decided}");
        assert_eq!(
            (decided["status"].as_str(), decided["decided_by"].as_str()),
            (Some("approved"), Some("approver-1"))
        );
        let (status, _, again) = call(&c, "POST", &approve, Some(&token(Role::Approver)), Some("{}")).await;
        assert_eq!(status, 409, "decided once: {again}");
        // The run continues in the server once the decision is committed: no `runs resume`.
        let mut run = Value::Null;
        for _ in 0..300 {
            run = call(&c, "GET", &format!("{base}/v1/runs/{run_id}"), Some(&token(Role::Auditor)), None).await.2;
            if run["status"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["approvals"][0]["decided_by"], "approver-1");
        assert_eq!(run["tool_calls"][0]["status"], "done", "{run}");
        // Runs come in pages: a full page has a cursor, the page after the last run is empty.
        let (_, _, page) = call(&c, "GET", &format!("{base}/v1/runs?limit=1"), Some(&token(Role::Viewer)), None).await;
        assert_eq!(page["runs"][0]["id"], json!(run_id), "{page}");
        let next = page["next"].as_str().expect("a full page has a next cursor").to_string();
        let (_, _, rest) =
            call(&c, "GET", &format!("{base}/v1/runs?limit=1&after={next}"), Some(&token(Role::Viewer)), None).await;
        assert_eq!((rest["runs"].as_array().map(Vec::len), &rest["next"]), (Some(0), &Value::Null), "{rest}");
        let (_, _, verified) =
            call(&c, "GET", &format!("{base}/v1/audit/verify"), Some(&token(Role::Auditor)), None).await;
        assert_eq!(verified["ok"], true, "{verified}");
    });
    assert_eq!(server.terminate(), Some(0));
    let resume = w.tollgate(&["runs", "resume", &run_id]);
    assert!(text(&resume.stderr).contains("already ended (completed)"), "{}", text(&resume.stderr));
    let export = text(&w.tollgate(&["audit", "export"]).stdout);
    let granted = export.lines().find(|l| l.contains("approval.granted")).expect("the decision is audited");
    assert!(granted.contains(r#""by":"approver-1""#), "{granted}");
    for (_, token) in &tokens {
        let secret = token.split('.').nth(1).unwrap();
        assert!(!export.contains(secret), "a token's secret is in the audit log");
    }
    assert_eq!(export.matches("\"token.created\"").count(), 5, "each token's creation is audited");
}

#[test]
fn revoked_tokens_limits_and_oversized_bodies_get_problems() {
    let w = World::new();
    let tokens = tokens(&w);
    let admin = tokens[0].1.clone();
    let viewer = tokens[4].1.clone();
    let server =
        Server::start(&w, "listen = \"127.0.0.1:0\"\n[limits]\nmax_body = \"1KiB\"\nrequests_per_minute = 5\n");
    let c = client();
    block(async {
        let base = &server.url;
        let big = format!(r#"{{"name":"{}","role":"viewer"}}"#, "a".repeat(2048));
        let (status, kind, problem) = call(&c, "POST", &format!("{base}/v1/tokens"), Some(&admin), Some(&big)).await;
        assert_eq!((status, kind.as_str()), (413, "application/problem+json"), "{problem}");
        let (status, _, made) =
            call(&c, "POST", &format!("{base}/v1/tokens"), Some(&admin), Some(r#"{"name":"temp","role":"viewer"}"#))
                .await;
        assert_eq!(status, 201, "{made}");
        let temp = made["token"].as_str().unwrap().to_string();
        let id = made["id"].as_str().unwrap();
        assert_eq!(call(&c, "GET", &format!("{base}/v1/runs"), Some(&temp), None).await.0, 200);
        assert_eq!(call(&c, "DELETE", &format!("{base}/v1/tokens/{id}"), Some(&admin), None).await.0, 204);
        assert_eq!(call(&c, "GET", &format!("{base}/v1/runs"), Some(&temp), None).await.0, 401, "revoked");
        let (_, _, listed) = call(&c, "GET", &format!("{base}/v1/tokens"), Some(&admin), None).await;
        let listed = listed.to_string();
        assert!(!listed.contains("secret") && !listed.contains(temp.split('.').nth(1).unwrap()), "{listed}");
        // The viewer's budget: 5 a minute, then 429 with Retry-After.
        for _ in 0..5 {
            assert_eq!(call(&c, "GET", &format!("{base}/v1/runs"), Some(&viewer), None).await.0, 200);
        }
        let resp = c.get(format!("{base}/v1/runs")).bearer_auth(&viewer).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    });
}

#[test]
fn an_address_guessing_tokens_is_refused_before_any_lookup() {
    let w = World::new();
    let tokens = tokens(&w);
    let server = Server::start(&w, "listen = \"127.0.0.1:0\"\n[limits]\nfailed_auth_per_minute = 3\n");
    let c = client();
    block(async {
        let url = format!("{}/v1/runs", server.url);
        let guess = format!("tok_000000000000.{}", "b".repeat(64));
        for _ in 0..3 {
            assert_eq!(call(&c, "GET", &url, Some(&guess), None).await.0, 401);
        }
        // Spent: even a valid token from this address waits for the next minute.
        let (status, _, problem) = call(&c, "GET", &url, Some(&tokens[1].1), None).await;
        assert_eq!((status, problem["type"].as_str()), (429, Some("urn:tollgate:problem:rate-limited")), "{problem}");
        assert_eq!(call(&c, "GET", &format!("{}/healthz", server.url), None, None).await.0, 200, "not counted");
    });
}

#[test]
fn https_with_the_configured_certificate_and_no_plain_http_on_its_port() {
    let w = World::new();
    let tokens = tokens(&w);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    std::fs::write(w.dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(w.dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let mut server = Server::start(
        &w,
        "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    );
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let tls = reqwest::Client::builder().add_root_certificate(root).timeout(Duration::from_secs(30)).build().unwrap();
    block(async {
        let (status, _, me) = call(&tls, "GET", &format!("{}/v1/whoami", server.url), Some(&tokens[1].1), None).await;
        assert_eq!((status, me["role"].as_str()), (200, Some("operator")));
        let plain = server.url.replace("https://", "http://");
        assert!(client().get(format!("{plain}/healthz")).send().await.is_err(), "plain HTTP on the TLS port");
        let (status, _, _) = call(&tls, "GET", &format!("{}/v1/runs", server.url), Some("tok_x.y"), None).await;
        assert_eq!(status, 401);
    });
    let logs = std::mem::replace(&mut server.logs, mpsc::channel().1);
    assert_eq!(server.terminate(), Some(0));
    // `log_format = "json"`: every line is one JSON object; the token never appears.
    let lines: Vec<String> = logs.iter().collect();
    let parsed: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    assert!(parsed.iter().any(|l| l["fields"]["why"] == "malformed token"), "{lines:?}");
    assert!(
        parsed.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("shutting down"))),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains(tokens[1].1.split('.').nth(1).unwrap())));
}

#[test]
fn a_bad_config_is_refused_with_its_position_and_plain_http_off_loopback_needs_consent() {
    let w = World::new();
    std::fs::write(w.dir.path().join("bad.toml"), "listen = \"127.0.0.1:0\"\nlisten_on = 1\n").unwrap();
    let out = w.tollgate(&["serve", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad.toml:2:1: unknown field `listen_on`"), "{}", text(&out.stderr));
    std::fs::write(w.dir.path().join("open.toml"), "listen = \"0.0.0.0:0\"\n").unwrap();
    let out = w.tollgate(&["serve", "--config", "open.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a loopback address: add a [tls] section"), "{}", text(&out.stderr));
}

#[test]
fn tokens_are_listed_and_revoked_from_the_command_line_and_never_shown_twice() {
    let w = World::new();
    let made = w.tollgate(&["tokens", "create", "--name", "ada@finance", "--role", "approver", "--expires", "90d"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let token = text(&made.stdout).trim().to_string();
    let id = token.split('.').next().unwrap().to_string();
    assert!(text(&made.stderr).contains("shown once"), "{}", text(&made.stderr));
    let again = w.tollgate(&["tokens", "create", "--name", "ada@finance", "--role", "approver"]);
    assert_eq!(again.status.code(), Some(2), "a live name and role is taken");
    assert!(
        text(&again.stderr).contains("a live approver token named `ada@finance` exists"),
        "{}",
        text(&again.stderr)
    );
    // One identity may hold a token per role.
    let viewer = w.tollgate(&["tokens", "create", "--name", "ada@finance", "--role", "viewer"]);
    assert!(viewer.status.success(), "{}", text(&viewer.stderr));
    let bad = w.tollgate(&["tokens", "create", "--name", "ada", "--role", "root"]);
    assert_eq!(bad.status.code(), Some(2));

    let list = text(&w.tollgate(&["tokens", "list"]).stdout);
    assert!(
        list.contains(&id) && list.contains("ada@finance") && list.contains("approver") && list.contains("live"),
        "{list}"
    );
    assert!(!list.contains(token.split('.').nth(1).unwrap()), "the secret is never listed");
    let json: Value = serde_json::from_slice(&w.tollgate(&["tokens", "list", "--json"]).stdout).unwrap();
    assert!(json[0]["expires_at"].as_i64().is_some_and(|at| at > 0), "{json}");

    assert!(w.tollgate(&["tokens", "revoke", &id]).status.success());
    assert!(text(&w.tollgate(&["tokens", "list"]).stdout).contains("revoked"));
    assert_eq!(w.tollgate(&["tokens", "revoke", &id]).status.code(), Some(1), "revoked once");
    // Revoked: the name is free again for that role.
    assert!(w.tollgate(&["tokens", "create", "--name", "ada@finance", "--role", "approver"]).status.success());
}
