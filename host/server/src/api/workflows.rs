//! Deployed workflows: list, show, deploy (`POST /v1/workflows` with a file inside the server's
//! `workflows_dir`), and the kill switch (`/disable`, `/enable`). A deploy is what
//! `tollgate workflows deploy` does ([`tollgate_runtime::deploy`]): validated, snapshotted,
//! loaded as a run would load it, recorded as an immutable signed version, audited with the
//! caller's name.

use std::path::{Component, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_runtime::RunOptions;
use tollgate_runtime::deploy::{self, DeployError, DeployRequest};
use tollgate_store::{Deployed, DeploymentRecord, StoreError};

use super::{body_bytes, parse_json};
use crate::access::Endpoint;
use crate::auth::AppState;
use crate::problem::{Kind, Problem};

/// What deploys and starts need from the server's config.
#[derive(Debug, Clone)]
pub struct Deploys {
    /// The data dir: snapshots go under its `deployments/`.
    pub data_dir: PathBuf,
    /// Where `POST /v1/workflows` may deploy from; `None`: deploying over the API is off.
    pub workflows_dir: Option<PathBuf>,
    /// What every run this server starts runs with (`[runs]`).
    pub options: RunOptions,
}

impl Deploys {
    /// Whether the run may be advanced now. The kill switch is the workflow's, by name, for
    /// every run of it on this store, and its authority is the signed chain
    /// ([`deploy::switched_on`]); a run of a deployment (its file a snapshot under this data
    /// dir) also needs that version's signed row. Fails closed on anything it cannot read.
    pub async fn may_advance(&self, store: &dyn tollgate_store::Store, run: &tollgate_store::RunRecord) -> bool {
        let checked = async {
            if !deploy::switched_on(store, &run.workflow_name).await? {
                return Ok(false);
            }
            let path = std::path::Path::new(&run.workflow_path);
            let deployments = self.data_dir.join("deployments");
            let deployments = deployments.canonicalize().unwrap_or(deployments);
            if !path.canonicalize().unwrap_or_else(|_| path.to_path_buf()).starts_with(&deployments) {
                return Ok(true);
            }
            let row = store.deployment(&run.workflow_name, &run.workflow_version).await?;
            Ok::<bool, StoreError>(row.is_some_and(|d| d.enabled && d.path == run.workflow_path))
        };
        checked.await.unwrap_or_else(|e| {
            tracing::warn!(run = %run.id, error = %e, "cannot read the run's kill switch: not advanced");
            false
        })
    }
}

/// A deployment as the API shows it (no snapshot path, no signature).
pub(crate) fn version_json(d: &DeploymentRecord) -> Value {
    json!({
        "version": d.version,
        "sha256": d.digest,
        "plugins": d.plugins,
        "deployed_at": d.deployed_at,
        "deployed_by": d.deployed_by,
    })
}

fn workflow_json(name: &str, versions: &[DeploymentRecord], switched_on: bool) -> Value {
    json!({
        "name": name,
        "enabled": switched_on && versions.iter().all(|d| d.enabled),
        "latest": versions.last().map(|d| d.version.clone()),
        "versions": versions.iter().map(version_json).collect::<Vec<_>>(),
    })
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ListWorkflows).await?;
    let all = state.store.deployments(None).await?;
    let mut workflows = Vec::new();
    for chunk in all.chunk_by(|a, b| a.name == b.name) {
        let on = deploy::switched_on(&*state.store, &chunk[0].name).await?;
        workflows.push(workflow_json(&chunk[0].name, chunk, on));
    }
    Ok(Json(json!({ "workflows": workflows })))
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ShowWorkflow).await?;
    let versions = state.store.deployments(Some(&name)).await?;
    if versions.is_empty() {
        return Err(Problem::new(Kind::NotFound, "no such workflow is deployed"));
    }
    let on = deploy::switched_on(&*state.store, &name).await?;
    Ok(Json(workflow_json(&name, &versions, on)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    /// The workflow file, relative to the server's `workflows_dir`.
    file: String,
}

pub async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let caller = state.caller(&headers, Endpoint::DeployWorkflow).await?;
    let body: DeployBody = parse_json(&body_bytes(body)?)?;
    let Some(root) = &state.deploys.workflows_dir else {
        return Err(Problem::new(
            Kind::Conflict,
            "deploying over the API is off on this server: set `workflows_dir` in its config",
        ));
    };
    let relative = PathBuf::from(&body.file);
    if body.file.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Problem::new(
            Kind::BadRequest,
            "`file` is a path inside the server's workflows_dir, without `..`, `.` or a leading `/`",
        ));
    }
    let file = root.join(&relative);
    let request =
        DeployRequest { file: &file, data_dir: &state.deploys.data_dir, by: &caller.name, confine_to: Some(root) };
    match deploy::deploy(state.store.clone(), &state.sandbox, request).await {
        Ok(Deployed::New(d)) => {
            tracing::info!(workflow = %d.name, version = %d.version, by = %caller.name, "workflow deployed");
            Ok((StatusCode::CREATED, Json(deployed_json(&d, true))))
        }
        Ok(Deployed::Existing(d)) => Ok((StatusCode::OK, Json(deployed_json(&d, false)))),
        Err(DeployError::Invalid(found)) => {
            let mut problem = Problem::new(Kind::InvalidWorkflow, format!("{} is not valid", body.file));
            problem.errors = serde_json::to_value(&found).ok();
            Err(problem)
        }
        Err(DeployError::Io(message)) => Err(Problem::new(Kind::InvalidWorkflow, message)),
        Err(DeployError::Load(e)) => Err(Problem::new(Kind::InvalidWorkflow, e.to_string())),
        Err(DeployError::Store(StoreError::Immutable(message))) => Err(Problem::new(Kind::VersionExists, message)),
        Err(DeployError::Store(e)) => Err(e.into()),
    }
}

fn deployed_json(d: &DeploymentRecord, created: bool) -> Value {
    let mut v = version_json(d);
    v["name"] = json!(d.name);
    v["enabled"] = json!(d.enabled);
    v["created"] = json!(created);
    v
}

pub async fn disable(state: State<AppState>, headers: HeaderMap, name: Path<String>) -> Result<Json<Value>, Problem> {
    switch(state, headers, name, false).await
}

pub async fn enable(state: State<AppState>, headers: HeaderMap, name: Path<String>) -> Result<Json<Value>, Problem> {
    switch(state, headers, name, true).await
}

/// Moves the kill switch. Disabled: nothing of the workflow starts and the worker advances none
/// of its runs (each stops at its next step boundary). Enabled again: its runs left `running`
/// continue.
async fn switch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    enabled: bool,
) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::SwitchWorkflow).await?;
    if state.store.deployments(Some(&name)).await?.is_empty() {
        return Err(Problem::new(Kind::NotFound, "no such workflow is deployed"));
    }
    let changed = deploy::switch(&*state.store, &name, enabled, &caller.name).await?;
    tracing::info!(workflow = %name, enabled, changed, by = %caller.name, "workflow switched");
    if !enabled {
        state.worker.stop_workflow(&name);
    } else if changed {
        // Its runs stopped by the switch are still `running`: they go on.
        state.worker.take_over_running(Some(&name)).await?;
    }
    Ok(Json(json!({ "name": name, "enabled": enabled, "changed": changed })))
}
