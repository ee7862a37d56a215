//! Who is calling: the `Authorization: Bearer <token>` header checked against the store's
//! signed token rows, then the token's per-minute budget, then [`crate::access`] for the
//! endpoint. Handlers take a [`Caller`] built by [`authorize`]; nothing else reads the header.
//!
//! Every failure to authenticate looks the same to the client (malformed, unknown, wrong
//! secret, expired, revoked): a 401 that says which of those it was would help whoever is
//! guessing. The server log says which.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use tollgate_store::Store;

use crate::access::{self, Endpoint, Role};
use crate::problem::{Kind, Problem};
use crate::token;

/// An authenticated, authorized caller: the identity requests act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    /// The token's name: what audit records say did it.
    pub name: String,
    pub role: Role,
}

/// Fixed one-minute windows per token.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    /// Counts one request of `key` at `now_ms`; the seconds to wait when over `per_minute`.
    pub fn take(&self, key: &str, per_minute: u32, now_ms: i64) -> Result<(), u64> {
        self.spent(key, per_minute, now_ms).map_or(Ok(()), Err)?;
        self.count(key, now_ms);
        Ok(())
    }

    /// The seconds to wait when `key` has used up `per_minute` in this minute.
    pub fn spent(&self, key: &str, per_minute: u32, now_ms: i64) -> Option<u64> {
        let window = now_ms.div_euclid(60_000);
        let windows = self.windows();
        let used = windows.get(key).filter(|(w, _)| *w == window).map_or(0, |(_, n)| *n);
        (used >= per_minute).then(|| u64::try_from(((window + 1) * 60_000 - now_ms).div_euclid(1000) + 1).unwrap_or(60))
    }

    /// Counts one against `key` in this minute.
    pub fn count(&self, key: &str, now_ms: i64) {
        let window = now_ms.div_euclid(60_000);
        let mut windows = self.windows();
        // Old windows are dropped as they pass, so the map holds only this minute's keys.
        windows.retain(|_, (w, _)| *w == window);
        windows.entry(key.to_string()).or_insert((window, 0)).1 += 1;
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, u32)>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Middleware on every route: refuses an address whose failed authentications this minute
/// (`failed_auth_per_minute`) are spent, with 429 and no token lookup — guessing tokens costs
/// the guesser, not the store — and counts each 401 it is answered.
pub async fn failed_auth_budget(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::ConnectInfo(crate::listen::Peer(peer)): axum::extract::ConnectInfo<crate::listen::Peer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let key = format!("ip:{}", peer.ip());
    let now = token::now_ms();
    if let Some(wait) = state.failures.spent(&key, state.failed_auth_per_minute, now) {
        tracing::info!(%peer, "request refused: too many failed authentications");
        let problem = Problem::new(Kind::RateLimited, "too many failed authentications from this address");
        return Problem { retry_after: Some(wait), ..problem }.into_response();
    }
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
        state.failures.count(&key, now);
    }
    response
}

/// Authenticates the request's bearer token, charges its rate budget and checks that its role
/// may call `endpoint`.
pub async fn authorize(
    store: &dyn Store,
    limiter: &RateLimiter,
    per_minute: u32,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> Result<Caller, Problem> {
    let unauthenticated = |why: &str| {
        tracing::info!(why, "request refused: unauthenticated");
        Problem::new(Kind::Unauthenticated, "a valid API token is required: `Authorization: Bearer <token>`")
    };
    let header =
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(|| unauthenticated("no header"))?;
    let presented = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| unauthenticated("not a bearer token"))?;
    let (id, secret) = token::parse(presented.trim()).ok_or_else(|| unauthenticated("malformed token"))?;
    let record = store.token(id).await?.ok_or_else(|| unauthenticated("unknown or unsigned token id"))?;
    if !token::same_digest(&token::hash_secret(secret), &record.secret_hash) {
        return Err(unauthenticated("wrong secret"));
    }
    let now = token::now_ms();
    if !token::live(&record, now) {
        return Err(unauthenticated("expired or revoked"));
    }
    let role = Role::parse(&record.role).ok_or_else(|| unauthenticated("unknown role"))?;
    limiter.take(&record.id, per_minute, now).map_err(|wait| Problem {
        retry_after: Some(wait),
        ..Problem::new(Kind::RateLimited, format!("this token's {per_minute} requests per minute are spent"))
    })?;
    if !access::allowed(role, endpoint) {
        return Err(Problem::new(Kind::Forbidden, format!("role `{role}` may not do this")));
    }
    Ok(Caller { token_id: record.id, name: record.name, role })
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The same store, as the embedded backend: audit verification reads its key and witness.
    pub sqlite: Arc<tollgate_store::SqliteStore>,
    /// Loads a run's plugins where a decision needs them (an approval with an edited input).
    pub sandbox: tollgate_sandbox::Sandbox,
    pub limiter: Arc<RateLimiter>,
    pub requests_per_minute: u32,
    /// Failed authentications per client address ([`failed_auth_budget`]).
    pub failures: Arc<RateLimiter>,
    pub failed_auth_per_minute: u32,
    /// Continues a run after a decision.
    pub worker: Arc<crate::worker::Worker>,
    /// Where deploys snapshot workflows, where the API may deploy from, and what runs start with.
    pub deploys: Arc<crate::api::Deploys>,
}

impl AppState {
    pub async fn caller(&self, headers: &HeaderMap, endpoint: Endpoint) -> Result<Caller, Problem> {
        authorize(&*self.store, &self.limiter, self.requests_per_minute, headers, endpoint).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_is_per_token_per_minute() {
        let limiter = RateLimiter::default();
        let t = 120_000 + 15_000;
        assert!(limiter.take("a", 2, t).is_ok() && limiter.take("a", 2, t + 1).is_ok());
        assert_eq!(limiter.take("a", 2, t + 2), Err(45), "until the next minute");
        assert!(limiter.take("b", 2, t + 2).is_ok(), "another token has its own budget");
        assert!(limiter.take("a", 2, 180_000).is_ok(), "a new window");
        assert_eq!(limiter.spent("c", 1, 180_000), None);
        limiter.count("c", 180_000);
        assert_eq!(limiter.spent("c", 1, 180_500), Some(60));
    }
}
