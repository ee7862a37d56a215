//! Operators stopping and continuing runs: `POST /v1/runs/{id}/cancel` (for good; its pending
//! approvals are denied), `/pause` (until someone resumes it) and `/resume` (a paused run goes
//! back to `running`; any run that has not ended is handed to the worker). Each change is one
//! commit with its audit record naming the caller's token; the worker in this process stops
//! advancing a cancelled or paused run at its next step boundary, and another process's next
//! commit for it is refused because the run's version moved.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_runtime::{RuntimeError, approvals, control};
use tollgate_store::RunStatus;

use super::{body_bytes, parse_json};
use crate::access::Endpoint;
use crate::auth::AppState;
use crate::problem::{Kind, Problem};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

fn reason(body: Result<Bytes, BytesRejection>, default: &str) -> Result<String, Problem> {
    let body = body_bytes(body)?;
    let ReasonBody { reason } = if body.is_empty() { ReasonBody::default() } else { parse_json(&body)? };
    Ok(reason.unwrap_or_else(|| default.to_string()))
}

pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::ControlRun).await?;
    let reason = reason(body, "cancelled by an operator")?;
    let in_flight = approvals::cancel(&*state.store, &id, &caller.name, &reason).await.map_err(control_problem)?;
    state.worker.stop_run(&id);
    tracing::info!(run = %id, by = %caller.name, "run cancelled");
    Ok(Json(json!({ "id": id, "status": RunStatus::Cancelled, "in_flight": in_flight })))
}

pub async fn pause(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::ControlRun).await?;
    let reason = reason(body, "paused by an operator")?;
    let run = control::pause(&*state.store, &id, &caller.name, &reason).await.map_err(control_problem)?;
    state.worker.stop_run(&id);
    tracing::info!(run = %id, by = %caller.name, "run paused");
    Ok(Json(json!({ "id": run.id, "status": run.status, "status_detail": run.status_detail })))
}

pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::ControlRun).await?;
    // No body is expected; one that is there must still be well-formed and small.
    body_bytes(body)?;
    let run = state.store.run(&id).await?.ok_or_else(|| Problem::new(Kind::NotFound, "no such run"))?;
    if run.status.is_terminal() {
        return Err(Problem::new(Kind::Conflict, format!("run {id} already ended ({})", run.status.as_str())));
    }
    // A disabled workflow's run stays as it is, paused or not: nothing changes on a refusal.
    if !state.deploys.may_advance(&*state.store, &run).await {
        return Err(Problem::new(
            Kind::WorkflowDisabled,
            format!("{} is disabled: its runs continue once an admin enables it", run.workflow_name),
        ));
    }
    let run = if run.status == RunStatus::Paused {
        let run = control::unpause(&*state.store, &id, &caller.name).await.map_err(control_problem)?;
        tracing::info!(run = %id, by = %caller.name, "run resumed");
        run
    } else {
        run
    };
    state.worker.continue_run(&id);
    Ok(Json(json!({ "id": run.id, "status": run.status })))
}

/// What the runtime refused, as the operator should see it.
fn control_problem(e: RuntimeError) -> Problem {
    match e {
        RuntimeError::RunNotFound(_) => Problem::new(Kind::NotFound, e.to_string()),
        RuntimeError::InvalidInput(_) => Problem::new(Kind::BadRequest, e.to_string()),
        RuntimeError::State(_) => Problem::new(Kind::Conflict, e.to_string()),
        RuntimeError::Store(tollgate_store::StoreError::Conflict { run_id, .. }) => Problem::new(
            Kind::Conflict,
            format!("run {run_id} moved while this was being recorded (it took a step); ask again"),
        ),
        RuntimeError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "a run could not be changed");
            Problem::new(Kind::Internal, "the change could not be recorded; the server log has the reason")
        }
    }
}
