//! Leases: one process advances a run at a time. [`Runtime::advance_leased`] takes the run's
//! lease through the store (owner, expiry, a fencing token), renews it while the run advances,
//! stops at the next step boundary if it is lost, and gives it up when the advance returns.
//! Every commit made meanwhile carries the lease's fence, which the store checks under its
//! write lock: a process that stalled past its lease and was taken over writes nothing more.
//!
//! A lease held by a process on this host that is gone (its pid no longer exists: kill -9) is
//! taken over at once; one held elsewhere, when it expires. The claims of calls with effects
//! (`claim.rs`) are the second line: whoever takes a run over runs an in-flight call again only
//! when its tool is idempotent, else a person decides.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tollgate_store::{Fence, LeaseClaim, RunLease};

use crate::advance::RunOutcome;
use crate::error::RuntimeError;
use crate::events::{Event, Observer};
use crate::ids::now_ms;
use crate::runtime::Runtime;

/// How long a lease lasts unless renewed, by default (renewed every third of it).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// This process as leases name it: `host:pid:nonce` (the nonce tells a restarted process
/// with a reused pid from the one before).
pub fn process_owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let mut nonce = [0u8; 4];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        format!("{}:{}", crate::claim::this_process(), hex::encode(nonce))
    })
}

/// Whether `owner` (as [`process_owner`] spells it) is a process of this host that is gone.
fn gone(owner: &str) -> bool {
    let Some((process, _nonce)) = owner.rsplit_once(':') else { return false };
    crate::claim::process_gone(process)
}

/// What [`Runtime::advance_leased`] did.
#[derive(Debug)]
pub enum Leased {
    Advanced(RunOutcome),
    /// Another live process holds the run's lease: it is advancing the run.
    HeldBy {
        owner: String,
        until: i64,
    },
}

/// The caller's observer, and `false` from `keep_going` once the lease is lost.
struct Watch<'a> {
    inner: &'a dyn Observer,
    lost: Arc<AtomicBool>,
}

impl Observer for Watch<'_> {
    fn event(&self, event: &Event) {
        self.inner.event(event);
    }
    fn keep_going(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && self.inner.keep_going()
    }
}

impl Runtime {
    /// The fence of the lease `run_id` is advanced under in this runtime, if any.
    pub(crate) fn fence_of(&self, run_id: &str) -> Option<Fence> {
        self.fences.lock().unwrap_or_else(|e| e.into_inner()).get(run_id).cloned()
    }

    /// [`Runtime::advance`] under the run's lease, held for `ttl` at a time.
    pub async fn advance_leased(
        &self,
        run_id: &str,
        ttl: Duration,
        observer: &dyn Observer,
    ) -> Result<Leased, RuntimeError> {
        let owner = process_owner();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut claim = self.store.claim_run(run_id, owner, now_ms(), ttl_ms, None).await?;
        if let LeaseClaim::Held(holder) = &claim
            && gone(&holder.owner)
        {
            claim = self.store.claim_run(run_id, owner, now_ms(), ttl_ms, Some(holder)).await?;
        }
        let lease = match claim {
            LeaseClaim::Granted(lease) => lease,
            LeaseClaim::Held(holder) => return Ok(Leased::HeldBy { owner: holder.owner, until: holder.expires_at }),
        };
        self.fences.lock().unwrap_or_else(|e| e.into_inner()).insert(run_id.to_string(), lease.fence());
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(renew(self.store.clone(), lease.clone(), ttl, lost.clone()));
        let result = self.advance(run_id, &Watch { inner: observer, lost }).await;
        heartbeat.abort();
        self.fences.lock().unwrap_or_else(|e| e.into_inner()).remove(run_id);
        // A release that fails leaves the lease to expire by itself.
        let _ = self.store.release_run(&lease).await;
        result.map(Leased::Advanced)
    }
}

/// Renews `lease` every third of `ttl` until aborted; a renewal that finds it gone (or fails
/// until it would have expired) sets `lost`.
async fn renew(store: Arc<dyn tollgate_store::Store>, lease: RunLease, ttl: Duration, lost: Arc<AtomicBool>) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
    let mut held_until = lease.expires_at;
    loop {
        tokio::time::sleep(ttl / 3).await;
        let now = now_ms();
        match store.renew_run(&lease, now, ttl_ms).await {
            Ok(true) => held_until = now.saturating_add(ttl_ms),
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(_) if now < held_until => {}
            Err(_) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}
