//! The HTTP API under `/v1`, plus `/healthz` and `/readyz`. Each handler names its
//! [`Endpoint`](crate::access::Endpoint) and asks [`AppState::caller`] first, so nothing is read or
//! parsed for a caller who may not call it; bodies are JSON, capped by `max_body` before that.

mod approvals;
mod audit;
mod run_control;
mod runs;
mod tokens;
mod workflows;

pub use workflows::Deploys;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::de::DeserializeOwned;

use crate::auth::AppState;
use crate::problem::{Kind, Problem};

/// The whole API, on `state`, with request bodies capped at `max_body` bytes.
pub fn router(state: AppState, max_body: usize) -> Router {
    let v1 = Router::new()
        .route("/v1/whoami", get(tokens::whoami))
        .route("/v1/runs", get(runs::list).post(runs::start))
        .route("/v1/runs/{id}", get(runs::show))
        .route("/v1/runs/{id}/cancel", post(run_control::cancel))
        .route("/v1/runs/{id}/pause", post(run_control::pause))
        .route("/v1/runs/{id}/resume", post(run_control::resume))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/v1/workflows", get(workflows::list).post(workflows::deploy))
        .route("/v1/workflows/{name}", get(workflows::show))
        .route("/v1/workflows/{name}/disable", post(workflows::disable))
        .route("/v1/workflows/{name}/enable", post(workflows::enable))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::failed_auth_budget));
    // Health checks stay outside the failed-authentication budget: a prober shares no fate
    // with a client guessing tokens from the same address.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(v1)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Alive: the process answers. No token needed, nothing read.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the store answers a read. No token needed.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.store.runs(&tollgate_store::RunFilter { limit: Some(1), ..tollgate_store::RunFilter::default() }).await
    {
        Ok(_) => "ready\n".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "not ready: the store failed a read");
            (StatusCode::SERVICE_UNAVAILABLE, "the store is not answering\n").into_response()
        }
    }
}

async fn not_found() -> Problem {
    Problem::new(Kind::NotFound, "no such endpoint (the API is under /v1)")
}

/// A request body read within `max_body` (else 413), for a handler to parse once the caller is
/// authorized.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(Kind::TooLarge, "the request body is larger than this server's max_body")
        }
        _ => Problem::new(Kind::BadRequest, format!("the request body could not be read: {}", rejection.body_text())),
    })
}

/// A query string the handler's type took, or a 400 saying what was wrong with it.
pub(crate) fn query<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, Problem> {
    query.map(|q| q.0).map_err(|e| Problem::new(Kind::BadRequest, e.body_text()))
}

/// A status filter that names no status: the value, clipped, in the 400.
pub(crate) fn unknown_status(value: &str) -> Problem {
    Problem::new(Kind::BadRequest, format!("unknown status `{}`", value.chars().take(40).collect::<String>()))
}

/// The `after` of a list request: the cursor [`next_page`] gave, or a 400. A cursor is
/// `<time>.<id>` of the last item of the previous page (a run's `created_at`, an approval's
/// `requested_at`).
pub(crate) fn page_after(after: Option<&str>) -> Result<Option<(i64, String)>, Problem> {
    let Some(text) = after else { return Ok(None) };
    let bad = || Problem::new(Kind::BadRequest, "`after` is not a cursor this server gave");
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(bad());
    }
    Ok(Some((at.parse().map_err(|_| bad())?, id.to_string())))
}

/// The cursor of the page after `page`: a full page may have a next one, starting after its
/// last item, whose `(time, id)` `key` gives.
pub(crate) fn next_page<T>(page: &[T], limit: u32, key: impl Fn(&T) -> (i64, &str)) -> Option<String> {
    let last = page.last().filter(|_| page.len() == limit as usize)?;
    let (at, id) = key(last);
    Some(format!("{at}.{id}"))
}

/// Parses a JSON body into `T`; the error names the line, column and what was expected.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| Problem::new(Kind::BadRequest, format!("invalid JSON body: {e}")))
}
