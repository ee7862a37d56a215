//! The harness of the runtime's integration tests: a workflow and its scripted turns written
//! into a temp dir (plugins by absolute path from `target/plugins`, credentials in files beside
//! the workflow), a SQLite store with an audit signer, the vendor stand-ins on 127.0.0.1, and an
//! observer that records every event.
//!
//! Each test binary uses part of it.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod racing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tollgate_models::Message;
use tollgate_runtime::{Event, Observer, RunOptions, RunOutcome, RunState, Runtime, RuntimeError};
use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_standins::{StandIns, Tokens};
use tollgate_store::{ApprovalRecord, RunRecord, SealedRecord, Signer, SqliteStore, Store, ToolCallRecord};

#[path = "../../../../../tests/support/built_plugins.rs"]
mod built_plugins;

/// `target/plugins`, where `cargo xtask plugins` puts the components (each one the tests load
/// is checked, so a missing one names the command to run).
pub fn plugins_dir() -> PathBuf {
    for name in ["ads", "crm", "email", "echo"] {
        built_plugins::path(name);
    }
    built_plugins::dir().canonicalize().unwrap()
}

/// The `[plugins.*]` tables every test workflow gets: the three connectors with credentials read
/// from `secrets/<name>` (relative to the workflow, as the format documents) and `echo`.
pub fn plugins_toml() -> String {
    let dir = plugins_dir();
    let d = dir.display();
    format!(
        r#"
[plugins.ads]
source = "{d}/ads.wasm"
[plugins.ads.grants]
hosts = ["https://graph.facebook.com"]
credentials = {{ meta = "file:secrets/meta" }}

[plugins.email]
source = "{d}/email.wasm"
[plugins.email.grants]
hosts = ["https://api.sendgrid.com"]
credentials = {{ sendgrid = "file:secrets/sendgrid" }}

[plugins.crm]
source = "{d}/crm.wasm"
[plugins.crm.grants]
hosts = ["https://api.hubapi.com"]
credentials = {{ hubspot = "file:secrets/hubspot" }}

[plugins.echo]
source = "{d}/echo.wasm"
"#
    )
}

/// Records every event a run reports.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// One test's world. Dropping it stops the stand-ins and removes the temp dir.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub standins: StandIns,
    pub key_path: PathBuf,
    pub workflow_path: PathBuf,
}

impl Harness {
    /// A fresh store and stand-ins; call [`Harness::runtime`] to write a workflow and open it.
    /// Must run on a multi-threaded tokio runtime.
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("keys/audit.key");
        let signer = Signer::load_or_create(&key_path).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("data/tollgate.db"), Some(signer)).await.unwrap());
        let tokens = Tokens::default();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        for (name, value) in [("meta", &tokens.meta), ("sendgrid", &tokens.sendgrid), ("hubspot", &tokens.hubspot)] {
            std::fs::write(dir.path().join("secrets").join(name), format!("{value}\n")).unwrap();
        }
        let standins = StandIns::start(tokens).await.unwrap();
        let workflow_path = dir.path().join("workflow.toml");
        Harness { dir, store, standins, key_path, workflow_path }
    }

    pub fn dyn_store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Writes `workflow` (with [`plugins_toml`] appended unless it declares its own plugins) and
    /// the script `turns.toml`, then opens a runtime on them.
    pub async fn runtime(&self, workflow: &str, turns: &str) -> Runtime {
        self.try_runtime(workflow, turns).await.unwrap()
    }

    /// [`Harness::runtime`], returning the error a runtime that cannot open gives.
    pub async fn try_runtime(&self, workflow: &str, turns: &str) -> Result<Runtime, RuntimeError> {
        let text =
            if workflow.contains("[plugins.") { workflow.to_string() } else { workflow.to_string() + &plugins_toml() };
        std::fs::write(&self.workflow_path, text).unwrap();
        std::fs::write(self.dir.path().join("turns.toml"), turns).unwrap();
        self.try_open_on(self.dyn_store()).await
    }

    /// Opens a runtime on the workflow as it is on disk now (plugins are read again), with the
    /// three vendor hosts sent to the stand-ins. Like a new `tollgate runs resume` process.
    pub async fn open(&self) -> Runtime {
        self.open_on(self.dyn_store()).await
    }

    /// [`Harness::open`] on another store (a wrapper around [`Harness::store`]).
    pub async fn open_on(&self, store: Arc<dyn Store>) -> Runtime {
        self.try_open_on(store).await.unwrap()
    }

    async fn try_open_on(&self, store: Arc<dyn Store>) -> Result<Runtime, RuntimeError> {
        self.try_open_with(store, self.options()).await
    }

    /// [`Harness::open`] with other options.
    pub async fn open_with(&self, options: RunOptions) -> Runtime {
        self.try_open_with(self.dyn_store(), options).await.unwrap()
    }

    async fn try_open_with(&self, store: Arc<dyn Store>, options: RunOptions) -> Result<Runtime, RuntimeError> {
        let loaded = tollgate_workflow::load(&self.workflow_path).unwrap_or_else(|d| panic!("workflow: {d}"));
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-tests-cache");
        let config = SandboxConfig { cache_dir: Some(cache), pooling: false, ..SandboxConfig::default() };
        let sandbox = Sandbox::new(config).unwrap();
        Runtime::open(store, &sandbox, loaded, options).await
    }

    /// The options every runtime of the harness opens with: the three vendor hosts sent to the
    /// stand-ins.
    pub fn options(&self) -> RunOptions {
        let mut options = RunOptions::default();
        for (host, standin) in [
            ("graph.facebook.com", &self.standins.meta),
            ("api.sendgrid.com", &self.standins.sendgrid),
            ("api.hubapi.com", &self.standins.hubspot),
        ] {
            options.upstreams.insert(host.into(), standin.base_url());
        }
        options
    }

    pub async fn run(&self, id: &str) -> RunRecord {
        self.store.run(id).await.unwrap().unwrap()
    }

    pub async fn state(&self, id: &str) -> RunState {
        RunState::load(&*self.store, &self.run(id).await).await.unwrap()
    }

    pub async fn rows(&self, id: &str) -> Vec<ToolCallRecord> {
        self.store.tool_calls(id).await.unwrap()
    }

    /// Every audit record, oldest first.
    pub async fn audit(&self) -> Vec<SealedRecord> {
        self.store.audit_records(0, 100_000).await.unwrap()
    }

    /// Audit records of `kind` for `run_id`.
    pub async fn audit_of(&self, run_id: &str, kind: &str) -> Vec<Value> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| r.kind == kind && r.run_id.as_deref() == Some(run_id))
            .map(|r| r.body)
            .collect()
    }
}

/// Starts a run with the workflow's goal and advances it as far as it goes.
pub async fn start(runtime: &Runtime, observer: &Recorder) -> (String, RunOutcome) {
    let id = runtime.start(None).await.unwrap();
    let outcome = runtime.advance(&id, observer).await.unwrap();
    (id, outcome)
}

/// The tool results `agent` was sent back, in order: `(call id, model-visible name, content, is_error)`.
pub fn tool_results(state: &RunState, agent: &str) -> Vec<(String, String, String, bool)> {
    state.conversations[agent]
        .iter()
        .filter_map(|m| match m {
            Message::ToolResult { call_id, name, content, is_error } => {
                Some((call_id.clone(), name.clone(), content.clone(), *is_error))
            }
            _ => None,
        })
        .collect()
}

/// The one tool result for the model's call `call_id`.
pub fn result_of(state: &RunState, agent: &str, call_id: &str) -> (String, bool) {
    let found: Vec<_> = tool_results(state, agent).into_iter().filter(|r| r.0 == call_id).collect();
    assert_eq!(found.len(), 1, "one result for {call_id} in {:#?}", state.conversations[agent]);
    (found[0].2.clone(), found[0].3)
}

/// The only pending approval of an outcome.
pub fn only_approval(outcome: &RunOutcome) -> ApprovalRecord {
    assert_eq!(outcome.pending_approvals.len(), 1, "{outcome:#?}");
    outcome.pending_approvals[0].clone()
}

/// Requests a stand-in received with `method` on a path ending in `suffix`.
pub fn requests_to(
    standin: &tollgate_standins::StandIn,
    method: &str,
    suffix: &str,
) -> Vec<tollgate_standins::RecordedRequest> {
    standin.requests().into_iter().filter(|r| r.method == method && r.path.ends_with(suffix)).collect()
}

impl Harness {
    /// Advances `id` in a process that is killed right after its claim commit, before any
    /// claimed call starts (the claimed rows are left `in_flight`, the claim naming this
    /// still-living process).
    pub async fn advance_killed_after_claim(&self, id: &str) {
        let racing = Arc::new(racing::RacingStore::claim_rival(
            self.store.clone(),
            Box::new(|| Box::pin(async { panic!("killed after the claim") })),
        ));
        let first = self.open_on(racing).await;
        let run_id = id.to_string();
        let killed = tokio::spawn(async move { first.advance(&run_id, &Recorder::default()).await }).await;
        assert!(killed.is_err(), "the first process stopped");
    }

    /// Runs `sql` on the database file through a connection of its own, as anyone who can
    /// write `tollgate.db` could (the runtime's store never sees it coming).
    pub async fn tamper(&self, sql: &str) {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(self.dir.path().join("data/tollgate.db"));
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
        assert!(done.rows_affected() > 0, "the tampering changed nothing: {sql}");
        pool.close().await;
    }
}
