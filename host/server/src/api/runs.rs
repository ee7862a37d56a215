//! Runs: `GET /v1/runs` (newest first, filtered by status) and `GET /v1/runs/{id}` (the run,
//! its tool calls and its approvals).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{ApprovalFilter, RunFilter, RunStatus};

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
