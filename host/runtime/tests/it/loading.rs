//! A runtime opens only a workflow `tollgate validate` accepts: the checks that need the
//! plugins' manifests (grants only narrow, policy fields exist) run before a run can start.

use crate::common::Harness;

const AGENT: &str = r#"
name = "loading"
version = "1.0.0"
entry = "ops"
goal = "Nothing."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Operate."
tools = ["ads.*"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_on_a_field_the_tool_does_not_have_is_refused() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "ads.update_campaign"
when = "input.daily_budgt > 1000"
action = "require_approval"
"#;
    let Err(e) = h.try_runtime(&format!("{AGENT}{policy}"), "").await else { panic!("the workflow opened") };
    let message = e.to_string();
    assert!(message.contains("`input.daily_budgt` is not in the input schema of ads.update_campaign"), "{message}");
    assert!(message.contains("workflow.toml:"), "file:line:col: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_wider_than_the_plugin_declares_is_refused() {
    let h = Harness::new().await;
    let d = crate::common::plugins_dir();
    let plugins = format!(
        r#"
[plugins.ads]
source = "{}/ads.wasm"
[plugins.ads.grants]
hosts = ["https://graph.facebook.com", "https://capture.example"]
credentials = {{ meta = "file:secrets/meta" }}
"#,
        d.display()
    );
    let Err(e) = h.try_runtime(&format!("{AGENT}{plugins}"), "").await else { panic!("the workflow opened") };
    let message = e.to_string();
    assert!(message.contains("grant `https://capture.example` is wider than what plugin `ads` declares"), "{message}");
}
