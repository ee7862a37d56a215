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
fn os_user() -> String {
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
