//! Fixed steps (`[[steps]]`): a tool step, a human gate, a tool step reading earlier state and
//! an agent step, in order, with the last step's result as the run's output.

use crate::common::{Harness, Recorder, only_approval, start};
use serde_json::{Value, json};
use tollgate_models::Message;
use tollgate_runtime::approvals;
use tollgate_store::RunStatus;

/// Step ids deliberately out of alphabetical order: `review` sorts last, `findings` runs last.
/// The deny rule only bites agents: policies see fixed steps as agent `""`.
const WORKFLOW: &str = r#"
name = "fixed-test"
version = "1.0.0"
goal = "Add, check, echo, write up."

[agents.writer]
model = "scripted:turns.toml"
instructions = "Write it up."

[[policy.approvals]]
tool = "echo.echo"
when = "agent != ''"
action = "deny"
reason = "Only fixed steps echo."

[[steps]]
id = "sum"
tool = "echo.add"
input = { a = 1, b = 2 }

[[steps]]
id = "review"
approval = "Is the sum right?"

[[steps]]
id = "apply"
tool = "echo.echo"
input_expr = "{'total': state.sum.sum}"

[[steps]]
id = "findings"
agent = "writer"
input = ["sum", "apply"]
"#;

const TURNS: &str = r#"
[[turns]]
agent = "writer"
text = "The sum is 3."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_in_order_and_the_last_steps_result_is_the_output() {
    let h = Harness::new().await;
    let runtime = h.runtime(WORKFLOW, TURNS).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");
    let review = only_approval(&outcome);
    assert_eq!(review.reason, "Is the sum right?");

    runtime.approve(&review.id, "alice", None).await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some("The sum is 3."));

    let state = h.state(&id).await;
    let fixed = state.fixed.as_ref().unwrap();
    assert_eq!(fixed.state["sum"]["sum"].as_f64(), Some(3.0));
    assert_eq!(fixed.state["apply"]["total"].as_f64(), Some(3.0));
    assert_eq!(fixed.state["review"]["approved_by"], "alice");
    assert_eq!(fixed.state["findings"], json!("The sum is 3."));
    // The agent step starts from the state it asked for, and only that.
    let Message::User { text: brief } = &state.conversations["writer"][0] else { panic!() };
    let payload: Value = serde_json::from_str(brief.split_once(":\n").unwrap().1).unwrap();
    assert_eq!(payload.as_object().unwrap().keys().collect::<Vec<_>>(), ["apply", "sum"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_human_gate_cancels_the_run() {
    let h = Harness::new().await;
    let runtime = h.runtime(WORKFLOW, TURNS).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let review = only_approval(&outcome);
    approvals::deny(&**runtime.store(), &review.id, "bob", "the sum looks off").await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Cancelled, "{outcome:?}");
    assert_eq!(outcome.detail.as_deref(), Some("step `review` did not complete: denied by bob: the sum looks off"));
    assert!(h.state(&id).await.fixed.unwrap().state.get("apply").is_none(), "later steps never ran");
}
