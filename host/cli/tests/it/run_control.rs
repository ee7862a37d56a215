//! Operators stopping and continuing runs (issue 15 §3): pause, resume and cancel over the API
//! and on the command line. A paused run is advanced by nobody — not by a decision, not by the
//! server's takeover — until resumed; then it goes on from where it was and its call runs once.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_server::Role;

use crate::anchor::World;
use crate::serve::{Server, block, call, client, text, tokens};

#[test]
fn a_paused_run_waits_for_resume_whatever_else_happens_and_a_cancelled_one_ends() {
    let w = World::new();
    let (run_id, approval_id) = w.waiting_run();
    let (other_run, other_approval) = w.waiting_run();
    let tokens = tokens(&w);
    let token = |role: Role| tokens.iter().find(|(r, _)| *r == role).unwrap().1.clone();
    // A short lease: the takeover looks for runs to continue every second.
    let server = Server::start(&w, "listen = \"127.0.0.1:0\"\n[worker]\nlease = \"2s\"\n");
    let c = client();
    block(async {
        let base = &server.url;
        let operator = token(Role::Operator);
        let run_url = format!("{base}/v1/runs/{run_id}");
        let (status, _, paused) =
            call(&c, "POST", &format!("{run_url}/pause"), Some(&operator), Some(r#"{"reason":"budget review first"}"#))
                .await;
        assert_eq!(status, 200, "{paused}");
        assert_eq!(paused["status"], "paused");
        assert_eq!(paused["status_detail"], "paused by operator-1: budget review first");
        let (status, _, twice) = call(&c, "POST", &format!("{run_url}/pause"), Some(&operator), None).await;
        assert_eq!((status, &twice["type"]), (409, &json!("urn:tollgate:problem:conflict")), "{twice}");
        let (status, _, bad) =
            call(&c, "POST", &format!("{run_url}/pause"), Some(&operator), Some(r#"{"reason":"x","as":"ceo"}"#)).await;
        assert_eq!(status, 400, "unknown fields are refused: {bad}");

        // A decision while paused is recorded, but nothing runs: the run stays paused across
        // several takeover rounds.
        let approve = format!("{base}/v1/approvals/{approval_id}/approve");
        let (status, _, decided) = call(&c, "POST", &approve, Some(&token(Role::Approver)), Some("{}")).await;
        assert_eq!(status, 200, "{decided}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let run = call(&c, "GET", &run_url, Some(&operator), None).await.2;
        assert_eq!(run["status"], "paused", "{run}");
        assert_eq!(run["tool_calls"][0]["status"], "waiting_approval", "nothing ran while paused: {run}");

        let (status, _, resumed) = call(&c, "POST", &format!("{run_url}/resume"), Some(&operator), None).await;
        assert_eq!((status, &resumed["status"]), (200, &json!("running")), "{resumed}");
        let run = wait_for(&c, &run_url, &operator, "completed").await;
        assert_eq!(run["tool_calls"][0]["status"], "done", "{run}");
        let (status, _, ended) = call(&c, "POST", &format!("{run_url}/resume"), Some(&operator), None).await;
        assert_eq!(status, 409, "an ended run does not resume: {ended}");

        // Cancelling ends the other run and denies its pending approval.
        let other_url = format!("{base}/v1/runs/{other_run}");
        let (status, _, cancelled) =
            call(&c, "POST", &format!("{other_url}/cancel"), Some(&operator), Some(r#"{"reason":"wrong account"}"#))
                .await;
        assert_eq!((status, &cancelled["status"]), (200, &json!("cancelled")), "{cancelled}");
        let run = call(&c, "GET", &other_url, Some(&operator), None).await.2;
        assert_eq!(run["status"], "cancelled");
        assert_eq!(run["approvals"][0]["id"], json!(other_approval));
        assert_eq!(run["approvals"][0]["status"], "denied", "{run}");
        let (status, _, again) = call(&c, "POST", &format!("{other_url}/cancel"), Some(&operator), None).await;
        assert_eq!(status, 409, "{again}");
        let (status, _, missing) =
            call(&c, "POST", &format!("{base}/v1/runs/run_nope/pause"), Some(&operator), None).await;
        assert_eq!(status, 404, "{missing}");
    });
    assert_eq!(server.terminate(), Some(0));
    let export = text(&w.tollgate(&["audit", "export"]).stdout);
    let paused = export.lines().find(|l| l.contains("\"run.paused\"")).expect("the pause is audited");
    assert!(paused.contains(r#""by":"operator-1""#) && paused.contains("budget review first"), "{paused}");
    assert!(export.lines().any(|l| l.contains("\"run.resumed\"") && l.contains(r#""by":"operator-1""#)));
    assert!(export.lines().any(|l| l.contains("\"run.ended\"") && l.contains("wrong account")));
    assert!(w.tollgate(&["audit", "verify"]).status.success());
}

#[test]
fn on_the_command_line_a_paused_run_is_left_alone_until_runs_resume() {
    let w = World::new();
    let (run_id, approval_id) = w.waiting_run();
    let out = w.tollgate(&["runs", "pause", &run_id, "--reason", "lunch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(w.tollgate(&["approvals", "approve", &approval_id]).status.success());
    // `runs show` says paused; a second pause is refused.
    let show: Value = serde_json::from_slice(&w.tollgate(&["runs", "show", &run_id, "--json"]).stdout).unwrap();
    assert_eq!(show["run"]["status"], "paused");
    assert!(!w.tollgate(&["runs", "pause", &run_id]).status.success());
    // Resume unpauses and advances: the approved call runs and the run completes.
    let out = w.tollgate(&["runs", "resume", &run_id]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let show: Value = serde_json::from_slice(&w.tollgate(&["runs", "show", &run_id, "--json"]).stdout).unwrap();
    assert_eq!(show["run"]["status"], "completed");
    assert_eq!(show["tool_calls"].as_array().map(Vec::len), Some(1));
}

/// Polls the run (30 s at most) until it has `status`; the run as last seen.
async fn wait_for(c: &reqwest::Client, url: &str, token: &str, status: &str) -> Value {
    let mut run = Value::Null;
    for _ in 0..300 {
        run = call(c, "GET", url, Some(token), None).await.2;
        if run["status"] == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], status, "{run}");
    run
}
