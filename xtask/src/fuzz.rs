//! `cargo xtask fuzz`: builds the fuzz targets in `fuzz/` (libFuzzer, on stable Rust: the
//! coverage instrumentation is plain `-C` flags, no sanitizer) and runs each for a bounded time
//! against its seeds in `fuzz/seeds/<target>/`. A crash fails the command and names the input
//! that caused it; make it a regression test where the bug was, then fix it.
//!
//! The working corpus and any crash inputs live under `<target>/fuzz/`, never in the tree.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::plugins;

/// Every target, in the order they run (cheap parsers first).
pub const TARGETS: [&str; 7] =
    ["units", "host_patterns", "workflow", "approval_expr", "manifest", "plain_values", "components"];

/// Coverage instrumentation libFuzzer reads, as cargo-fuzz sets it minus the sanitizer; debug
/// assertions and overflow checks on, so arithmetic bugs crash instead of wrapping.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Run only this target (repeatable) [default: all].
    #[arg(long = "target", value_name = "NAME")]
    targets: Vec<String>,
}

impl Args {
    pub fn for_ci(seconds: u32) -> Args {
        Args { seconds, targets: Vec::new() }
    }
}

/// The host's target triple: flags given with an explicit `--target` reach only the fuzzed
/// code, not build scripts and proc macros.
fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("rustc -vV")?;
    let text = String::from_utf8(out.stdout)?;
    text.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string).context("no host in rustc -vV")
}

pub fn run(args: &Args) -> Result<()> {
    for t in &args.targets {
        if !TARGETS.contains(&t.as_str()) {
            bail!("no fuzz target `{t}` (they are: {})", TARGETS.join(", "));
        }
    }
    // `plain_values` loads the plain test component.
    plugins::run(&plugins::Args::all())?;
    let target_dir = plugins::target_dir()?;
    let fuzz_dir = target_dir.join("fuzz");
    let triple = host_triple()?;
    let cargo = plugins::cargo();
    eprintln!("==> build fuzz targets");
    let status = Command::new(&cargo)
        .current_dir("fuzz")
        .args(["build", "--release", "--locked", "--bins", "--target", &triple])
        .env("CARGO_TARGET_DIR", &fuzz_dir)
        .env("RUSTFLAGS", RUSTFLAGS)
        .status()?;
    if !status.success() {
        bail!("building the fuzz targets failed ({status})");
    }
    let bin = fuzz_dir.join(&triple).join("release");
    let selected: Vec<&str> =
        if args.targets.is_empty() { TARGETS.to_vec() } else { args.targets.iter().map(String::as_str).collect() };
    for target in selected {
        let corpus = fuzz_dir.join("corpus").join(target);
        let artifacts = fuzz_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let seeds = PathBuf::from("fuzz/seeds").join(target);
        eprintln!("==> fuzz {target} for {} s", args.seconds);
        let mut cmd = Command::new(bin.join(target));
        cmd.arg(format!("-max_total_time={}", args.seconds))
            .arg("-timeout=30")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .env("TOLLGATE_FUZZ_PLAIN", target_dir.join("plugins/plain.wasm"));
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        let status = cmd.status().with_context(|| format!("running fuzz target {target}"))?;
        if !status.success() {
            bail!(
                "fuzz target `{target}` found a crash ({status}); the input is in {} — reproduce with `{} <input>`",
                artifacts.display(),
                bin.join(target).display()
            );
        }
    }
    Ok(())
}
