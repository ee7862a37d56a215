//! Starting and stopping: custom tokens, shutdown on drop, the blocking runtime for sync tests,
//! and the `tollgate-standins` binary.

use crate::common;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{get, send_blocking};
use tollgate_standins::{StandIns, Tokens};

/// Waits (bounded) until nothing accepts connections on `addr` any more.
fn wait_closed(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test]
async fn custom_tokens_distinct_ports_and_shutdown_on_drop() {
    let tokens = Tokens { hubspot: "hs-custom".into(), meta: "meta-custom".into(), sendgrid: "SG.custom".into() };
    let s = StandIns::start(tokens).await.expect("start");
    let addrs = [s.hubspot.addr(), s.meta.addr(), s.sendgrid.addr()];
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() != 0));
    assert!(addrs[0] != addrs[1] && addrs[1] != addrs[2] && addrs[0] != addrs[2]);
    assert_eq!(s.hubspot.base_url(), format!("http://{}", addrs[0]));

    let ok = get(addrs[0], "/crm/v3/objects/contacts/1001", &[("Authorization", "Bearer hs-custom")]).await;
    assert_eq!(ok.status, 200);
    let old = get(addrs[0], "/crm/v3/objects/contacts/1001", &[("Authorization", "Bearer hubspot-test-token")]).await;
    assert_eq!(old.status, 401);
    let ok = get(addrs[1], "/v21.0/act_1234567890?access_token=meta-custom&fields=name,currency", &[]).await;
    assert_eq!(ok.json(), serde_json::json!({"name": "Tollgate Demo Store", "currency": "USD"}));

    drop(s);
    let closed = tokio::task::spawn_blocking(move || addrs.iter().all(|a| wait_closed(*a))).await.expect("join");
    assert!(closed, "servers still accepting after drop");
}

#[test]
fn blocking_runtime_serves_sync_callers_and_stops() {
    let (s, runtime) = StandIns::start_blocking(Tokens::default()).expect("start");
    let addr = s.sendgrid.addr();
    let r = send_blocking(
        addr,
        "POST",
        "/v3/mail/send",
        &[("Authorization", "Bearer SG.test-token"), ("Content-Type", "application/json")],
        br#"{"personalizations":[{"to":[{"email":"a@b.example"}]}],"from":{"email":"c@d.example"},
            "subject":"s","content":[{"type":"text/plain","value":"v"}]}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(s.sendgrid.side_effects(), 1);
    assert_eq!(s.sendgrid_state().sent()[0].to, ["a@b.example"]);
    drop(runtime);
    assert!(wait_closed(addr), "server still accepting after the runtime stopped");
    drop(s);
}

#[tokio::test]
async fn blocking_start_also_works_inside_a_runtime() {
    let (s, runtime) = StandIns::start_blocking(Tokens::default()).expect("start");
    let r =
        get(s.hubspot.addr(), "/crm/v3/objects/contacts/1002", &[("Authorization", "Bearer hubspot-test-token")]).await;
    assert_eq!(r.json()["properties"]["firstname"], "Ben");
    drop(s);
    tokio::task::spawn_blocking(move || drop(runtime)).await.expect("join");
}

/// Kills the child on every exit path.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn binary_prints_urls_and_serves() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tollgate-standins"))
            .args(["--json", "--meta-token", "from-cli"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the binary"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("binary printed nothing");
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(v["meta"]["token"], "from-cli");
    assert_eq!(v["sendgrid"]["token"], "SG.test-token");
    let base = v["meta"]["base_url"].as_str().expect("base_url");
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    let r = send_blocking(addr, "GET", "/v21.0/120210000000000101?fields=name&access_token=from-cli", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "Black Friday Retargeting - US");
}
