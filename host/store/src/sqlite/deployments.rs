//! Deployed workflow versions: one write transaction records a version (signed with the audit
//! key, audited) or moves a workflow's kill switch on every version's row (re-signed,
//! audited); reads return only rows whose signature holds, so a version forged, edited or
//! switched back on in the database file without the key does not exist.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::batch::Batch;
use super::write::{append_external, seal_audit};
use super::{SqliteStore, db_error};
use crate::{AuditEntry, Checkpoint, Deployed, DeploymentRecord, Durability, StoreError};

/// The columns, as a literal so queries stay static strings.
macro_rules! columns {
    () => {
        "name, version, digest, plugins, path, deployed_at, deployed_by, enabled, switched_at, signature"
    };
}

fn signer(store: &SqliteStore) -> Result<&crate::Signer, StoreError> {
    store.signer.as_deref().ok_or_else(|| StoreError::Key("the store has no audit key to sign deployments with".into()))
}

pub(super) async fn deploy(
    store: &SqliteStore,
    deployment: &DeploymentRecord,
    audit: &[AuditEntry],
) -> Result<Deployed, StoreError> {
    let signer = signer(store)?;
    let (mut tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    // Read under the write lock: two deploys of one version racing record it once.
    let existing =
        sqlx::query(concat!("SELECT ", columns!(), " FROM workflow_deployments WHERE name = ?1 AND version = ?2"))
            .bind(&deployment.name)
            .bind(&deployment.version)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error)
            .and_then(|row| row.as_ref().map(decode).transpose());
    // The kill switch is the workflow's, not the version's: a new version starts in the state
    // the other (signed) versions are in.
    let others = sqlx::query(concat!("SELECT ", columns!(), " FROM workflow_deployments WHERE name = ?1"))
        .bind(&deployment.name)
        .fetch_all(tx.conn())
        .await
        .map_err(db_error)
        .and_then(|rows| rows.iter().map(decode).collect::<Result<Vec<_>, _>>());
    let built = match (existing, others) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(Some(found)), _) => {
            let signed = signer.verify_message(&found.signed_message(), &found.signature);
            if found.same_content(deployment) && signed {
                Ok((Batch::default(), (Deployed::Existing(found), None)))
            } else if !signed {
                Err(StoreError::Tampered(format!(
                    "the database holds a row for {} {} that this store's key did not sign; remove it to deploy",
                    found.name, found.version
                )))
            } else {
                Err(StoreError::Immutable(format!(
                    "{} {} is already deployed with other content (workflow sha256 {}); a deployed version \
                     never changes: give the new one another `version`",
                    found.name, found.version, found.digest
                )))
            }
        }
        (Ok(None), Ok(others)) => {
            let mut signed = deployment.clone();
            signed.switched_at = signed.deployed_at;
            signed.enabled = others
                .iter()
                .filter(|d| signer.verify_message(&d.signed_message(), &d.signature))
                .max_by_key(|d| d.switched_at)
                .is_none_or(|d| d.enabled);
            signed.signature = signer.sign_message(&signed.signed_message());
            let mut batch = Batch::default();
            push_insert(&mut batch, &signed)?;
            seal_audit(store, &heads, audit, Checkpoint::Witnessed, &mut batch)
                .map(|cp| (batch, (Deployed::New(signed), cp)))
        }
    };
    let (deployed, checkpoint) = tx.finish(built).await?;
    append_external(store, checkpoint);
    Ok(deployed)
}

fn push_insert(batch: &mut Batch, d: &DeploymentRecord) -> Result<(), StoreError> {
    let plugins = serde_json::to_string(&d.plugins).map_err(|e| StoreError::Database(e.to_string()))?;
    batch.push(
        concat!("INSERT INTO workflow_deployments (", columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        [
            d.name.as_str().into(),
            d.version.as_str().into(),
            d.digest.as_str().into(),
            plugins.into(),
            d.path.as_str().into(),
            d.deployed_at.into(),
            d.deployed_by.as_str().into(),
            i64::from(d.enabled).into(),
            d.switched_at.into(),
            d.signature.as_str().into(),
        ],
    );
    Ok(())
}

pub(super) async fn switch(
    store: &SqliteStore,
    name: &str,
    enabled: bool,
    at: i64,
    audit: &[AuditEntry],
) -> Result<bool, StoreError> {
    let signer = signer(store)?;
    let (mut tx, heads) = store.writer.begin(Durability::Immediate, None).await?;
    let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM workflow_deployments WHERE name = ?1"))
        .bind(name)
        .fetch_all(tx.conn())
        .await
        .map_err(db_error)
        .and_then(|rows| rows.iter().map(decode).collect::<Result<Vec<_>, _>>());
    let built = rows.and_then(|rows| {
        // Only rows this store signed are switched (and so re-signed): a forged row stays forged.
        let valid: Vec<DeploymentRecord> =
            rows.into_iter().filter(|d| signer.verify_message(&d.signed_message(), &d.signature)).collect();
        if valid.is_empty() || valid.iter().all(|d| d.enabled == enabled) {
            return Ok((Batch::default(), (false, None)));
        }
        let mut batch = Batch::default();
        for mut d in valid {
            d.enabled = enabled;
            d.switched_at = at;
            d.signature = signer.sign_message(&d.signed_message());
            batch.push(
                "UPDATE workflow_deployments SET enabled = ?, switched_at = ?, signature = ? \
                 WHERE name = ? AND version = ?",
                [
                    i64::from(enabled).into(),
                    at.into(),
                    d.signature.as_str().into(),
                    d.name.as_str().into(),
                    d.version.as_str().into(),
                ],
            );
        }
        seal_audit(store, &heads, audit, Checkpoint::Witnessed, &mut batch).map(|cp| (batch, (true, cp)))
    });
    let (switched, checkpoint) = tx.finish(built).await?;
    append_external(store, checkpoint);
    Ok(switched)
}

pub(super) async fn list(store: &SqliteStore, name: Option<&str>) -> Result<Vec<DeploymentRecord>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM workflow_deployments WHERE (?1 IS NULL OR name = ?1) ORDER BY name, deployed_at, version"
    ))
    .bind(name)
    .fetch_all(&store.pool)
    .await
    .map_err(db_error)?;
    let decoded = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    Ok(decoded.into_iter().filter(|d| signed_by_store(store, d)).collect())
}

pub(super) async fn one(
    store: &SqliteStore,
    name: &str,
    version: &str,
) -> Result<Option<DeploymentRecord>, StoreError> {
    let row =
        sqlx::query(concat!("SELECT ", columns!(), " FROM workflow_deployments WHERE name = ?1 AND version = ?2"))
            .bind(name)
            .bind(version)
            .fetch_optional(&store.pool)
            .await
            .map_err(db_error)?;
    Ok(row.as_ref().map(decode).transpose()?.filter(|d| signed_by_store(store, d)))
}

fn signed_by_store(store: &SqliteStore, d: &DeploymentRecord) -> bool {
    let valid = store.signer.as_deref().is_some_and(|s| s.verify_message(&d.signed_message(), &d.signature));
    if !valid {
        tracing::warn!(workflow = %d.name, version = %d.version, "a deployment row is not signed by this store's audit key: ignored");
    }
    valid
}

fn decode(row: &SqliteRow) -> Result<DeploymentRecord, StoreError> {
    let get = |e: sqlx::Error| db_error(e);
    let plugins: String = row.try_get("plugins").map_err(get)?;
    let plugins: BTreeMap<String, String> = serde_json::from_str(&plugins)
        .map_err(|e| StoreError::Corrupt { what: "deployment", message: e.to_string() })?;
    Ok(DeploymentRecord {
        name: row.try_get("name").map_err(get)?,
        version: row.try_get("version").map_err(get)?,
        digest: row.try_get("digest").map_err(get)?,
        plugins,
        path: row.try_get("path").map_err(get)?,
        deployed_at: row.try_get("deployed_at").map_err(get)?,
        deployed_by: row.try_get("deployed_by").map_err(get)?,
        enabled: row.try_get("enabled").map_err(get)?,
        switched_at: row.try_get("switched_at").map_err(get)?,
        signature: row.try_get("signature").map_err(get)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::audit::{Signer, WorkflowDeployed, WorkflowSwitched};
    use crate::{AuditEntry, Deployed, DeploymentRecord, SqliteStore, Store, StoreError};

    fn version(v: &str, digest: &str) -> DeploymentRecord {
        DeploymentRecord {
            name: "review".into(),
            version: v.into(),
            digest: digest.repeat(64),
            plugins: BTreeMap::from([("echo".into(), "e".repeat(64))]),
            path: format!("/data/deployments/review/{v}/workflow.toml"),
            deployed_at: 10,
            deployed_by: "ada".into(),
            enabled: true,
            switched_at: 0,
            signature: String::new(),
        }
    }

    fn deployed(d: &DeploymentRecord) -> Vec<AuditEntry> {
        let event = WorkflowDeployed {
            workflow: d.name.clone(),
            version: d.version.clone(),
            workflow_sha256: d.digest.clone(),
            plugins: d.plugins.clone(),
            by: d.deployed_by.clone(),
        };
        vec![AuditEntry { ts: d.deployed_at, run_id: None, event: event.into() }]
    }

    fn switched(enabled: bool) -> Vec<AuditEntry> {
        let event = WorkflowSwitched { workflow: "review".into(), enabled, by: "ada".into() };
        vec![AuditEntry { ts: 20, run_id: None, event: event.into() }]
    }

    async fn store(dir: &std::path::Path) -> Arc<SqliteStore> {
        let signer = Signer::load_or_create(&dir.join("key")).unwrap();
        Arc::new(SqliteStore::open(&dir.join("t.db"), Some(signer)).await.unwrap())
    }

    #[tokio::test]
    async fn a_version_is_recorded_once_and_never_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let v1 = version("1.0.0", "a");
        let Deployed::New(stored) = s.deploy_workflow(&v1, &deployed(&v1)).await.unwrap() else { panic!("not new") };
        assert!(stored.enabled);
        assert_eq!(s.deployment("review", "1.0.0").await.unwrap(), Some(stored.clone()));
        // The same content again: the record as it was, nothing written.
        assert_eq!(s.deploy_workflow(&v1, &deployed(&v1)).await.unwrap(), Deployed::Existing(stored));
        // Other content under the same version: refused.
        let changed = version("1.0.0", "b");
        assert!(matches!(s.deploy_workflow(&changed, &deployed(&changed)).await, Err(StoreError::Immutable(_))));
        let kinds: Vec<String> = s.audit_records(0, 10).await.unwrap().into_iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["workflow.deployed"]);
    }

    #[tokio::test]
    async fn the_kill_switch_is_the_workflows_and_new_versions_inherit_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let v1 = version("1.0.0", "a");
        s.deploy_workflow(&v1, &deployed(&v1)).await.unwrap();
        assert!(s.switch_workflow("review", false, 20, &switched(false)).await.unwrap());
        assert!(!s.switch_workflow("review", false, 21, &switched(false)).await.unwrap(), "already off");
        assert!(!s.switch_workflow("nothing", false, 21, &switched(false)).await.unwrap());
        let off = s.deployment("review", "1.0.0").await.unwrap().unwrap();
        assert_eq!((off.enabled, off.switched_at), (false, 20));
        let v2 = version("2.0.0", "b");
        let Deployed::New(v2) = s.deploy_workflow(&v2, &deployed(&v2)).await.unwrap() else { panic!() };
        assert!(!v2.enabled, "a new version of a disabled workflow starts disabled");
        assert!(s.switch_workflow("review", true, 30, &switched(true)).await.unwrap());
        assert!(s.deployments(Some("review")).await.unwrap().iter().all(|d| d.enabled));
        let kinds: Vec<String> = s.audit_records(0, 10).await.unwrap().into_iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["workflow.deployed", "workflow.switched", "workflow.deployed", "workflow.switched"]);
    }

    /// Someone who can write the database file but holds no key: a forged version does not
    /// exist, a disabled one switched back on in the row is not deployed at all (fail closed),
    /// and a forged enabled row does not turn on a new version of a disabled workflow.
    #[tokio::test]
    async fn rows_the_store_did_not_sign_are_not_deployed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let v1 = version("1.0.0", "a");
        s.deploy_workflow(&v1, &deployed(&v1)).await.unwrap();
        s.switch_workflow("review", false, 20, &switched(false)).await.unwrap();
        sqlx::query("UPDATE workflow_deployments SET enabled = 1").execute(&s.pool).await.unwrap();
        assert_eq!(s.deployment("review", "1.0.0").await.unwrap(), None);
        assert!(s.deployments(None).await.unwrap().is_empty());
        sqlx::query("UPDATE workflow_deployments SET enabled = 0").execute(&s.pool).await.unwrap();
        assert!(s.deployment("review", "1.0.0").await.unwrap().is_some(), "the signed state is back");
        sqlx::query(
            "INSERT INTO workflow_deployments (name, version, digest, plugins, path, deployed_at, deployed_by, \
             enabled, switched_at, signature) VALUES ('review', '9.0.0', 'x', '{}', '/tmp/evil.toml', 1, 'm', 1, 99, '00')",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        assert_eq!(s.deployment("review", "9.0.0").await.unwrap(), None);
        let v2 = version("2.0.0", "b");
        let Deployed::New(v2) = s.deploy_workflow(&v2, &deployed(&v2)).await.unwrap() else { panic!() };
        assert!(!v2.enabled, "the forged row's switch is not the workflow's");
        let forged = version("9.0.0", "c");
        assert!(matches!(s.deploy_workflow(&forged, &deployed(&forged)).await, Err(StoreError::Tampered(_))));
    }

    #[tokio::test]
    async fn a_store_without_a_key_cannot_deploy() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), None).await.unwrap();
        let v1 = version("1.0.0", "a");
        assert!(matches!(s.deploy_workflow(&v1, &deployed(&v1)).await, Err(StoreError::Key(_))));
    }
}
