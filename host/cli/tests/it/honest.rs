//! What `runs show` and `runs list` tell a person about a run whose model misbehaved or whose
//! call a person edited (issue 16 §2), driven through the real binary as a user types it.

use crate::anchor::World;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn an_edited_call_shows_what_ran_and_what_was_proposed_and_every_call_is_counted() {
    let w = World::new();
    let (run_id, approval_id) = w.waiting_run();
    let approve =
        w.tollgate(&["approvals", "approve", &approval_id, "--as", "alice", "--edit", r#"{"note":"edited"}"#]);
    assert!(approve.status.success(), "{}", text(&approve.stderr));
    let resume = w.tollgate(&["runs", "resume", &run_id]);
    assert_eq!(resume.status.code(), Some(0), "{}", text(&resume.stderr));

    let show = w.tollgate(&["runs", "show", &run_id]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let out = text(&show.stdout);
    assert!(out.contains(r#"#0 echo.echo [done] {"note":"edited"}"#), "{out}");
    assert!(out.contains(r#"edited by root (as alice) before it ran; proposed {"note":"hello"}"#), "{out}");
    assert!(out.contains("tool calls 1 proposed, 1 run, 0 denied, 1 parked, 0 failed"), "{out}");

    let json = w.tollgate(&["runs", "show", &run_id, "--json"]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["approvals"][0]["input"]["note"], "hello");
    assert_eq!(parsed["approvals"][0]["approved_input"]["note"], "edited");
    assert_eq!(parsed["run"]["counters"]["calls_proposed"], 1);

    let list = text(&w.tollgate(&["runs", "list"]).stdout);
    assert!(list.lines().any(|l| l.starts_with(&run_id) && l.contains(" 1/1 ")), "{list}");
}

#[test]
fn an_empty_answer_exits_1_and_runs_show_says_why() {
    let w = World::with_turns("[[turns]]\nagent = \"ops\"\ntext = \"\"\n\n[[turns]]\nagent = \"ops\"\ntext = \" \"\n");
    let run = w.tollgate(&["run", "workflow.toml"]);
    assert_eq!(run.status.code(), Some(1), "failed, not completed: {}{}", text(&run.stdout), text(&run.stderr));
    let all = text(&run.stdout) + &text(&run.stderr);
    assert!(all.contains("empty answer"), "{all}");
    assert_eq!(text(&run.stdout).matches("(empty answer: no text and no tool call)").count(), 2, "{all}");
    assert!(!all.contains("the agent is done"), "{all}");

    let list = text(&w.tollgate(&["runs", "list", "--json"]).stdout);
    let runs: serde_json::Value = serde_json::from_str(&list).unwrap();
    let run_id = runs[0]["id"].as_str().unwrap();
    let show = text(&w.tollgate(&["runs", "show", run_id]).stdout);
    assert!(show.contains("failed — empty answer: the model replied twice in a row"), "{show}");
    assert_eq!(show.matches("! empty answer: no text and no tool call").count(), 2, "{show}");
}
