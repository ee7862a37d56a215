//! Approvals: list (pending by default), show (the exact input and why), approve (optionally
//! with an edited input, which the runtime checks against the tool's schema and the run
//! re-gates), deny with a reason. The decider is the token's name — never a name the request
//! asserts — and the decision is audited and witnessed as `tollgate approvals` does. Once it is
//! committed, the run continues in the background (`worker.rs`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_runtime::{Runtime, RuntimeError, approvals};
use tollgate_store::{ApprovalFilter, ApprovalStatus};

use super::{body_bytes, parse_json};
use crate::access::Endpoint;
use crate::auth::AppState;
use crate::problem::{Kind, Problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending` (default), `approved`, `denied`, `expired`, `consumed` or `all`.
    status: Option<String>,
    run: Option<String>,
    /// Page size: default 100, at most 500.
    limit: Option<u32>,
    /// The previous page's `next`.
    after: Option<String>,
}

/// Most approvals one page holds.
const MAX_PAGE: u32 = 500;

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ListApprovals).await?;
    let query = super::query(query)?;
    let status = match query.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => Some(ApprovalStatus::parse(s).ok_or_else(|| super::unknown_status(s))?),
    };
    let after = super::page_after(query.after.as_deref())?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let filter = ApprovalFilter { status, run_id: query.run, limit: Some(limit), after };
    let found = state.store.approvals(&filter).await?;
    let next = super::next_page(&found, limit, |a| (a.requested_at, &a.id));
    Ok(Json(json!({ "approvals": found, "next": next })))
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ShowApproval).await?;
    let approval = state.store.approval(&id).await?.ok_or_else(|| Problem::new(Kind::NotFound, "no such approval"))?;
    Ok(Json(json!(approval)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// Run the call with this input instead of the proposed one.
    edit: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: String,
}

pub async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::DecideApproval).await?;
    let body = body_bytes(body)?;
    let ApproveBody { edit } = if body.is_empty() { ApproveBody::default() } else { parse_json(&body)? };
    let approval = state.store.approval(&id).await?.ok_or_else(|| Problem::new(Kind::NotFound, "no such approval"))?;
    let run = state
        .store
        .run(&approval.run_id)
        .await?
        .ok_or_else(|| Problem::new(Kind::NotFound, "the approval's run is gone"))?;
    // The edit is checked against the tool's schema: that needs the run's workflow and plugins.
    let runtime = Runtime::open_for_run(state.store.clone(), &state.sandbox, &run).await.map_err(decision_problem)?;
    let decided = runtime.approve(&id, decider(&caller), edit).await.map_err(decision_problem)?;
    state.worker.continue_run(&decided.run_id);
    Ok(Json(json!(decided)))
}

pub async fn deny(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::DecideApproval).await?;
    let DenyBody { reason } = parse_json(&body_bytes(body)?)?;
    let decided = approvals::deny(&*state.store, &id, decider(&caller), &reason).await.map_err(decision_problem)?;
    state.worker.continue_run(&decided.run_id);
    Ok(Json(json!(decided)))
}

/// A decision the runtime refused: not found, no longer pending, a bad edit or reason, or a run
/// whose workflow or plugins changed since it started.
fn decision_problem(e: RuntimeError) -> Problem {
    match e {
        RuntimeError::RunNotFound(_) | RuntimeError::ApprovalNotFound(_) => Problem::new(Kind::NotFound, e.to_string()),
        RuntimeError::InvalidInput(_) => Problem::new(Kind::BadRequest, e.to_string()),
        RuntimeError::NotPermitted(_) => Problem::new(Kind::NotAnApprover, e.to_string()),
        RuntimeError::State(_)
        | RuntimeError::WorkflowChanged { .. }
        | RuntimeError::PluginChanged { .. }
        | RuntimeError::InFlight { .. } => Problem::new(Kind::Conflict, e.to_string()),
        other => {
            tracing::error!(error = %other, "approval decision failed");
            Problem::new(Kind::Internal, "the decision could not be recorded; the server log has the reason")
        }
    }
}

/// The caller as the runtime's approval authority sees them: their token's name and role.
fn decider(caller: &crate::auth::Caller) -> approvals::Decider {
    approvals::Decider { name: caller.name.clone(), role: Some(caller.role.name().to_string()) }
}
