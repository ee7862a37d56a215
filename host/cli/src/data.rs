//! Where Tollgate keeps its state: the data directory with the SQLite store, and the audit
//! signing key (outside the database, so rolling the database back cannot hide it).

use std::path::{Path, PathBuf};
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
    /// The audit witness: signed checkpoints are appended here, and the store is compared with
    /// it before anything acts. Put it outside the data dir (another volume, an append-only
    /// mount) so it cannot be rolled back with the database [default: <audit key>.checkpoints.jsonl].
    #[arg(long, env = "TOLLGATE_AUDIT_WITNESS", global = true)]
    pub audit_witness: Option<PathBuf>,
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

    /// Opens (creating if needed) the store and its signing key, and checks the store against
    /// the key and the witness (a rolled-back database, a removed witness or a replaced key is
    /// an error; nothing acts on such a store).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(self.open_sqlite().await?)
    }

    /// [`DataArgs::open`], as the embedded backend (the server verifies the audit log with its key).
    pub async fn open_sqlite(&self) -> anyhow::Result<Arc<SqliteStore>> {
        let store = self.open_unchecked().await?;
        if let Some(signer) = store.signer() {
            tollgate_store::audit::check_anchor(&*store, signer).await?;
        }
        Ok(store)
    }

    /// Opens the store and its key without comparing them with the witness: for `audit
    /// verify`, which reports what does not match.
    pub async fn open_unchecked(&self) -> anyhow::Result<Arc<SqliteStore>> {
        let dir = self.dir()?;
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key = self.key_path()?;
        let db = self.db_path()?;
        let signer = match Signer::load(&key) {
            Err(tollgate_store::StoreError::NotFound { .. }) => {
                refuse_a_new_key_for_a_signed_store(&db, &key).await?;
                Signer::load_or_create(&key)
            }
            loaded => loaded,
        }
        .with_context(|| format!("audit key {}", key.display()))?;
        let signer = match &self.audit_witness {
            Some(witness) => signer.with_witness(witness),
            None => signer,
        };
        let store = SqliteStore::open(&db, Some(signer)).await.with_context(|| format!("store {}", db.display()))?;
        Ok(Arc::new(store))
    }
}

/// A missing key is created only for a store nothing was signed in: otherwise a new key would
/// silently disown every checkpoint (and `audit verify` would have nothing to check them with).
async fn refuse_a_new_key_for_a_signed_store(db: &Path, key: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        return Ok(());
    }
    let store = SqliteStore::open(db, None).await.with_context(|| format!("store {}", db.display()))?;
    let signed = store.audit_checkpoints().await;
    store.close().await;
    let signed = signed?.len();
    if signed > 0 {
        anyhow::bail!(
            "the audit key {} is missing, but the store {} has {signed} checkpoints signed with it; restore the key (a new one is never made for a signed store)",
            key.display(),
            db.display()
        );
    }
    Ok(())
}

/// Who is acting, for approvals and cancellations: the operating-system user running this
/// command (looked up by uid, not taken from `$USER`), with `--as` only as a label, as in
/// `root (as alice)`. Until the server's identities exist, that is all a local command can vouch
/// for. The runtime refuses names with control characters.
pub fn actor(label: Option<String>) -> String {
    let user = os_user();
    match label {
        Some(label) if label != user => format!("{user} (as {label})"),
        _ => user,
    }
}

/// The name of the effective user, or `uid <n>` when it has none.
pub fn os_user() -> String {
    // SAFETY: `geteuid` has no preconditions; `getpwuid_r` writes only into the buffers passed,
    // whose sizes are given, and `pw_name` points into `buf`, read before `buf` is dropped.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
            if !name.is_empty() {
                return name;
            }
        }
        format!("uid {uid}")
    }
}
