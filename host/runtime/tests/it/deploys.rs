//! Deployed workflows under attack (issue 15 §2): the kill switch's authority is the signed
//! chain, so a deployment row restored from before a disable does not switch it back on; a
//! snapshot folder someone wrote into is not signed as deployed; a relative secret file is
//! refused at its line.

use std::path::Path;

use tollgate_runtime::deploy::{self, DeployError, DeployRequest};
use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_store::{Deployed, Store};

use crate::common::{Harness, plugins_dir};

fn workflow(extra: &str) -> String {
    format!(
        r#"
name = "review"
version = "1.0.0"
entry = "ops"
goal = "Echo."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Echo."
tools = ["echo.*"]

[plugins.echo]
source = "plugins/echo.wasm"
{extra}
"#
    )
}

fn sandbox() -> Sandbox {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-tests-cache");
    Sandbox::new(SandboxConfig { cache_dir: Some(cache), pooling: false, ..SandboxConfig::default() }).unwrap()
}

/// `flows/review.toml` with `extra` appended, its script and the echo plugin beside it.
fn flows(h: &Harness, extra: &str) -> std::path::PathBuf {
    let flows = h.dir.path().join("flows");
    std::fs::create_dir_all(flows.join("plugins")).unwrap();
    std::fs::copy(plugins_dir().join("echo.wasm"), flows.join("plugins/echo.wasm")).unwrap();
    std::fs::write(flows.join("turns.toml"), "[[turns]]\nagent = \"ops\"\ntext = \"Done.\"\n").unwrap();
    std::fs::write(flows.join("review.toml"), workflow(extra)).unwrap();
    flows.join("review.toml")
}

async fn deploy_file(h: &Harness, file: &Path) -> Result<Deployed, DeployError> {
    let data = h.dir.path().join("data");
    deploy::deploy(h.dyn_store(), &sandbox(), DeployRequest { file, data_dir: &data, by: "ada", confine_to: None })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_restored_from_before_a_disable_does_not_switch_the_workflow_back_on() {
    let h = Harness::new().await;
    let file = flows(&h, "");
    let Deployed::New(before) = deploy_file(&h, &file).await.unwrap() else { panic!("new") };
    assert!(deploy::deployment_enabled(&*h.store, &before).await.unwrap());
    assert!(deploy::switch(&*h.store, "review", false, "ada").await.unwrap());
    // The row as it was before the disable, signature and all, written back.
    h.tamper(&format!(
        "UPDATE workflow_deployments SET enabled = 1, switched_at = {}, signature = '{}' WHERE name = 'review'",
        before.switched_at, before.signature
    ))
    .await;
    let restored = h.store.deployment("review", "1.0.0").await.unwrap().expect("its signature holds");
    assert!(restored.enabled, "the row says enabled");
    assert!(!deploy::switched_on(&*h.store, "review").await.unwrap(), "the chain says disabled");
    assert!(!deploy::deployment_enabled(&*h.store, &restored).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_folder_someone_wrote_into_is_not_deployed() {
    let h = Harness::new().await;
    let file = flows(&h, "");
    let Deployed::New(first) = deploy_file(&h, &file).await.unwrap() else { panic!("new") };
    // Someone swaps the plugin inside the snapshot; the same version deployed again (same
    // content, same folder) must not sign what the folder now holds.
    let snapshot_plugin = Path::new(&first.path).parent().unwrap().join("plugins/echo.wasm");
    std::fs::copy(plugins_dir().join("ads.wasm"), &snapshot_plugin).unwrap();
    let again = deploy_file(&h, &file).await.unwrap_err();
    assert!(again.to_string().contains("does not hold what its name says"), "{again}");
    // And runs of the first deployment refuse the swapped plugin at start.
    let opened = deploy::open_deployment(h.dyn_store(), &sandbox(), &first, h.options()).await;
    assert!(opened.is_err(), "a changed snapshot does not load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_secret_file_is_refused_at_its_line() {
    let h = Harness::new().await;
    let file = flows(&h, "[plugins.echo.grants]\ncredentials = { token = \"file:secrets/token\" }\n");
    let Err(DeployError::Invalid(found)) = deploy_file(&h, &file).await else { panic!("refused") };
    let text = found.to_string();
    assert!(text.contains("review.toml:") && text.contains("give its absolute path"), "{text}");
    assert!(
        !h.dir.path().join("data/deployments/review").exists()
            || std::fs::read_dir(h.dir.path().join("data/deployments/review")).unwrap().count() == 0
    );
}
