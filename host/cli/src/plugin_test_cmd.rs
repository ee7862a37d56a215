//! `tollgate plugin test`: flags into [`tollgate_plugintest::Options`], a project built first
//! when given a directory, the report printed (text, JSON or Markdown) and the exit status set
//! by `--fail-on`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tollgate_contract::SecretSource;
use tollgate_contract::text::escape_for_terminal;
use tollgate_plugintest::{Mode, Options, Severity, suite};
use tollgate_sandbox::Upstream;

use crate::plugin_cmd::{CacheArgs, sandbox_config, split_pair};
use crate::{progress, render};

#[derive(Args)]
pub struct TestArgs {
    /// The component (.wasm), or a plugin project to build first (its `tests/` folder holds
    /// its test files).
    #[arg(default_value = ".")]
    target: PathBuf,
    /// A test file (`NAME.test.toml`) or a folder of them (repeatable) [default: the project's
    /// `tests/` folder].
    #[arg(long = "tests", value_name = "PATH")]
    tests: Vec<PathBuf>,
    /// Generated inputs per tool.
    #[arg(long, default_value_t = 32)]
    cases: u32,
    /// Seed of the generated inputs: the same seed makes the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Test only this tool.
    #[arg(long, value_name = "NAME")]
    tool: Option<String>,
    /// Send the test files' requests to the network (or to `--upstream`s) and save each file's
    /// cassette, instead of replaying it.
    #[arg(long)]
    record: bool,
    /// With --record: send requests for HOST to URL instead (a stand-in, a staging API).
    #[arg(long = "upstream", value_name = "HOST=URL", requires = "record")]
    upstreams: Vec<String>,
    /// Map a manifest credential to a source: NAME=env:VAR or NAME=file:PATH (repeatable)
    /// [default: a placeholder value, which replay never sends anywhere].
    #[arg(long = "credential", value_name = "NAME=SOURCE")]
    credentials: Vec<String>,
    /// Grant a raw secret read: NAME=env:VAR or NAME=file:PATH (repeatable).
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    secrets: Vec<String>,
    /// Fuel budget per call [default: the sandbox's].
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear memory limit per call, e.g. 64MiB [default: the sandbox's].
    #[arg(long)]
    memory: Option<String>,
    /// Wall-clock limit per call, e.g. 2s [default: the sandbox's].
    #[arg(long)]
    timeout: Option<String>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Exit 1 when a finding is at least this severe (failed test cases are errors).
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

pub async fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let (component, default_tests) = if args.target.is_dir() {
        let dir =
            args.target.canonicalize().with_context(|| format!("cannot open the project {}", args.target.display()))?;
        let options = tollgate_pluginkit::BuildOptions {
            output: None,
            toolchains: None,
            debug: false,
            verbose: false,
            progress: progress::build(),
        };
        let built = tollgate_pluginkit::build(&dir, &options)?;
        let tests = dir.join("tests");
        (built.component, if tests.is_dir() { vec![tests] } else { Vec::new() })
    } else {
        (args.target.clone(), Vec::new())
    };
    let mut tests = Vec::new();
    for path in if args.tests.is_empty() { &default_tests } else { &args.tests } {
        tests.extend(suite::discover(path)?);
    }
    let pairs = |flag: &str, values: &[String]| -> anyhow::Result<BTreeMap<String, SecretSource>> {
        values
            .iter()
            .map(|v| {
                let (name, source) = split_pair(flag, v)?;
                Ok((name.to_string(), SecretSource::parse(source)?))
            })
            .collect()
    };
    let mode = if args.record {
        let upstreams = args
            .upstreams
            .iter()
            .map(|u| {
                let (host, url) = split_pair("upstream", u)?;
                Ok((host.to_string(), Upstream::parse(url).map_err(anyhow::Error::msg)?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Mode::Record { upstreams }
    } else {
        Mode::Replay
    };
    if args.cases == 0 && tests.is_empty() {
        bail!("nothing to test: --cases 0 and no test files");
    }
    let mut limits = tollgate_contract::Limits::default();
    if let Some(f) = args.fuel {
        limits.fuel = f;
    }
    if let Some(m) = &args.memory {
        limits.memory_bytes = tollgate_contract::units::parse_bytes(m).context("--memory")?;
    }
    if let Some(t) = &args.timeout {
        limits.timeout = tollgate_contract::units::parse_duration(t).context("--timeout")?;
    }
    let options = Options {
        cases: args.cases,
        seed: args.seed,
        tool: args.tool.clone(),
        tests,
        mode,
        credentials: pairs("credential", &args.credentials)?,
        secrets: pairs("secret", &args.secrets)?,
        limits,
    };
    let testing = format!("testing {}", component.display());
    let report = progress::when_slow(
        &testing,
        tollgate_plugintest::test_plugin(sandbox_config(&args.cache), &component, &options),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", escape_for_terminal(&e.to_string())))?;
    if let Some(path) = &args.report {
        std::fs::write(path, render::json(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match args.format {
        Format::Text => out!("{}", report.text()),
        Format::Json => outln!("{}", render::json(&report)?),
        Format::Markdown => out!("{}", report.markdown()),
    }
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    let failed = threshold.is_some_and(|t| report.count_at_least(t) > 0);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
