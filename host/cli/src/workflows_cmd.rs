//! `tollgate workflows deploy|list|disable|enable`: deployed workflows on this data dir's store,
//! for `tollgate serve` to start runs of (see `tollgate_runtime::deploy`). Whoever can open the
//! store holds the audit key the deployment rows are signed with; the records name them as
//! `local:<user>`.
//!
//! Exit status: 0 done, 1 the workflow is invalid or the version is deployed with other
//! content, 2 the command could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;
use tollgate_runtime::deploy::{self, DeployError, DeployRequest};
use tollgate_runtime::kv::StoreKv;
use tollgate_sandbox::Sandbox;
use tollgate_store::{Deployed, Store, StoreError};

use crate::data::{DataArgs, os_user};
use crate::plugin_cmd::{CacheArgs, sandbox_config};
use crate::render::{self, t};

#[derive(Subcommand)]
pub enum WorkflowsCommand {
    /// Validate a workflow, snapshot it with the files it names into the data dir, and record it
    /// as an immutable version that `tollgate serve` can start.
    Deploy {
        /// The workflow file (.toml).
        file: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// List deployed workflows and their versions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The kill switch: no run of the workflow starts, and its runs stop at their next step.
    Disable { name: String },
    /// Let the workflow's runs start and go on again.
    Enable { name: String },
}

pub async fn run(cmd: WorkflowsCommand, data: &DataArgs) -> anyhow::Result<ExitCode> {
    let store = data.open_sqlite().await?;
    let by = format!("local:{}", os_user());
    match cmd {
        WorkflowsCommand::Deploy { file, json, cache } => {
            let sandbox = Sandbox::with_kv(sandbox_config(&cache), Arc::new(StoreKv::new(store.clone())))?;
            let data_dir = data.dir()?;
            let request = DeployRequest { file: &file, data_dir: &data_dir, by: &by, confine_to: None };
            let (record, created) = match deploy::deploy(store.clone(), &sandbox, request).await {
                Ok(Deployed::New(d)) => (d, true),
                Ok(Deployed::Existing(d)) => (d, false),
                Err(DeployError::Invalid(found)) => {
                    errln!("{found}");
                    return Ok(ExitCode::from(1));
                }
                Err(DeployError::Store(StoreError::Immutable(message))) => {
                    errln!("error: {message}");
                    return Ok(ExitCode::from(1));
                }
                Err(DeployError::Load(e)) => {
                    errln!("error: {} does not load as a run would load it: {e}", file.display());
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                let out = json!({"name": record.name, "version": record.version, "sha256": record.digest,
                    "plugins": record.plugins, "enabled": record.enabled, "created": created});
                outln!("{}", render::json(&out)?);
            } else {
                let what = if created { "deployed" } else { "already deployed (same content)" };
                outln!("{} {}: {what}, sha256 {}", t(&record.name), t(&record.version), record.digest);
                if !record.enabled {
                    errln!(
                        "note: {} is disabled; `tollgate workflows enable {}` lets it start",
                        record.name,
                        record.name
                    );
                }
            }
        }
        WorkflowsCommand::List { json } => {
            let mut all = store.deployments(None).await?;
            // The signed chain is the switch's authority; a row only ever narrows it.
            for d in &mut all {
                d.enabled = d.enabled && deploy::switched_on(&*store, &d.name).await?;
            }
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|d| {
                        json!({"name": d.name, "version": d.version, "sha256": d.digest, "plugins": d.plugins,
                        "deployed_at": d.deployed_at, "deployed_by": d.deployed_by, "enabled": d.enabled})
                    })
                    .collect();
                outln!("{}", render::json(&rows)?);
            } else if all.is_empty() {
                errln!("no workflows deployed");
            } else {
                for d in &all {
                    let state = if d.enabled { "enabled" } else { "DISABLED" };
                    outln!(
                        "{}\t{}\t{state}\t{}\tby {}",
                        t(&d.name),
                        t(&d.version),
                        &d.digest[..12.min(d.digest.len())],
                        t(&d.deployed_by)
                    );
                }
            }
        }
        WorkflowsCommand::Disable { name } => switch(&*store, &name, false, &by).await?,
        WorkflowsCommand::Enable { name } => switch(&*store, &name, true, &by).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Moves the kill switch of a deployed workflow. Runs a server is advancing notice at their next
/// advance; the server's own `POST /v1/workflows/<name>/disable` stops them at their next step.
async fn switch(store: &dyn Store, name: &str, enabled: bool, by: &str) -> anyhow::Result<()> {
    if store.deployments(Some(name)).await?.is_empty() {
        anyhow::bail!("no workflow named {} is deployed", t(name));
    }
    let changed = deploy::switch(store, name, enabled, by).await?;
    let state = if enabled { "enabled" } else { "disabled" };
    outln!("{}: {state}{}", t(name), if changed { "" } else { " (it was already)" });
    Ok(())
}
