//! `cargo xtask test`: the project's one test command (README, CI). Formatting, plugin builds,
//! clippy with `-D warnings` natively and for wasm32-wasip2, `cargo deny` (licences, bans,
//! sources), then every test in the workspace (the tidy tests in `xtask/tests/` among them),
//! then every fuzz target for a bounded time (`fuzz.rs`).

use std::process::Command;

use anyhow::{Result, bail};

use crate::{deny, fuzz, plugins};

/// Per fuzz target in the test command: long enough to reach past the seeds, short enough for
/// the CI budget (7 targets). `cargo xtask fuzz` defaults to 60 s each.
const FUZZ_SECONDS: u32 = 20;

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {step}");
    let status = cmd.status()?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

pub fn run_all() -> Result<()> {
    let cargo = plugins::cargo();
    plugins::ensure_target()?;
    run("cargo fmt --check", Command::new(&cargo).args(["fmt", "--all", "--check"]))?;
    eprintln!("==> build plugins");
    plugins::run(&plugins::Args::all())?;
    run(
        "clippy (native)",
        Command::new(&cargo).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    let mut wasm = Command::new(&cargo);
    wasm.args(["clippy", "--target", "wasm32-wasip2"]);
    for p in plugins::packages()? {
        wasm.args(["-p", &p]);
    }
    run("clippy (wasm32-wasip2 plugins)", wasm.args(["--", "-D", "warnings"]))?;
    run("cargo deny check licenses bans sources", &mut deny::check(&cargo)?)?;
    run("cargo test", Command::new(&cargo).args(["test", "--workspace"]))?;
    eprintln!("==> fuzz ({FUZZ_SECONDS} s per target)");
    fuzz::run(&fuzz::Args::for_ci(FUZZ_SECONDS))?;
    Ok(())
}
