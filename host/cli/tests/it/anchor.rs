//! The rollback anchor, driven through the real binary (issue 12 §2): a store whose key or
//! witness was removed, or whose database was restored from an older copy, is refused before
//! anything acts on it — and `audit verify` never makes a new key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A workflow whose one echo call waits for a person, on a replayed script.
const WORKFLOW: &str = r#"
name = "anchor-test"
version = "1.0.0"
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
source = "@ECHO@"
"#;

/// The script: one echo call, then a final answer (the deploy tests reuse it).
pub(crate) const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Echo it."
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "hello" }

[[turns]]
agent = "ops"
text = "Done."
"#;

/// A folder with the workflow and its script, and a data dir inside it.
pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        World::with_turns(TURNS)
    }

    /// [`World::new`] with another script.
    pub(crate) fn with_turns(turns: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let echo = crate::built_plugins::path("echo");
        std::fs::write(dir.path().join("workflow.toml"), WORKFLOW.replace("@ECHO@", &echo.display().to_string()))
            .unwrap();
        std::fs::write(dir.path().join("turns.toml"), turns).unwrap();
        World { dir }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `tollgate ARGS`, from inside the world's folder (relative paths, as a user types them),
    /// with the data dir in the environment and a fresh HOME.
    pub(crate) fn tollgate(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("TOLLGATE_DATA_DIR", self.data())
            .env("TOLLGATE_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("TOLLGATE_AUDIT_KEY")
            .env_remove("TOLLGATE_AUDIT_WITNESS")
            .output()
            .expect("tollgate runs")
    }

    /// Starts the run (it stops waiting for approval) and returns its id and approval id.
    pub(crate) fn waiting_run(&self) -> (String, String) {
        let out = self.tollgate(&["run", "workflow.toml", "--json"]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let events: Vec<serde_json::Value> =
            text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let field = |key: &str| {
            events.iter().find_map(|e| e[key].as_str().map(str::to_string)).unwrap_or_else(|| panic!("no {key}"))
        };
        (field("run_id"), field("approval_id"))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["tollgate.db", "tollgate.db-wal", "tollgate.db-shm"] {
        let _ = std::fs::remove_file(to.join(name));
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
}

#[test]
fn a_missing_key_is_an_error_and_never_replaced() {
    let w = World::new();
    let (run_id, _) = w.waiting_run();
    let key = w.data().join("audit-signing.key");
    std::fs::remove_file(&key).unwrap();
    for args in [vec!["audit", "verify"], vec!["runs", "resume", run_id.as_str()]] {
        let out = w.tollgate(&args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("is missing") && err.contains("restore the key"), "{args:?}: {err}");
        assert!(!key.exists(), "{args:?} made a new key");
    }
}

#[test]
fn a_missing_witness_is_an_error_for_verify_and_resume() {
    let w = World::new();
    let (run_id, _) = w.waiting_run();
    std::fs::remove_file(w.data().join("audit-signing.key.checkpoints.jsonl")).unwrap();
    let verify = w.tollgate(&["audit", "verify"]);
    assert_ne!(verify.status.code(), Some(0));
    assert!(text(&verify.stderr).contains("missing, but the store has signed checkpoints"), "{}", text(&verify.stderr));
    let resume = w.tollgate(&["runs", "resume", &run_id]);
    assert_ne!(resume.status.code(), Some(0));
    assert!(text(&resume.stderr).contains("audit witness"), "{}", text(&resume.stderr));
}

#[test]
fn a_database_restored_from_an_older_copy_is_refused() {
    let w = World::new();
    let (run_id, approval) = w.waiting_run();
    let saved = w.dir.path().join("saved");
    copy_db(&w.data(), &saved);
    // A person approves (witnessed); then the old database comes back, approval undone.
    let approve = w.tollgate(&["approvals", "approve", &approval]);
    assert!(approve.status.success(), "{}", text(&approve.stderr));
    copy_db(&saved, &w.data());
    let resume = w.tollgate(&["runs", "resume", &run_id]);
    assert_ne!(resume.status.code(), Some(0));
    let err = text(&resume.stderr);
    assert!(err.contains("rolled back or edited"), "{err}");
}

#[test]
fn a_witness_outside_the_data_dir_catches_a_rollback_of_the_whole_data_dir() {
    let w = World::new();
    let witness = w.dir.path().join("elsewhere/witness.jsonl");
    let witness_arg = witness.display().to_string();
    let with_witness = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--audit-witness", witness_arg.as_str()]);
        w.tollgate(&all)
    };
    let out = with_witness(&["run", "workflow.toml", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run_id = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| e["run_id"].as_str().map(str::to_string))
        .unwrap();
    assert!(witness.exists());
    // The whole data dir (database, key) is saved, the run moves on, and the dir comes back.
    let saved = w.dir.path().join("saved-data");
    copy_dir(&w.data(), &saved);
    let approval = text(&with_witness(&["approvals", "list", "--json"]).stdout);
    let approval: serde_json::Value = serde_json::from_str(&approval).unwrap();
    let id = approval[0]["id"].as_str().unwrap().to_string();
    assert!(with_witness(&["approvals", "approve", &id]).status.success());
    std::fs::remove_dir_all(w.data()).unwrap();
    copy_dir(&saved, &w.data());
    let resume = with_witness(&["runs", "resume", &run_id]);
    assert_ne!(resume.status.code(), Some(0));
    assert!(text(&resume.stderr).contains("rolled back or edited"), "{}", text(&resume.stderr));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
