//! `tollgate`: the command line — run workflows, decide approvals, inspect runs, verify the
//! audit log, validate workflow files, inspect or call single plugins, and `serve` the HTTP API
//! (with `tokens` for its API tokens).
//!
//! Exit status, for every command: 0 success; 1 the thing asked about failed (a run failed, a
//! plugin call failed, the audit log is tampered, a workflow is invalid); 2 the command could
//! not run (bad arguments, unreadable files, refused plugin). `run` and `runs resume` also
//! use: 3 waiting for approval; 4 a bound was hit; 5 escalated (an approval expired);
//! 6 cancelled.

#[macro_use]
mod output;

mod approvals_cmd;
mod audit_cmd;
mod data;
mod hints;
mod plugin_cmd;
mod plugin_test_cmd;
mod progress;
mod project_cmd;
mod render;
mod run_cmd;
mod run_render;
mod serve_cmd;
mod stream;
mod tokens_cmd;
mod validate_cmd;
mod workflows_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tollgate", version, about = "Run agentic workflows whose tools are sandboxed WebAssembly components")]
struct Cli {
    #[command(flatten)]
    data: data::DataArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a run of a workflow and stream it.
    Run(run_cmd::RunArgs),
    /// List, show, resume and cancel runs.
    #[command(subcommand)]
    Runs(run_cmd::RunsCommand),
    /// List, approve and deny calls waiting for a human.
    #[command(subcommand)]
    Approvals(approvals_cmd::ApprovalsCommand),
    /// Verify and export the audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Inspect, call and build plugins.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
    /// Create a new plugin project.
    #[command(subcommand)]
    New(project_cmd::NewCommand),
    /// Check a workflow file and its plugins without running anything.
    Validate(validate_cmd::ValidateArgs),
    /// Serve the HTTP API (tokens, roles, TLS) on this data dir until SIGTERM.
    Serve(serve_cmd::ServeArgs),
    /// Create, list and revoke API tokens for `tollgate serve`.
    #[command(subcommand)]
    Tokens(tokens_cmd::TokensCommand),
    /// Deploy workflows for `tollgate serve`, list them, and disable or enable them.
    #[command(subcommand)]
    Workflows(workflows_cmd::WorkflowsCommand),
}

fn main() -> ExitCode {
    // Started as the sandbox's compile child (see `plugin_cmd::sandbox_config`): compile, exit.
    if let Some(code) = tollgate_sandbox::compile_child_main() {
        return ExitCode::from(code);
    }
    let cli = Cli::parse();
    // The server's config is read before logging starts: it chooses the log format.
    let serve_config = match &cli.command {
        Command::Serve(args) => match serve_cmd::load_config(args) {
            Ok(config) => Some(config),
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    // The server says what it does at `info`; commands speak for themselves and log only warnings.
    let level = if serve_config.is_some() { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG").unwrap_or_else(|_| level.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if serve_config.as_ref().is_some_and(|c| c.log_format == tollgate_server::LogFormat::Json) {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let data = cli.data;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run_cmd::run(args, &data).await,
            Command::Runs(cmd) => run_cmd::runs(cmd, &data).await,
            Command::Approvals(cmd) => approvals_cmd::run(cmd, &data).await,
            Command::Audit(cmd) => audit_cmd::run(cmd, &data).await,
            Command::Plugin(cmd) => plugin_cmd::run(cmd).await,
            Command::New(cmd) => project_cmd::new(cmd),
            Command::Validate(args) => validate_cmd::run(args).await,
            // Loaded above for `serve`: never the default here.
            Command::Serve(args) => serve_cmd::run(args, serve_config.unwrap_or_default(), &data).await,
            Command::Tokens(cmd) => tokens_cmd::run(cmd, &data).await,
            Command::Workflows(cmd) => workflows_cmd::run(cmd, &data).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
