//! `tollgate plugin inspect|call`: turns flags into [`Grants`] and [`Limits`], runs the
//! sandbox, and hands the result to [`crate::render`]. (`plugin build` lives in
//! [`crate::project_cmd`].)

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tollgate_contract::text::escape_for_terminal;
use tollgate_contract::units::{parse_bytes, parse_duration};
use tollgate_contract::{Limits, SecretSource};
use tollgate_sandbox::{CallContext, CallError, CompileIsolation, Grants, Sandbox, SandboxConfig, Upstream};

use tollgate_contract::pattern::HostPattern;

use crate::{hints, progress, render};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's manifest, tools with schemas, imported capabilities, size and sha256.
    Inspect {
        /// Path to the component (.wasm).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Show only this tool, with its input and output schemas pretty-printed.
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Make one sandboxed call and print the output and the call report.
    Call(Box<CallArgs>),
    /// Build a plugin project (Rust, Python or JavaScript) to a component.
    Build(crate::project_cmd::BuildArgs),
    /// Test a plugin: conformance from its schemas, its test files (replayed from cassettes),
    /// and a report of what it declares next to what it did.
    Test(Box<crate::plugin_test_cmd::TestArgs>),
}

#[derive(Args)]
pub(crate) struct CacheArgs {
    /// Directory for compiled components [default: $XDG_CACHE_HOME/tollgate or ~/.cache/tollgate].
    #[arg(long, env = "TOLLGATE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every time; do not read or write the cache.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Args)]
pub struct CallArgs {
    /// Path to the component (.wasm).
    path: PathBuf,
    /// Tool to call.
    tool: String,
    /// Input JSON, or @FILE to read it from a file.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Grant an outbound host: [scheme://]host[:port], `*.suffix` allowed (repeatable).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    allow_hosts: Vec<String>,
    /// Map a manifest credential to a source: NAME=env:VAR or NAME=file:PATH (repeatable).
    #[arg(long = "credential", value_name = "NAME=SOURCE")]
    credentials: Vec<String>,
    /// Grant a raw secret read: NAME=env:VAR or NAME=file:PATH (repeatable; audited).
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    secrets: Vec<String>,
    /// Send requests for HOST to URL instead, e.g. api.hubapi.com=http://127.0.0.1:4010.
    #[arg(long = "upstream", value_name = "HOST=URL")]
    upstreams: Vec<String>,
    /// Pin DNS for HOST to IP (repeatable); address checks still apply.
    #[arg(long = "resolve", value_name = "HOST=IP")]
    resolves: Vec<String>,
    /// Open a refused address range (e.g. 10.0.0.0/8) for granted hosts.
    #[arg(long = "open-range", value_name = "CIDR")]
    open_ranges: Vec<String>,
    /// Grant the plugin-scoped key-value store (in memory for this command).
    #[arg(long)]
    kv: bool,
    /// Refuse the log capability (granted by default here: it only writes to the report).
    #[arg(long)]
    no_log: bool,
    /// Fuel budget for the call.
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear memory limit, e.g. 64MiB.
    #[arg(long)]
    memory: Option<String>,
    /// Wall-clock limit, e.g. 5s or 500ms.
    #[arg(long)]
    timeout: Option<String>,
    /// Idempotency key to pass to the plugin [default: a fresh one].
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Print one JSON object (output or error, and the report) instead of text.
    #[arg(long)]
    json: bool,
    /// Show a trap's guest backtrace.
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

pub(crate) fn sandbox_config(cache: &CacheArgs) -> SandboxConfig {
    let cache_dir = if cache.no_cache {
        None
    } else {
        cache.cache_dir.clone().or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("tollgate"))
        })
    };
    SandboxConfig { cache_dir, compile_isolation: compile_isolation(), ..SandboxConfig::default() }
}

/// Components are compiled by a child `tollgate` under CPU-time and memory limits (60 s, 4 GiB;
/// `TOLLGATE_COMPILE_CPU` and `TOLLGATE_COMPILE_MEMORY` change them, e.g. `2s`, `1GiB`). If this
/// executable cannot be found, compiling stays in-process, bounded by the compile limits alone.
fn compile_isolation() -> Option<CompileIsolation> {
    let mut isolation = CompileIsolation::this_executable().ok()?;
    if let Some(cpu) = std::env::var("TOLLGATE_COMPILE_CPU").ok().and_then(|v| parse_duration(&v).ok()) {
        isolation.cpu = cpu;
    }
    if let Some(bytes) = std::env::var("TOLLGATE_COMPILE_MEMORY").ok().and_then(|v| parse_bytes(&v).ok()) {
        isolation.memory_bytes = bytes as u64;
    }
    Some(isolation)
}

fn sandbox(cache: &CacheArgs) -> anyhow::Result<Sandbox> {
    Ok(Sandbox::new(sandbox_config(cache))?)
}

pub(crate) fn split_pair<'a>(flag: &str, s: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
        _ => bail!("--{flag} expects KEY=VALUE, got `{s}`"),
    }
}

fn grants(args: &CallArgs) -> anyhow::Result<Grants> {
    let mut g = Grants::new().log(!args.no_log).kv(args.kv);
    for h in &args.allow_hosts {
        g = g.allow_host(h)?;
    }
    for c in &args.credentials {
        let (name, src) = split_pair("credential", c)?;
        g = g.credential(name, SecretSource::parse(src)?);
    }
    for s in &args.secrets {
        let (name, src) = split_pair("secret", s)?;
        g = g.secret(name, SecretSource::parse(src)?);
    }
    for u in &args.upstreams {
        let (host, url) = split_pair("upstream", u)?;
        g = g.upstream(host, Upstream::parse(url).map_err(anyhow::Error::msg)?);
    }
    for r in &args.resolves {
        let (host, ip) = split_pair("resolve", r)?;
        let ip = ip.parse().with_context(|| format!("--resolve {r}: `{ip}` is not an IP address"))?;
        g = g.resolve(host, vec![ip]);
    }
    for cidr in &args.open_ranges {
        g = g.open_range(cidr.parse().with_context(|| format!("--open-range `{cidr}` is not a CIDR range"))?);
    }
    let mut limits = Limits::default();
    if let Some(f) = args.fuel {
        limits.fuel = f;
    }
    if let Some(m) = &args.memory {
        limits.memory_bytes = parse_bytes(m).context("--memory")?;
    }
    if let Some(t) = &args.timeout {
        limits.timeout = parse_duration(t).context("--timeout")?;
    }
    Ok(g.limits(limits))
}

fn read_input(input: &str) -> anyhow::Result<String> {
    match input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read input file {path}")),
        None => Ok(input.to_string()),
    }
}

/// A load error, which may quote the plugin's manifest, escaped for the terminal.
fn load_error(path: &std::path::Path, e: &tollgate_sandbox::LoadError) -> anyhow::Error {
    anyhow::anyhow!("cannot load {}: {}", path.display(), escape_for_terminal(&e.to_string()))
}

/// [`load_error`], followed by the flag that fixes a capability the flags did not grant. For
/// http the fix names the hosts the plugin declares, read from its manifest with no grants.
async fn call_load_error(sandbox: &Sandbox, path: &std::path::Path, e: &tollgate_sandbox::LoadError) -> anyhow::Error {
    let hosts = match e {
        tollgate_sandbox::LoadError::Import(_) => match std::fs::read(path) {
            Ok(bytes) => sandbox.inspect(&bytes).await.ok().map(|i| i.manifest.hosts),
            Err(_) => None,
        },
        _ => None,
    };
    match hints::not_granted(e, hosts.as_deref()) {
        Some(hint) => anyhow::anyhow!("{}: {}", load_error(path, e), escape_for_terminal(&hint)),
        None => load_error(path, e),
    }
}

/// Tool names a plugin supplied, escaped and joined for an error line.
fn t_list(names: &[&str]) -> String {
    names.iter().map(|n| escape_for_terminal(n).into_owned()).collect::<Vec<_>>().join(", ")
}

fn fresh_key() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("cli-{}-{nanos:x}", std::process::id())
}

pub async fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Build(args) => crate::project_cmd::build(args),
        PluginCommand::Test(args) => crate::plugin_test_cmd::run(*args).await,
        PluginCommand::Inspect { path, json, tool, cache } => {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let compiling = format!("compiling {} to native code", path.display());
            let inspection = progress::when_slow(&compiling, sandbox(&cache)?.inspect(&bytes))
                .await
                .map_err(|e| load_error(&path, &e))?;
            if let Some(name) = tool.as_deref() {
                let Some(spec) = inspection.manifest.tool(name) else {
                    let names: Vec<&str> = inspection.manifest.tools.iter().map(|t| t.name.as_str()).collect();
                    bail!("no tool `{}` in {} (it has: {})", escape_for_terminal(name), path.display(), t_list(&names));
                };
                if json {
                    outln!("{}", render::json(spec)?);
                    return Ok(ExitCode::SUCCESS);
                }
            }
            if json {
                outln!("{}", render::json(&inspection)?);
            } else {
                out!("{}", render::inspection(&path, &inspection, tool.as_deref()));
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Call(args) => {
            let granted: Vec<HostPattern> =
                args.allow_hosts.iter().map(|h| HostPattern::parse(h)).collect::<Result<_, _>>()?;
            let upstream_hosts: Vec<&str> =
                args.upstreams.iter().filter_map(|u| u.split_once('=')).map(|u| u.0).collect();
            if let Some(hint) = hints::ungranted_upstreams(&upstream_hosts, &granted) {
                bail!("{hint}");
            }
            let grants = grants(&args)?;
            let input = read_input(&args.input)?;
            let sandbox = sandbox(&args.cache)?;
            let compiling = format!("compiling {} to native code", args.path.display());
            let plugin = match progress::when_slow(&compiling, sandbox.load_file(&args.path, grants)).await {
                Ok(plugin) => plugin,
                Err(e) => return Err(call_load_error(&sandbox, &args.path, &e).await),
            };
            // A foreign component may have been written for a host that grants what this one
            // does not (directories): say so before its calls fail for that reason.
            if plugin.plain().is_some() {
                for warning in plugin.warnings() {
                    errln!("warning: {}", escape_for_terminal(&warning));
                }
            }
            let key = args.idempotency_key.clone().unwrap_or_else(fresh_key);
            let ctx = CallContext { run_id: "cli".into(), call_id: key.clone(), idempotency_key: key };
            let outcome = plugin.call(&args.tool, &input, &ctx).await;
            if args.json {
                outln!("{}", render::json(&render::outcome_json(&outcome))?);
            } else {
                if let Ok(v) = &outcome.result {
                    outln!("{}", render::json(v)?);
                }
                err!("{}", render::report(&outcome.report));
                if let Err(e) = &outcome.result {
                    let message = match e {
                        CallError::Trap { message, backtrace: Some(_) } if !args.verbose => {
                            format!("plugin trapped: {message} (--verbose shows the guest backtrace)")
                        }
                        _ => e.to_string(),
                    };
                    err!("{}", render::error_lines(e.kind(), &message));
                    if let Some(hint) = hints::trap(e) {
                        errln!("   = {hint}");
                    }
                    for hint in hints::egress_denials(&outcome.report, plugin.manifest(), &granted) {
                        errln!("   = {}", escape_for_terminal(&hint));
                    }
                }
            }
            Ok(if outcome.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
