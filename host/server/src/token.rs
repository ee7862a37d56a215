//! API tokens: `tok_<12 hex>.<64 hex>` — a public id, then a 256-bit secret. Only the secret's
//! sha256 is stored (signed with the audit key, `tollgate_store::TokenRecord`); the whole token
//! is shown once, when it is made, and never logged, echoed or audited.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tollgate_store::audit::{TokenCreated, TokenRevoked};
use tollgate_store::{AuditEntry, Store, StoreError, TokenRecord};

use crate::access::Role;

/// Longest token name: it is the identity in audit records.
const MAX_NAME: usize = 64;

/// A token just made: its record and the one copy of the secret token text.
#[derive(Debug)]
pub struct Minted {
    pub record: TokenRecord,
    /// `tok_<id>.<secret>`: shown once.
    pub token: String,
}

/// Why a token could not be made or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name `{0}` must be 1 to 64 characters of letters, digits, `.`, `_`, `-` or `@`")]
    BadName(String),
    #[error("a live {1} token named `{0}` exists: revoke it first or pick another name")]
    NameTaken(String, &'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// sha256 (hex) of a token's secret half.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Makes a token named `name` with `role`, valid for `valid_for` (or until revoked), created by
/// `by` (`local:<user>` from the command line, or the admin token's name), and audits it.
pub async fn create(
    store: &dyn Store,
    name: &str,
    role: Role,
    valid_for: Option<Duration>,
    by: &str,
) -> Result<Minted, TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName(name.chars().take(80).collect()));
    }
    let now = now_ms();
    // A name is a person (or a service): it may hold one live token per role — an operator
    // token and an approver token of one person are one identity, which is what stops them
    // approving the runs they start.
    if store.tokens().await?.iter().any(|t| t.name == name && t.role == role.name() && live(t, now)) {
        return Err(TokenError::NameTaken(name.to_string(), role.name()));
    }
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    OsRng.fill_bytes(&mut secret);
    let (id, secret) = (format!("tok_{}", hex::encode(id)), hex::encode(secret));
    let expires_at = valid_for.map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let record = TokenRecord {
        id: id.clone(),
        name: name.to_string(),
        role: role.name().to_string(),
        secret_hash: hash_secret(&secret),
        created_at: now,
        created_by: by.to_string(),
        expires_at,
        revoked_at: None,
        signature: String::new(),
    };
    let event =
        TokenCreated { token_id: id.clone(), name: name.into(), role: role.name().into(), expires_at, by: by.into() };
    let record = store.create_token(&record, &[AuditEntry { ts: now, run_id: None, event: event.into() }]).await?;
    Ok(Minted { record, token: format!("{id}.{secret}") })
}

/// Revokes token `id`; `false` when there is no such live token.
pub async fn revoke(store: &dyn Store, id: &str, by: &str) -> Result<bool, TokenError> {
    let Some(token) = store.token(id).await? else { return Ok(false) };
    let now = now_ms();
    let event = TokenRevoked { token_id: token.id.clone(), name: token.name.clone(), by: by.into() };
    Ok(store.revoke_token(id, now, &[AuditEntry { ts: now, run_id: None, event: event.into() }]).await?)
}

/// Not revoked and not expired at `now`.
pub fn live(token: &TokenRecord, now: i64) -> bool {
    token.revoked_at.is_none() && token.expires_at.is_none_or(|at| now < at)
}

/// Splits presented token text into its id and secret, or `None` when it is not shaped like one
/// (checked before any store read, so junk costs nothing).
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.split_once('.')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (id.strip_prefix("tok_").is_some_and(|h| hex(h, 12)) && hex(secret, 64)).then_some((id, secret))
}

/// Compares two equal-length hex digests without an early exit.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_text_is_parsed_strictly() {
        let secret = "a".repeat(64);
        let good = format!("tok_0123456789ab.{secret}");
        assert_eq!(parse(&good), Some(("tok_0123456789ab", secret.as_str())));
        for bad in ["", "tok_0123456789ab", "tok_0123456789ab.", "tok_0123456789AB.x", "tok_01.aa", "x.y"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse(&format!("tok_0123456789ab.{}", "A".repeat(64))), None);
        assert!(same_digest("abc", "abc") && !same_digest("abc", "abd") && !same_digest("ab", "abc"));
        assert!(valid_name("ada@finance") && !valid_name("ada lovelace") && !valid_name(&"a".repeat(65)));
    }
}
