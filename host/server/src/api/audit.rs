//! `GET /v1/audit/verify`: the hash chain checked end to end against the signed checkpoints in
//! the database and the external witness, as `tollgate audit verify` does.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::access::Endpoint;
use crate::auth::AppState;
use crate::problem::{Kind, Problem};

pub async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::VerifyAudit).await?;
    match tollgate_store::audit::verify_store_with(&*state.sqlite, state.sqlite.signer()).await {
        Ok(report) => Ok(Json(json!({"ok": true, "report": report}))),
        Err(tollgate_store::audit::VerifyStoreError::Tamper(tamper)) => {
            Ok(Json(json!({"ok": false, "tamper": tamper.to_string()})))
        }
        Err(e) => {
            tracing::error!(error = %e, "audit verify failed");
            Err(Problem::new(Kind::Internal, "the audit log could not be read; the server log has the reason"))
        }
    }
}
