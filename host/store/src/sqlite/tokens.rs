//! API tokens: one write transaction to create one (signed with the audit key, audited), one to
//! revoke one (audited), and reads that return only rows whose signature holds — a row written
//! into the database file by anyone without the key authenticates nobody.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::batch::Batch;
use super::write::{append_external, seal_audit};
use super::{SqliteStore, db_error};
use crate::{AuditEntry, Checkpoint, Durability, StoreError, TokenRecord};

/// The columns, as a literal so queries stay static strings.
macro_rules! columns {
    () => {
        "id, name, role, secret_hash, created_at, created_by, expires_at, revoked_at, signature"
    };
}

pub(super) async fn create(
    store: &SqliteStore,
    token: &TokenRecord,
    audit: &[AuditEntry],
) -> Result<TokenRecord, StoreError> {
    let signer = store
        .signer
        .as_deref()
        .ok_or_else(|| StoreError::Key("the store has no audit key to sign tokens with".into()))?;
    let mut signed = token.clone();
    signed.revoked_at = None;
    signed.signature = signer.sign_message(&signed.signed_message());
    let (tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    let mut batch = Batch::default();
    batch.push(
        concat!("INSERT INTO api_tokens (", columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)"),
        [
            signed.id.as_str().into(),
            signed.name.as_str().into(),
            signed.role.as_str().into(),
            signed.secret_hash.as_str().into(),
            signed.created_at.into(),
            signed.created_by.as_str().into(),
            signed.expires_at.into(),
            signed.signature.as_str().into(),
        ],
    );
    let built = seal_audit(store, &heads, audit, Checkpoint::Witnessed, &mut batch).map(|cp| (batch, cp));
    let checkpoint = tx.finish(built).await?;
    append_external(store, checkpoint);
    Ok(signed)
}

pub(super) async fn revoke(store: &SqliteStore, id: &str, at: i64, audit: &[AuditEntry]) -> Result<bool, StoreError> {
    let (mut tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    // Checked under the write lock, so two revocations record one `token.revoked`.
    let live: Result<Option<i64>, StoreError> =
        sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error);
    let built = match live {
        Err(e) => Err(e),
        Ok(None) => Ok((Batch::default(), (false, None))),
        Ok(Some(_)) => {
            let mut batch = Batch::default();
            batch.push("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", [at.into(), id.into()]);
            seal_audit(store, &heads, audit, Checkpoint::Witnessed, &mut batch).map(|cp| (batch, (true, cp)))
        }
    };
    let (revoked, checkpoint) = tx.finish(built).await?;
    append_external(store, checkpoint);
    Ok(revoked)
}

pub(super) async fn one(store: &SqliteStore, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM api_tokens WHERE id = ?1"))
        .bind(id)
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error)?;
    Ok(row.as_ref().map(decode).transpose()?.filter(|t| signed_by_store(store, t)))
}

pub(super) async fn all(store: &SqliteStore) -> Result<Vec<TokenRecord>, StoreError> {
    let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM api_tokens ORDER BY created_at, id"))
        .fetch_all(&store.pool)
        .await
        .map_err(db_error)?;
    let decoded = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    Ok(decoded.into_iter().filter(|t| signed_by_store(store, t)).collect())
}

fn signed_by_store(store: &SqliteStore, token: &TokenRecord) -> bool {
    let valid = store.signer.as_deref().is_some_and(|s| s.verify_message(&token.signed_message(), &token.signature));
    if !valid {
        tracing::warn!(token = %token.id, "an API token row is not signed by this store's audit key: ignored");
    }
    valid
}

fn decode(row: &SqliteRow) -> Result<TokenRecord, StoreError> {
    let get = |e: sqlx::Error| db_error(e);
    Ok(TokenRecord {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        role: row.try_get("role").map_err(get)?,
        secret_hash: row.try_get("secret_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        created_by: row.try_get("created_by").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
        signature: row.try_get("signature").map_err(get)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::audit::{Signer, TokenCreated, TokenRevoked};
    use crate::{AuditEntry, SqliteStore, Store, StoreError, TokenRecord};

    fn token(id: &str) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            name: "ada".into(),
            role: "approver".into(),
            secret_hash: "ab".repeat(32),
            created_at: 5,
            created_by: "local:root".into(),
            expires_at: None,
            revoked_at: None,
            signature: String::new(),
        }
    }

    fn created(t: &TokenRecord) -> Vec<AuditEntry> {
        let event = TokenCreated {
            token_id: t.id.clone(),
            name: t.name.clone(),
            role: t.role.clone(),
            expires_at: t.expires_at,
            by: t.created_by.clone(),
        };
        vec![AuditEntry { ts: 5, run_id: None, event: event.into() }]
    }

    async fn store(dir: &std::path::Path) -> Arc<SqliteStore> {
        let signer = Signer::load_or_create(&dir.join("key")).unwrap();
        Arc::new(SqliteStore::open(&dir.join("t.db"), Some(signer)).await.unwrap())
    }

    #[tokio::test]
    async fn tokens_are_signed_read_back_and_revoked_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let t = token("tok_000000000001");
        let stored = s.create_token(&t, &created(&t)).await.unwrap();
        assert_eq!(stored.signature.len(), 128);
        assert_eq!(s.token(&t.id).await.unwrap(), Some(stored.clone()));
        assert_eq!(s.tokens().await.unwrap(), vec![stored]);
        let revoked = |by: &str| {
            vec![AuditEntry {
                ts: 6,
                run_id: None,
                event: TokenRevoked { token_id: t.id.clone(), name: "ada".into(), by: by.into() }.into(),
            }]
        };
        assert!(s.revoke_token(&t.id, 6, &revoked("admin")).await.unwrap());
        assert!(!s.revoke_token(&t.id, 7, &revoked("admin")).await.unwrap(), "revoked twice");
        assert!(!s.revoke_token("tok_nope", 7, &revoked("admin")).await.unwrap());
        assert_eq!(s.token(&t.id).await.unwrap().unwrap().revoked_at, Some(6));
        let kinds: Vec<String> = s.audit_records(0, 10).await.unwrap().into_iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["token.created", "token.revoked"]);
    }

    /// A row written into the database file without the key — a new admin, or an existing
    /// token's role raised — authenticates nobody.
    #[tokio::test]
    async fn rows_not_signed_by_the_store_key_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let t = token("tok_000000000001");
        s.create_token(&t, &created(&t)).await.unwrap();
        sqlx::query("UPDATE api_tokens SET role = 'admin'").execute(&s.pool).await.unwrap();
        assert_eq!(s.token(&t.id).await.unwrap(), None);
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, secret_hash, created_at, created_by, signature) \
             VALUES ('tok_forged', 'mallory', 'admin', 'x', 1, 'me', '00')",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        assert_eq!(s.token("tok_forged").await.unwrap(), None);
        assert!(s.tokens().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_store_without_a_key_cannot_create_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), None).await.unwrap();
        let t = token("tok_000000000001");
        assert!(matches!(s.create_token(&t, &created(&t)).await, Err(StoreError::Key(_))));
    }
}
