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
    /// Counts one request of `token_id` at `now_ms`; the seconds to wait when over `per_minute`.
    pub fn take(&self, token_id: &str, per_minute: u32, now_ms: i64) -> Result<(), u64> {
        let window = now_ms.div_euclid(60_000);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Old windows are dropped as they pass, so the map holds at most the live tokens.
        windows.retain(|_, (w, _)| *w == window);
        let entry = windows.entry(token_id.to_string()).or_insert((window, 0));
        if entry.1 >= per_minute {
            let next = (window + 1) * 60_000;
            return Err(u64::try_from((next - now_ms).div_euclid(1000) + 1).unwrap_or(60));
        }
        entry.1 += 1;
        Ok(())
    }
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
    /// Continues a run after a decision.
    pub worker: Arc<crate::worker::Worker>,
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
    }
}
