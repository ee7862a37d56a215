//! Deployed workflows and runs started over the API (issue 15 §2, §3), through the real binary:
//! `tollgate workflows deploy` as a user types it, `POST /v1/workflows` from the server's
//! `workflows_dir`, `POST /v1/runs` once per `Idempotency-Key`, a run pinned to the version it
//! started with while a newer one is deployed, and the kill switch.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_server::Role;

use crate::anchor::{TURNS, World};
use crate::serve::{Server, block, call, client, text, tokens};

/// A workflow naming its plugin and script relative to itself; its one echo call waits for a
/// person.
fn workflow(version: &str, source: &str) -> String {
    format!(
        r#"name = "review"
version = "{version}"
entry = "ops"
goal = "Echo, once a person approves."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Echo."
tools = ["echo.*"]

[[policy.approvals]]
tool = "echo.*"
action = "require_approval"

[plugins.echo]
source = "{source}"
"#
    )
}

/// `flows/` in the world: `review.toml`, `turns.toml` and `plugins/echo.wasm`.
fn flows(w: &World) -> std::path::PathBuf {
    let flows = w.dir.path().join("flows");
    std::fs::create_dir_all(flows.join("plugins")).unwrap();
    std::fs::copy(crate::built_plugins::path("echo"), flows.join("plugins/echo.wasm")).unwrap();
    std::fs::write(flows.join("review.toml"), workflow("1.0.0", "plugins/echo.wasm")).unwrap();
    std::fs::write(flows.join("turns.toml"), TURNS).unwrap();
    flows
}

async fn wait_for(c: &reqwest::Client, url: &str, token: &str, status: &str) -> Value {
    let mut run = Value::Null;
    for _ in 0..300 {
        run = call(c, "GET", url, Some(token), None).await.2;
        if run["status"] == status {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run never reached {status}: {run}");
}

#[test]
fn tollgate_workflows_deploy_snapshots_relative_files_and_refuses_absolute_ones() {
    let w = World::new();
    // The anchor world's workflow names its plugin by an absolute path: not deployable.
    let out = w.tollgate(&["workflows", "deploy", "workflow.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("workflow.toml:") && err.contains("relative to itself"), "{err}");
    flows(&w);
    let out = w.tollgate(&["workflows", "deploy", "flows/review.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("review 1.0.0: deployed"), "{}", text(&out.stdout));
    let again = w.tollgate(&["workflows", "deploy", "flows/review.toml", "--json"]);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["created"], false, "{again}");
    // The snapshot is what runs load: the originals may go.
    let snapshot = w.data().join("deployments/review");
    std::fs::remove_dir_all(w.dir.path().join("flows")).unwrap();
    assert_eq!(std::fs::read_dir(&snapshot).unwrap().count(), 1, "one snapshot folder");
    let listed = w.tollgate(&["workflows", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!((listed[0]["name"].as_str(), listed[0]["enabled"].as_bool()), (Some("review"), Some(true)));
    assert!(listed[0]["plugins"]["echo"].as_str().is_some_and(|d| d.len() == 64), "{listed}");
    assert!(w.tollgate(&["workflows", "disable", "review"]).status.success());
    let listed = text(&w.tollgate(&["workflows", "list"]).stdout);
    assert!(listed.contains("DISABLED"), "{listed}");
    let none = w.tollgate(&["workflows", "enable", "nope"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none.stderr));
}

#[test]
fn a_deployed_workflow_starts_over_the_api_once_per_key_and_its_runs_keep_their_version() {
    let w = World::new();
    let flows = flows(&w);
    std::fs::write(flows.join("escape.toml"), workflow("1.0.0", "../outside.wasm").replace("\"review\"", "\"escape\""))
        .unwrap();
    std::fs::copy(crate::built_plugins::path("echo"), w.dir.path().join("outside.wasm")).unwrap();
    let tokens = tokens(&w);
    let token = |role: Role| tokens.iter().find(|(r, _)| *r == role).unwrap().1.clone();
    let (admin, operator, approver) = (token(Role::Admin), token(Role::Operator), token(Role::Approver));
    let server = Server::start(&w, "listen = \"127.0.0.1:0\"\nworkflows_dir = \"flows\"\n");
    let c = client();
    let run_id = block(async {
        let base = &server.url;
        let deploy = |file: &str| json!({ "file": file }).to_string();
        let (status, _, made) =
            call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(&deploy("review.toml"))).await;
        assert_eq!(status, 201, "{made}");
        assert_eq!((made["version"].as_str(), made["deployed_by"].as_str()), (Some("1.0.0"), Some("admin-1")));
        let (status, _, same) =
            call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(&deploy("review.toml"))).await;
        assert_eq!((status, &same["created"]), (200, &json!(false)), "{same}");
        // Files outside workflows_dir, and paths that climb out, are refused with where and why.
        let (status, _, problem) =
            call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(&deploy("escape.toml"))).await;
        assert_eq!(
            (status, problem["type"].as_str()),
            (422, Some("urn:tollgate:problem:invalid-workflow")),
            "{problem}"
        );
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains("not inside"), "{problem}");
        assert!(problem["errors"][0]["line"].as_u64().is_some(), "{problem}");
        for bad in ["../server.toml", "/etc/passwd", ""] {
            let (status, _, _) =
                call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(&deploy(bad))).await;
            assert_eq!(status, 400, "{bad}");
        }

        // Start once per key.
        let start = |goal: &str| json!({ "workflow": "review", "goal": goal }).to_string();
        let post = |key: &'static str, body: String| {
            c.post(format!("{base}/v1/runs"))
                .bearer_auth(&operator)
                .header("idempotency-key", key)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let first = post("k-1", start("echo hello")).await.unwrap();
        assert_eq!(first.status().as_u16(), 201);
        let location = first.headers()["location"].to_str().unwrap().to_string();
        let first: Value = first.json().await.unwrap();
        let run_id = first["id"].as_str().unwrap().to_string();
        assert_eq!(location, format!("/v1/runs/{run_id}"));
        let replay = post("k-1", start("echo hello")).await.unwrap();
        assert_eq!(replay.status().as_u16(), 200);
        assert_eq!(replay.json::<Value>().await.unwrap()["id"], json!(run_id), "the same key, the same run");
        let reused = post("k-1", start("something else")).await.unwrap();
        assert_eq!(reused.status().as_u16(), 422);
        let reused: Value = reused.json().await.unwrap();
        assert_eq!(reused["type"], "urn:tollgate:problem:idempotency-key-reused", "{reused}");
        let (_, _, runs) = call(&c, "GET", &format!("{base}/v1/runs"), Some(&operator), None).await;
        assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");

        // The worker moves it to its approval by itself.
        let run_url = format!("{base}/v1/runs/{run_id}");
        let waiting = wait_for(&c, &run_url, &approver, "waiting_approval").await;
        assert_eq!(waiting["workflow"]["version"], "1.0.0");
        let approval = waiting["approvals"][0]["id"].as_str().unwrap().to_string();

        // A new version, and a change under the old version's number: the running run keeps 1.0.0.
        std::fs::write(flows.join("review.toml"), workflow("1.0.0", "plugins/echo.wasm") + "# changed\n").unwrap();
        let (status, _, problem) =
            call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(&deploy("review.toml"))).await;
        assert_eq!((status, problem["type"].as_str()), (409, Some("urn:tollgate:problem:version-exists")), "{problem}");
        std::fs::write(flows.join("review.toml"), workflow("2.0.0", "plugins/echo.wasm")).unwrap();
        std::fs::write(flows.join("turns.toml"), "this is no longer a script").unwrap();
        let (status, _, _) =
            call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(&deploy("review.toml"))).await;
        assert_eq!(status, 201, "deploy checks the plugins, not the script's turns");
        let (status, _, decided) =
            call(&c, "POST", &format!("{base}/v1/approvals/{approval}/approve"), Some(&approver), Some("{}")).await;
        assert_eq!(status, 200, "{decided}");
        let done = wait_for(&c, &run_url, &approver, "completed").await;
        assert_eq!(done["workflow"]["version"], "1.0.0", "{done}");

        // The kill switch: nothing starts while it is off.
        let (status, _, switched) =
            call(&c, "POST", &format!("{base}/v1/workflows/review/disable"), Some(&admin), None).await;
        assert_eq!((status, &switched["changed"]), (200, &json!(true)), "{switched}");
        let refused = post("k-2", start("echo")).await.unwrap();
        assert_eq!(refused.status().as_u16(), 409);
        let refused: Value = refused.json().await.unwrap();
        assert_eq!(refused["type"], "urn:tollgate:problem:workflow-disabled");
        call(&c, "POST", &format!("{base}/v1/workflows/review/enable"), Some(&admin), None).await;
        let (_, _, shown) = call(&c, "GET", &format!("{base}/v1/workflows/review"), Some(&operator), None).await;
        assert_eq!((shown["enabled"].as_bool(), shown["latest"].as_str()), (Some(true), Some("2.0.0")), "{shown}");
        run_id
    });
    assert_eq!(server.terminate(), Some(0));
    let export = text(&w.tollgate(&["audit", "export"]).stdout);
    let started = export.lines().find(|l| l.contains("run.started") && l.contains(&run_id)).unwrap();
    assert!(started.contains(r#""by":"operator-1""#), "{started}");
    assert_eq!(export.matches("\"workflow.deployed\"").count(), 2, "1.0.0 and 2.0.0, once each");
    assert_eq!(export.matches("\"workflow.switched\"").count(), 2);
    assert!(w.tollgate(&["audit", "verify"]).status.success());
    assert!(!Path::new(&w.dir.path().join("data/deployments/escape")).exists(), "a refused deploy leaves nothing");
}

/// Approval authority over the API: a quorum of two approvers, and the person who started the
/// run — the same name on an approver token — may not approve it.
#[test]
fn a_quorum_of_other_people_approves_and_the_starter_cannot() {
    let w = World::new();
    let flows = flows(&w);
    let guarded = workflow("1.0.0", "plugins/echo.wasm").replace(
        "action = \"require_approval\"",
        "action = \"require_approval\"\napprovers = [\"role:approver\"]\nquorum = 2",
    );
    std::fs::write(flows.join("review.toml"), guarded).unwrap();
    let mut tokens = Vec::new();
    for (name, role) in
        [("admin", "admin"), ("olga", "operator"), ("olga", "approver"), ("bob", "approver"), ("cy", "approver")]
    {
        let out = w.tollgate(&["tokens", "create", "--name", name, "--role", role]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        tokens.push(text(&out.stdout).trim().to_string());
    }
    let [admin, olga_operator, olga_approver, bob, cy] = <[String; 5]>::try_from(tokens).unwrap();
    let server = Server::start(&w, "listen = \"127.0.0.1:0\"\nworkflows_dir = \"flows\"\n");
    let c = client();
    block(async {
        let base = &server.url;
        let (status, _, _) =
            call(&c, "POST", &format!("{base}/v1/workflows"), Some(&admin), Some(r#"{"file":"review.toml"}"#)).await;
        assert_eq!(status, 201);
        let (status, _, run) =
            call(&c, "POST", &format!("{base}/v1/runs"), Some(&olga_operator), Some(r#"{"workflow":"review"}"#)).await;
        assert_eq!(status, 201, "{run}");
        let run_url = format!("{base}/v1/runs/{}", run["id"].as_str().unwrap());
        let waiting = wait_for(&c, &run_url, &bob, "waiting_approval").await;
        let approve = format!("{base}/v1/approvals/{}/approve", waiting["approvals"][0]["id"].as_str().unwrap());
        let (status, _, problem) = call(&c, "POST", &approve, Some(&olga_approver), Some("{}")).await;
        assert_eq!(
            (status, problem["type"].as_str()),
            (403, Some("urn:tollgate:problem:not-an-approver")),
            "{problem}"
        );
        let (status, _, one) = call(&c, "POST", &approve, Some(&bob), Some("{}")).await;
        assert_eq!(
            (status, one["status"].as_str(), one["votes"].as_array().map(Vec::len)),
            (200, Some("pending"), Some(1))
        );
        let (status, _, twice) = call(&c, "POST", &approve, Some(&bob), Some("{}")).await;
        assert_eq!(status, 409, "{twice}");
        let (status, _, two) = call(&c, "POST", &approve, Some(&cy), Some("{}")).await;
        assert_eq!(
            (status, two["status"].as_str(), two["decided_by"].as_str()),
            (200, Some("approved"), Some("bob, cy"))
        );
        wait_for(&c, &run_url, &bob, "completed").await;
    });
}
