//! One server process: bind, serve the API until the shutdown future resolves, then drain —
//! stop accepting, let requests in flight and runs advancing after a decision finish for up to
//! `drain`, and return. Nothing the
//! server does is lost by stopping at any point: every decision is a store transaction.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api;
use crate::auth::{AppState, RateLimiter};
use crate::config::{Limits, ServerConfig};
use crate::listen::{self, Peer, TlsListener};
use crate::worker::Worker;

/// What `serve` needs besides the listener and limits: the open store, a sandbox, and where
/// deploys go and what runs start with.
pub struct Parts {
    pub store: Arc<tollgate_store::SqliteStore>,
    pub sandbox: tollgate_sandbox::Sandbox,
    pub deploys: crate::Deploys,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] listen::TlsError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound server, not yet serving: its address is known (port 0 binds a free port).
pub struct Bound {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pub local_addr: SocketAddr,
}

impl Bound {
    /// `https://…` or `http://…`, for people and clients.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls.is_some() { "https" } else { "http" }, self.local_addr)
    }
}

/// Binds the config's address and loads its TLS files.
pub async fn bind(config: &ServerConfig) -> Result<Bound, ServeError> {
    let tls = config.tls.as_ref().map(listen::acceptor).transpose()?;
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    let local_addr = listener.local_addr()?;
    Ok(Bound { listener, tls, local_addr })
}

/// Serves until `shutdown` resolves, then drains for at most `limits.drain`.
pub async fn serve(
    bound: Bound,
    limits: Limits,
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let deploys = Arc::new(parts.deploys);
    let worker =
        Worker::new(parts.store.clone(), parts.sandbox.clone(), deploys.clone(), limits.lease, limits.max_runs);
    worker.expire_on_time(limits.expire_every);
    // Runs a crash or a cut-short drain left `running` move on now; a dead peer's, once their
    // lease runs out.
    worker.take_over_on_time();
    let state = AppState {
        store: parts.store.clone(),
        sqlite: parts.store,
        sandbox: parts.sandbox,
        limiter: Arc::new(RateLimiter::default()),
        requests_per_minute: limits.requests_per_minute,
        failures: Arc::new(RateLimiter::default()),
        failed_auth_per_minute: limits.failed_auth_per_minute,
        worker: worker.clone(),
        deploys,
    };
    let app = api::router(state, limits.max_body);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; requests in flight may finish");
        let _ = stopping.send(true);
    };
    let deadline = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(limits.drain).await;
    };
    let served = async {
        match bound.tls {
            Some(acceptor) => {
                let listener = TlsListener::new(bound.listener, acceptor)?;
                let app = app.into_make_service_with_connect_info::<Peer>();
                axum::serve(listener, app).with_graceful_shutdown(signal).await?;
            }
            None => {
                let app = app.into_make_service_with_connect_info::<Peer>();
                axum::serve(bound.listener, app).with_graceful_shutdown(signal).await?;
            }
        }
        // Runs advancing after a decision finish their step too, within the same deadline.
        worker.idle().await;
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        result = served => Ok(result?),
        () = deadline => {
            tracing::warn!(drain = ?limits.drain, "drain deadline passed: closing the connections still open");
            Ok(())
        }
    }
}
