//! `tollgate serve`: the HTTP API on this data dir's store until SIGTERM or Ctrl-C, then a
//! drain (see `tollgate_server::serve`). The config file is read before logging starts, so
//! `log_format = "json"` applies to every line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tollgate_runtime::RunOptions;
use tollgate_runtime::kv::StoreKv;
use tollgate_sandbox::Sandbox;
use tollgate_server::{Deploys, Parts, ServerConfig};

use crate::data::DataArgs;
use crate::plugin_cmd::{CacheArgs, sandbox_config};

#[derive(Args)]
pub struct ServeArgs {
    /// The server's config file (TOML; see docs/server.md). Without it: every default — plain
    /// HTTP on 127.0.0.1:8420, this data dir.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
}

/// The config file, or the defaults; errors are `file:line:col`.
pub fn load_config(args: &ServeArgs) -> Result<ServerConfig, tollgate_server::ConfigError> {
    match &args.config {
        Some(path) => ServerConfig::load(path),
        None => Ok(ServerConfig::default()),
    }
}

pub async fn run(args: ServeArgs, config: ServerConfig, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let mut data = data.clone();
    if let Some(dir) = &config.data_dir {
        data.data_dir = Some(dir.clone());
    }
    let store = data.open_sqlite().await?;
    let sandbox = Sandbox::with_kv(sandbox_config(&args.cache), Arc::new(StoreKv::new(store.clone())))?;
    // `load` already checked the limits; this only turns them into numbers.
    let limits = config.limits(Path::new("config"), "").context("limits")?;
    let deploys = Deploys {
        data_dir: std::path::absolute(data.dir()?)?,
        workflows_dir: config.workflows_dir.clone(),
        options: RunOptions { model: config.runs.model.clone(), upstreams: config.runs.upstreams.clone() },
    };
    let bound = tollgate_server::bind(&config).await?;
    outln!("tollgate serve: listening on {} (data dir {})", bound.url(), data.dir()?.display());
    tollgate_server::serve(bound, limits, Parts { store, sandbox, deploys }, shutdown_signal()).await?;
    outln!("tollgate serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
