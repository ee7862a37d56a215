//! Runs: `POST /v1/runs` (start a run of a deployed workflow, once per `Idempotency-Key`),
//! `GET /v1/runs` (newest first, filtered by status) and `GET /v1/runs/{id}` (the run, its tool
//! calls and its approvals).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_runtime::deploy::{self, open_deployment};
use tollgate_runtime::{RuntimeError, Start};
use tollgate_store::{ApprovalFilter, RunFilter, RunStatus, StartKey};

use super::{body_bytes, parse_json};
use crate::access::Endpoint;
use crate::auth::AppState;
use crate::problem::{Kind, Problem};

/// Most runs one list returns.
const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    /// Page size: default 50, at most 500.
    limit: Option<u32>,
    /// The previous page's `next`.
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ListRuns).await?;
    let query = super::query(query)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| super::unknown_status(s))?),
    };
    let after = super::page_after(query.after.as_deref())?;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let runs = state.store.runs(&RunFilter { status, limit: Some(limit), after }).await?;
    let next = super::next_page(&runs, limit, |r| (r.created_at, &r.id));
    Ok(Json(json!({ "runs": runs, "next": next })))
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ShowRun).await?;
    let run = state.store.run(&id).await?.ok_or_else(|| Problem::new(Kind::NotFound, "no such run"))?;
    let tool_calls = state.store.tool_calls(&id).await?;
    let approvals = state
        .store
        .approvals(&ApprovalFilter { status: None, run_id: Some(id.clone()), ..ApprovalFilter::default() })
        .await?;
    Ok(Json(json!({
        "id": run.id,
        "workflow": {"name": run.workflow_name, "version": run.workflow_version, "sha256": run.workflow_digest},
        "goal": run.goal,
        "status": run.status,
        "status_detail": run.status_detail,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "counters": run.counters,
        "tool_calls": tool_calls,
        "approvals": approvals,
    })))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// A deployed workflow's name.
    workflow: String,
    /// One of its deployed versions. Default: the latest deployed.
    version: Option<String>,
    /// Overrides the workflow's default goal.
    goal: Option<String>,
}

/// Longest `Idempotency-Key` taken.
const MAX_KEY: usize = 200;

/// The `Idempotency-Key` header: absent, or 1..=200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let bad = || Problem::new(Kind::BadRequest, "Idempotency-Key must be 1 to 200 visible ASCII characters");
    let text = value.to_str().map_err(|_| bad())?;
    if text.is_empty() || text.len() > MAX_KEY || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

/// Starts a run of a deployed, enabled workflow version; the worker advances it from there.
/// 201 with `Location` when created; 200 with the same run when the caller's
/// `Idempotency-Key` started it before with the same request; 422 when that key started another.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let caller = state.caller(&headers, Endpoint::StartRun).await?;
    let key = idempotency_key(&headers)?;
    let body: StartBody = parse_json(&body_bytes(body)?)?;
    let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&body).unwrap_or_default()));
    // A retry answers with the run its key started — whatever happened to the workflow since —
    // and hands it to the worker again, in case this server stopped before it did.
    if let Some(key) = &key
        && let Some((run_id, hash)) = state.store.run_started_by_key(&caller.name, key).await?
    {
        if hash != request_hash {
            return Err(Problem::new(
                Kind::KeyReused,
                format!("idempotency key `{key}` already started run {run_id} with a different request"),
            ));
        }
        let run = state.store.run(&run_id).await?.ok_or_else(|| Problem::new(Kind::NotFound, "no such run"))?;
        if run.status == tollgate_store::RunStatus::Running {
            state.worker.continue_run(&run_id);
        }
        return Ok(started_response(
            StatusCode::OK,
            &run_id,
            false,
            &run.workflow_name,
            &run.workflow_version,
            &run.workflow_digest,
        ));
    }
    let versions = state.store.deployments(Some(&body.workflow)).await?;
    let deployment = match &body.version {
        Some(v) => versions.iter().find(|d| &d.version == v),
        None => versions.iter().max_by_key(|d| d.deployed_at),
    }
    .ok_or_else(|| Problem::new(Kind::NotFound, "no such workflow version is deployed"))?;
    if !deploy::deployment_enabled(&*state.store, deployment).await? {
        return Err(Problem::new(
            Kind::WorkflowDisabled,
            format!("{} is disabled: nothing of it starts until an admin enables it", deployment.name),
        ));
    }
    let runtime = open_deployment(state.store.clone(), &state.sandbox, deployment, state.deploys.options.clone())
        .await
        .map_err(|e| {
            tracing::error!(workflow = %deployment.name, version = %deployment.version, error = %e, "a deployment does not load");
            Problem::new(Kind::Conflict, "this deployment does not load any more; the server log has the reason")
        })?;
    let key = key.map(|key| StartKey { caller: caller.name.clone(), key, request_hash });
    let start = Start { goal: body.goal.clone(), by: Some(caller.name.clone()), key };
    let started = runtime.start_with(start).await.map_err(|e| match e {
        RuntimeError::KeyReused { .. } => Problem::new(Kind::KeyReused, e.to_string()),
        RuntimeError::InvalidInput(m) => Problem::new(Kind::BadRequest, m),
        RuntimeError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "a run did not start");
            Problem::new(Kind::Conflict, format!("the run did not start: {other}"))
        }
    })?;
    let status = if started.created {
        tracing::info!(run = %started.run_id, workflow = %deployment.name, by = %caller.name, "run started");
        state.worker.continue_run(&started.run_id);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let d = deployment;
    Ok(started_response(status, &started.run_id, started.created, &d.name, &d.version, &d.digest))
}

fn started_response(status: StatusCode, id: &str, created: bool, name: &str, version: &str, sha256: &str) -> Response {
    let body = json!({
        "id": id,
        "created": created,
        "workflow": {"name": name, "version": version, "sha256": sha256},
    });
    let mut response = (status, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/runs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
