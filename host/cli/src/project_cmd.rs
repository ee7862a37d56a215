//! `tollgate new plugin` and `tollgate plugin build`: thin wrappers over
//! [`tollgate_pluginkit`], which owns the templates, the pinned toolchains and the builds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use tollgate_pluginkit::{BuildOptions, Lang};

#[derive(Subcommand)]
pub enum NewCommand {
    /// Write a new plugin project: one tool, a test, a README and a build command.
    Plugin(NewPluginArgs),
}

#[derive(Args)]
pub struct NewPluginArgs {
    /// Plugin name: lowercase letters, digits, `-` and `_`, starting with a letter.
    name: String,
    /// Language of the project: rust, python or js.
    #[arg(long, value_name = "LANG")]
    lang: Lang,
    /// Directory to create [default: ./NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct BuildArgs {
    /// The plugin project (a directory with Cargo.toml, pyproject.toml or package.json).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the component [default: depends on the language; printed].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Directory for the pinned toolchains [default: $TOLLGATE_TOOLCHAINS, else ~/.cache/tollgate/toolchains].
    #[arg(long, env = "TOLLGATE_TOOLCHAINS")]
    toolchains: Option<PathBuf>,
    /// Rust only: build with the dev profile.
    #[arg(long)]
    debug: bool,
    /// Show the componentizer's full output on failure, tracebacks and backtraces included.
    #[arg(short, long)]
    verbose: bool,
}

pub fn new(cmd: NewCommand) -> anyhow::Result<ExitCode> {
    let NewCommand::Plugin(args) = cmd;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = tollgate_pluginkit::new_project(&dir, &args.name, args.lang)?;
    outln!("created {} ({} plugin, {} files)", dir.display(), args.lang.name(), files.len());
    for file in files.iter().filter(|f| !f.starts_with("vendor")) {
        outln!("  {}", file.display());
    }
    outln!("\nnext:\n  cd {}\n  tollgate plugin build", dir.display());
    Ok(ExitCode::SUCCESS)
}

pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // Resolved here, once, against where the user typed the command: `.` and `my-tool` mean
    // the same project however the build moves between directories.
    let dir = args.dir.canonicalize().with_context(|| format!("cannot open the project {}", args.dir.display()))?;
    let output = args.output.map(std::path::absolute).transpose().context("--output")?;
    let options = BuildOptions {
        output,
        toolchains: args.toolchains,
        debug: args.debug,
        verbose: args.verbose,
        progress: crate::progress::build(),
    };
    let built = tollgate_pluginkit::build(&dir, &options)?;
    outln!(
        "built {} ({} plugin, {:.1} KiB) in {:.1} s",
        built.component.display(),
        built.lang.name(),
        built.size as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
