//! Tokens over the API (admin only): list (never secrets or hashes), create (the token is in
//! the response once), revoke. And `GET /v1/whoami`, for any token: who the server takes you for.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::TokenRecord;

use super::{body_bytes, parse_json};
use crate::access::{Endpoint, Role};
use crate::auth::AppState;
use crate::problem::{Kind, Problem};
use crate::token::{self, TokenError};

pub async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    let caller = state.caller(&headers, Endpoint::Whoami).await?;
    Ok(Json(json!({"name": caller.name, "role": caller.role, "token_id": caller.token_id})))
}

/// What a token looks like from outside: no secret, no hash, no signature.
fn public(t: &TokenRecord) -> Value {
    json!({
        "id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at, "created_by": t.created_by,
        "expires_at": t.expires_at, "revoked_at": t.revoked_at, "live": token::live(t, token::now_ms()),
    })
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.caller(&headers, Endpoint::ListTokens).await?;
    let tokens: Vec<Value> = state.store.tokens().await?.iter().map(public).collect();
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    role: String,
    /// How long it is valid, e.g. `90d`; absent: until revoked.
    expires_in: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let caller = state.caller(&headers, Endpoint::CreateToken).await?;
    let body: CreateBody = parse_json(&body_bytes(body)?)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| Problem::new(Kind::BadRequest, "role must be admin, operator, approver, auditor or viewer"))?;
    let valid_for = body
        .expires_in
        .as_deref()
        .map(tollgate_contract::units::parse_duration)
        .transpose()
        .map_err(|e| Problem::new(Kind::BadRequest, format!("expires_in: {e}")))?;
    let minted =
        token::create(&*state.store, &body.name, role, valid_for, &caller.name).await.map_err(token_problem)?;
    let mut out = public(&minted.record);
    out["token"] = json!(minted.token);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let caller = state.caller(&headers, Endpoint::RevokeToken).await?;
    match token::revoke(&*state.store, &id, &caller.name).await.map_err(token_problem)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Problem::new(Kind::NotFound, "no such live token")),
    }
}

fn token_problem(e: TokenError) -> Problem {
    match e {
        TokenError::BadName(_) => Problem::new(Kind::BadRequest, e.to_string()),
        TokenError::NameTaken(..) => Problem::new(Kind::Conflict, e.to_string()),
        TokenError::Store(e) => e.into(),
    }
}
