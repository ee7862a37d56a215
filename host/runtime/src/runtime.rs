//! [`Runtime`]: one workflow, its loaded plugins and its model providers, over a store. Starts
//! runs and advances them; approvals and cancellation live in [`crate::approvals`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tollgate_models::{ModelSpec, Provider, ProviderOptions};
use tollgate_sandbox::Sandbox;
use tollgate_store::audit::{AuditEntry, RunStarted};
use tollgate_store::{Counters, Fence, RunRecord, RunStatus, StartKey, Started, Store};
use tollgate_workflow::LoadedWorkflow;

use crate::catalogue::{self, Catalogue};
use crate::error::RuntimeError;
use crate::ids;
use crate::options::RunOptions;
use crate::state::RunState;
use crate::warm::WarmSets;

/// What to start a run with.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// Overrides the workflow's default goal.
    pub goal: Option<String>,
    /// Who starts it (recorded in `run.started`).
    pub by: Option<String>,
    /// The caller's idempotency key, if any.
    pub key: Option<StartKey>,
}

/// A run [`Runtime::start_with`] created, or found made by the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedRun {
    pub run_id: String,
    pub created: bool,
}

/// Everything needed to advance runs of one workflow.
pub struct Runtime {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) workflow: Arc<LoadedWorkflow>,
    pub(crate) catalogue: Arc<Catalogue>,
    pub(crate) options: RunOptions,
    providers: Mutex<BTreeMap<String, Arc<dyn Provider>>>,
    provider_options: ProviderOptions,
    /// Instances kept for the runs being advanced, of plugins with `instances = "per-run"`.
    pub(crate) warm: WarmSets,
    /// Run id → the lease this runtime advances it under ([`Runtime::advance_leased`]): every
    /// commit of that run carries it.
    pub(crate) fences: Mutex<BTreeMap<String, Fence>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("workflow", &self.workflow.definition.name).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Loads the workflow's plugins into `sandbox` under the workflow's grants.
    pub async fn open(
        store: Arc<dyn Store>,
        sandbox: &Sandbox,
        workflow: LoadedWorkflow,
        options: RunOptions,
    ) -> Result<Runtime, RuntimeError> {
        let catalogue = catalogue::load(sandbox, &workflow, &options).await?;
        Ok(Runtime::with_catalogue(store, workflow, catalogue, options))
    }

    /// A runtime over plugins loaded elsewhere (benchmarks and tests).
    pub fn with_catalogue(
        store: Arc<dyn Store>,
        workflow: LoadedWorkflow,
        catalogue: Catalogue,
        options: RunOptions,
    ) -> Runtime {
        let base_dir = workflow.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let provider_options = ProviderOptions::new(base_dir);
        Runtime {
            store,
            workflow: Arc::new(workflow),
            catalogue: Arc::new(catalogue),
            options,
            providers: Mutex::new(BTreeMap::new()),
            provider_options,
            warm: WarmSets::default(),
            fences: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn workflow(&self) -> &LoadedWorkflow {
        &self.workflow
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The model spec an agent runs with: `--model` for every agent, else the agent's own.
    pub fn model_spec(&self, agent: &str) -> Result<String, RuntimeError> {
        if let Some(spec) = &self.options.model {
            return Ok(spec.clone());
        }
        self.workflow
            .definition
            .agents
            .get(agent)
            .and_then(|a| a.model.clone())
            .ok_or_else(|| RuntimeError::Model(format!("agent `{agent}` has no model; pass --model")))
    }

    /// The provider for an agent, connected once per spec.
    pub(crate) fn provider(&self, agent: &str) -> Result<Arc<dyn Provider>, RuntimeError> {
        let spec_text = self.model_spec(agent)?;
        let mut providers = self.providers.lock().map_err(|_| RuntimeError::Model("provider cache poisoned".into()))?;
        if let Some(p) = providers.get(&spec_text) {
            return Ok(p.clone());
        }
        let spec: ModelSpec = spec_text.parse().map_err(|e| RuntimeError::Model(format!("`{spec_text}`: {e}")))?;
        let provider =
            tollgate_models::connect(&spec, &self.provider_options).map_err(|e| RuntimeError::Model(e.to_string()))?;
        providers.insert(spec_text, provider.clone());
        Ok(provider)
    }

    /// Creates a run (status `running`, nothing done yet) and returns its id. `goal` overrides
    /// the workflow's default goal.
    pub async fn start(&self, goal: Option<String>) -> Result<String, RuntimeError> {
        let started = self.start_with(Start { goal, ..Start::default() }).await?;
        Ok(started.run_id)
    }

    /// [`Runtime::start`] with who asks and, optionally, an idempotency key: a key used before
    /// creates nothing and returns the run it started ([`StartedRun::created`] `false`), or
    /// fails with [`RuntimeError::KeyReused`] when it was used for another request.
    pub async fn start_with(&self, start: Start) -> Result<StartedRun, RuntimeError> {
        let Start { goal, by, key } = start;
        let wf = &self.workflow.definition;
        let goal = goal
            .or_else(|| wf.goal.clone())
            .ok_or_else(|| RuntimeError::InvalidInput("the workflow has no default goal; pass --goal".into()))?;
        let fixed = !wf.steps.is_empty();
        let entry = match (&wf.entry, fixed) {
            (Some(entry), false) => entry.clone(),
            (_, true) => String::new(),
            (None, false) => return Err(RuntimeError::Workflow("the workflow has no entry agent and no steps".into())),
        };
        // Fail before creating anything if a model cannot be connected.
        let models: BTreeMap<String, String> = wf
            .agents
            .keys()
            .map(|agent| Ok((agent.clone(), self.provider(agent)?.describe())))
            .collect::<Result<_, RuntimeError>>()?;
        let now = ids::now_ms();
        let id = ids::run_id(now);
        // The entry agent's conversation starts with the goal when the loop first loads the run
        // (`RunState::load_conversations`), so a crash before the first commit loses nothing.
        let mut state = RunState { agent: entry.clone(), ..RunState::default() };
        if fixed {
            state.fixed = Some(crate::fixed::FixedCursor::default());
        }
        let run = RunRecord {
            id: id.clone(),
            workflow_name: wf.name.clone(),
            workflow_version: wf.version.to_string(),
            workflow_path: self.workflow.path.display().to_string(),
            workflow_digest: self.workflow.digest.clone(),
            goal: goal.clone(),
            status: RunStatus::Running,
            status_detail: None,
            created_at: now,
            updated_at: now,
            deadline_at: None,
            counters: Counters::default(),
            options: serde_json::to_value(&self.options).unwrap_or_default(),
            checkpoint: serde_json::to_value(&state).unwrap_or_default(),
            version: 1,
        };
        let plugins = wf
            .plugins
            .keys()
            .filter_map(|p| Some((p.clone(), self.catalogue.plugin(p)?.digest().to_string())))
            .collect();
        let audit = AuditEntry::of_run(
            &id,
            now,
            RunStarted {
                workflow: wf.name.clone(),
                version: wf.version.to_string(),
                workflow_sha256: self.workflow.digest.clone(),
                goal,
                entry,
                models,
                plugins,
                upstreams: self.options.upstreams.clone(),
                by,
            },
        );
        let Some(key) = key else {
            self.store.create_run(&run, &[audit]).await?;
            return Ok(StartedRun { run_id: id, created: true });
        };
        match self.store.create_run_keyed(&run, &[audit], &key).await? {
            Started::New => Ok(StartedRun { run_id: id, created: true }),
            Started::Existing { run_id, same_request: true } => Ok(StartedRun { run_id, created: false }),
            Started::Existing { run_id, same_request: false } => Err(RuntimeError::KeyReused { key: key.key, run_id }),
        }
    }

    /// How long one model call may take: what is left of the run's deadline.
    pub(crate) fn remaining(&self, state: &RunState) -> Duration {
        self.workflow.definition.run.deadline.saturating_sub(Duration::from_millis(state.active_ms))
    }
}

impl Runtime {
    /// The runtime for an existing run: its workflow file, loaded from where the run started it
    /// and unchanged since (else [`RuntimeError::WorkflowChanged`]), with the run's options.
    pub async fn open_for_run(
        store: Arc<dyn Store>,
        sandbox: &Sandbox,
        run: &RunRecord,
    ) -> Result<Runtime, RuntimeError> {
        let loaded = tollgate_workflow::load(Path::new(&run.workflow_path))
            .map_err(|d| RuntimeError::Workflow(d.to_string()))?;
        check_same_workflow(run, &loaded)?;
        let options: RunOptions = serde_json::from_value(run.options.clone()).unwrap_or_default();
        Runtime::open(store, sandbox, loaded, options).await
    }
}

/// Checks that a run belongs to this workflow file as it was when the run started.
pub fn check_same_workflow(run: &RunRecord, workflow: &LoadedWorkflow) -> Result<(), RuntimeError> {
    if run.workflow_digest != workflow.digest {
        return Err(RuntimeError::WorkflowChanged {
            run_id: run.id.clone(),
            path: run.workflow_path.clone(),
            was: run.workflow_digest.clone(),
            now: workflow.digest.clone(),
        });
    }
    Ok(())
}
