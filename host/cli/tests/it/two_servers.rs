//! Two `tollgate serve` processes on one data dir (issue 15 §5, §8): the flagship example is
//! started over the API on server A, which is killed with SIGKILL while it holds the run's
//! lease with the campaign update claimed; server B takes the run over once that lease runs
//! out, finishes it, and the stand-ins show every effect exactly once — no approval lost, no
//! duplicated side effect.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_standins::{StandIns, Tokens};

use crate::anchor::World;
use crate::serve::{Server, block, call, client, text};

/// The campaign-review example in `flows/`, its plugins beside it, named relatively.
fn flagship(w: &World) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/campaign-review");
    let flows = w.dir.path().join("flows");
    std::fs::create_dir_all(flows.join("plugins")).unwrap();
    let mut workflow = std::fs::read_to_string(example.join("workflow.toml")).unwrap();
    for name in ["ads", "email", "crm"] {
        std::fs::copy(crate::built_plugins::path(name), flows.join(format!("plugins/{name}.wasm"))).unwrap();
        workflow = workflow.replace(&format!("../../target/plugins/{name}.wasm"), &format!("plugins/{name}.wasm"));
    }
    std::fs::write(flows.join("workflow.toml"), workflow).unwrap();
    std::fs::copy(example.join("turns.toml"), flows.join("turns.toml")).unwrap();
}

fn token(w: &World, name: &str, role: &str) -> String {
    let out = w.tollgate(&["tokens", "create", "--name", name, "--role", role]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Polls `GET /v1/runs/{id}` on `base` (60 s at most) until `done` says so.
async fn wait_run(c: &reqwest::Client, base: &str, id: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, run) = call(c, "GET", &format!("{base}/v1/runs/{id}"), Some(token), None).await;
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "timed out: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pending(run: &Value) -> Option<String> {
    run["approvals"]
        .as_array()?
        .iter()
        .find(|a| a["status"] == "pending")
        .map(|a| a["id"].as_str().unwrap().to_string())
}

#[test]
fn a_server_killed_mid_run_is_taken_over_by_the_other_with_no_effect_twice() {
    let w = World::new();
    flagship(&w);
    let tokens = Tokens::default();
    let (standins, _background) = StandIns::start_blocking(tokens.clone()).expect("stand-ins");
    for vendor in [&standins.meta, &standins.sendgrid, &standins.hubspot] {
        vendor.set_deduplicate(false);
    }
    let deployed = w.tollgate(&["workflows", "deploy", "flows/workflow.toml"]);
    assert!(deployed.status.success(), "{}", text(&deployed.stderr));
    let (operator, approver, auditor) =
        (token(&w, "olga", "operator"), token(&w, "ada", "approver"), token(&w, "audit", "auditor"));
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[worker]\nlease = \"2s\"\n[runs]\nupstreams = {{ \"graph.facebook.com\" = \"{}\", \
         \"api.sendgrid.com\" = \"{}\", \"api.hubapi.com\" = \"{}\" }}\n",
        standins.meta.base_url(),
        standins.sendgrid.base_url(),
        standins.hubspot.base_url()
    );
    let env = [
        ("META_ACCESS_TOKEN", tokens.meta.as_str()),
        ("SENDGRID_API_KEY", tokens.sendgrid.as_str()),
        ("HUBSPOT_TOKEN", tokens.hubspot.as_str()),
    ];
    // A stops for good right after it claims its first call with an effect: the campaign update.
    let mut a_env = env.to_vec();
    a_env.push(("TOLLGATE_TEST_PAUSE_AT", "calls_claimed:1"));
    let mut a = Server::start_with(&w, "a.toml", &config, &a_env);
    let b = Server::start_with(&w, "b.toml", &config, &env);
    let c = client();
    let run_id = block(async {
        let (status, _, started) = call(
            &c,
            "POST",
            &format!("{}/v1/runs", a.url),
            Some(&operator),
            Some(&json!({"workflow": "campaign-review"}).to_string()),
        )
        .await;
        assert_eq!(status, 201, "{started}");
        let id = started["id"].as_str().unwrap().to_string();
        let waiting = wait_run(&c, &a.url, &id, &auditor, |r| pending(r).is_some()).await;
        let approval = pending(&waiting).unwrap();
        let (status, _, decided) =
            call(&c, "POST", &format!("{}/v1/approvals/{approval}/approve", a.url), Some(&approver), Some("{}")).await;
        assert_eq!(status, 200, "{decided}");
        id
    });
    // A pauses holding the lease and the claimed update; kill -9 it there.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = a.logs.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("A pauses");
        if line.contains("tollgate: paused at calls_claimed#1") {
            break;
        }
    }
    a.kill();
    block(async {
        // B takes the run over once A's lease runs out, and it reaches the email's approval.
        let waiting = wait_run(&c, &b.url, &run_id, &auditor, |r| {
            r["status"] == "waiting_approval" && r["approvals"].as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
        let approval = pending(&waiting).expect("the email waits");
        let (status, _, _) =
            call(&c, "POST", &format!("{}/v1/approvals/{approval}/approve", b.url), Some(&approver), Some("{}")).await;
        assert_eq!(status, 200);
        let done =
            wait_run(&c, &b.url, &run_id, &auditor, |r| r["status"] != "waiting_approval" && r["status"] != "running")
                .await;
        assert_eq!(done["status"], "completed", "{done}");
        let approvals = done["approvals"].as_array().unwrap();
        assert_eq!(approvals.len(), 2, "no approval asked twice, none lost: {done}");
        assert!(approvals.iter().all(|a| a["status"] == "consumed"), "{done}");
        let (_, _, verified) = call(&c, "GET", &format!("{}/v1/audit/verify", b.url), Some(&auditor), None).await;
        assert_eq!(verified["ok"], true, "{verified}");
    });
    // Every effect once: the campaign paused (a retried update carries the same key), one
    // email, one new note.
    let campaign = standins.meta_state().campaign("120210000000000101").unwrap();
    assert_eq!(campaign.status, "PAUSED");
    let keys: std::collections::BTreeSet<Option<String>> =
        standins.meta.requests().into_iter().filter(|r| r.method == "POST").map(|r| r.idempotency_key).collect();
    assert_eq!(keys.len(), 1, "one update, whatever was retried: {keys:?}");
    assert_eq!(standins.sendgrid_state().sent().len(), 1);
    assert_eq!(standins.hubspot_state().notes().len(), 2, "the seeded note and one new one");
    // B advanced what A left: the audit log names both processes' claims on the update.
    let export = text(&w.tollgate(&["audit", "export"]).stdout);
    let claims = export.lines().filter(|l| l.contains("\"tool.claimed\"") && l.contains("ads.update_campaign")).count();
    assert!(claims >= 2, "A's claim and B's take-over: {claims}");
    assert_eq!(b.terminate(), Some(0));
}
