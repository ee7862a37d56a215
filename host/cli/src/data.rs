//! Where Tollgate keeps its state: the data directory with the SQLite store, and the audit
//! signing key (outside the database, so rolling the database back cannot hide it).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tollgate_store::audit::Signer;
use tollgate_store::{SqliteStore, Store};

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data directory holding the run store [default: $XDG_DATA_HOME/tollgate or ~/.local/share/tollgate].
    #[arg(long, env = "TOLLGATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Ed25519 key that signs audit checkpoints [default: <data dir>/audit-signing.key].
    #[arg(long, env = "TOLLGATE_AUDIT_KEY", global = true)]
    pub audit_key: Option<PathBuf>,
}

impl DataArgs {
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .context("no --data-dir, TOLLGATE_DATA_DIR, XDG_DATA_HOME or HOME to put the store in")?;
        Ok(base.join("tollgate"))
    }

    pub fn key_path(&self) -> anyhow::Result<PathBuf> {
        match &self.audit_key {
            Some(k) => Ok(k.clone()),
            None => Ok(self.dir()?.join("audit-signing.key")),
        }
    }

    pub fn db_path(&self) -> anyhow::Result<PathBuf> {
        Ok(self.dir()?.join("tollgate.db"))
    }

    /// Opens (creating if needed) the store and its signing key.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        let dir = self.dir()?;
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key = self.key_path()?;
        let signer = Signer::load_or_create(&key).with_context(|| format!("audit key {}", key.display()))?;
        let db = self.db_path()?;
        let store = SqliteStore::open(&db, Some(signer)).await.with_context(|| format!("store {}", db.display()))?;
        Ok(Arc::new(store))
    }
}

/// Who is acting, for approvals and cancellations: `--as`, else $USER, else `operator`.
pub fn actor(explicit: Option<String>) -> String {
    explicit.or_else(|| std::env::var("USER").ok()).filter(|s| !s.is_empty()).unwrap_or_else(|| "operator".into())
}
