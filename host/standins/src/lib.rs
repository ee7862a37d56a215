//! Local HTTP stand-ins for the three vendor APIs Tollgate's connectors call: HubSpot CRM v3,
//! the Meta Marketing (Graph) API and SendGrid v3 Mail Send.
//!
//! This module owns the public entry points: [`StandIns`] (start all three), [`StandIn`] (one
//! running server: address, request log, side-effect counter, shutdown on drop), [`Tokens`]
//! and [`BackgroundRuntime`] for synchronous tests. Each stand-in listens on an ephemeral
//! `127.0.0.1` port, checks auth like the real API, keeps seeded state in memory, honours
//! `Idempotency-Key` on mutating routes (unless told not to, like a vendor that does not
//! deduplicate: [`StandIn::set_deduplicate`]) and records every request, rejected ones included.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tollgate_standins::{StandIns, Tokens};
//! let standins = StandIns::start(Tokens::default()).await?;
//! println!("HubSpot at {}", standins.hubspot.base_url());
//! // ... drive the APIs, then inspect:
//! assert_eq!(standins.sendgrid.side_effects(), 0);
//! # Ok(()) }
//! ```

#![expect(
    clippy::result_large_err,
    reason = "handlers return `Result<_, Response>` to bail out with a vendor-shaped error response; the large `Err` is fine off any hot path"
)]

pub mod hubspot;
pub mod meta;
mod recorder;
pub mod sendgrid;
mod support;

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use hubspot::{Association, CrmObject, HubSpotState};
pub use meta::{Campaign, MetaState};
pub use recorder::RecordedRequest;
pub use sendgrid::{SendGridState, SentMail};

use recorder::Recorder;

/// The credentials each stand-in accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// HubSpot private-app token, sent as `Authorization: Bearer <token>`.
    pub hubspot: String,
    /// Meta access token, sent as `access_token=` or `Authorization: Bearer <token>`.
    pub meta: String,
    /// SendGrid API key, sent as `Authorization: Bearer <key>`.
    pub sendgrid: String,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            hubspot: "hubspot-test-token".to_owned(),
            meta: "meta-test-token".to_owned(),
            sendgrid: "SG.test-token".to_owned(),
        }
    }
}

/// One running stand-in server. Dropping it stops the server (graceful shutdown).
pub struct StandIn {
    addr: SocketAddr,
    recorder: Recorder,
    shutdown: Option<oneshot::Sender<()>>,
}

impl StandIn {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order of completion, including rejected ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorder.requests()
    }

    /// Number of mutating operations actually applied (idempotent replays not counted).
    pub fn side_effects(&self) -> usize {
        self.recorder.side_effects()
    }

    /// With `false`, the stand-in ignores `Idempotency-Key` and applies every request, as a
    /// vendor without deduplication does (real SendGrid, for one): a retry is a second effect.
    /// The key is still recorded. On by default.
    pub fn set_deduplicate(&self, on: bool) {
        self.recorder.set_deduplicate(on);
    }

    fn spawn(listener: TcpListener, router: Router, recorder: Recorder) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    // A dropped sender also means "stop".
                    let _ = rx.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!(%addr, %err, "stand-in server stopped with an error");
            }
        });
        Ok(Self { addr, recorder, shutdown: Some(tx) })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The three stand-ins, running. Dropping this stops all three servers.
pub struct StandIns {
    /// HubSpot CRM v3 (`/crm/v3/objects/...`).
    pub hubspot: StandIn,
    /// Meta Marketing API (`/v21.0/...`).
    pub meta: StandIn,
    /// SendGrid v3 Mail Send (`/v3/mail/send`).
    pub sendgrid: StandIn,
    hubspot_state: HubSpotState,
    meta_state: MetaState,
    sendgrid_state: SendGridState,
}

async fn bind_loopback() -> std::io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await
}

impl StandIns {
    /// Starts all three on 127.0.0.1 ephemeral ports on the current tokio runtime, with the
    /// given tokens. Must be called from within a tokio runtime (the servers are spawned on it).
    pub async fn start(tokens: Tokens) -> std::io::Result<StandIns> {
        let (hl, ml, sl) = (bind_loopback().await?, bind_loopback().await?, bind_loopback().await?);
        let hubspot_state = HubSpotState::seeded(tokens.hubspot);
        let meta_state = MetaState::seeded(tokens.meta, format!("http://{}", ml.local_addr()?));
        let sendgrid_state = SendGridState::new(tokens.sendgrid);
        Ok(StandIns {
            hubspot: StandIn::spawn(hl, hubspot::router(hubspot_state.clone()), hubspot_state.recorder())?,
            meta: StandIn::spawn(ml, meta::router(meta_state.clone()), meta_state.recorder())?,
            sendgrid: StandIn::spawn(sl, sendgrid::router(sendgrid_state.clone()), sendgrid_state.recorder())?,
            hubspot_state,
            meta_state,
            sendgrid_state,
        })
    }

    /// For synchronous tests: starts all three on a dedicated single-threaded tokio runtime
    /// running on its own OS thread, and returns them with the [`BackgroundRuntime`] that keeps
    /// that thread alive. Callable from sync code or from inside another runtime. Keep the
    /// `BackgroundRuntime` alive as long as the servers are needed; dropping it stops the
    /// thread and with it every server (dropping the `StandIns` first is also fine).
    pub fn start_blocking(tokens: Tokens) -> std::io::Result<(StandIns, BackgroundRuntime)> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("tollgate-standins".to_owned()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                match StandIns::start(tokens).await {
                    Ok(standins) => {
                        if ready_tx.send(Ok(standins)).is_ok() {
                            let _ = stop_rx.await;
                        }
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                }
            });
        })?;
        let standins = ready_rx.recv().map_err(|_| std::io::Error::other("stand-in runtime thread exited early"))??;
        Ok((standins, BackgroundRuntime { stop: Some(stop_tx), thread: Some(thread) }))
    }

    /// HubSpot's in-memory CRM (contacts, notes).
    pub fn hubspot_state(&self) -> &HubSpotState {
        &self.hubspot_state
    }

    /// Meta's in-memory ad account and campaigns.
    pub fn meta_state(&self) -> &MetaState {
        &self.meta_state
    }

    /// SendGrid's outbox (accepted messages).
    pub fn sendgrid_state(&self) -> &SendGridState {
        &self.sendgrid_state
    }
}

/// The OS thread and tokio runtime behind [`StandIns::start_blocking`]. Dropping it stops the
/// runtime (and every server on it) and joins the thread.
pub struct BackgroundRuntime {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
