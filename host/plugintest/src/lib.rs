//! `tollgate plugin test`: evidence about a plugin, for the author who writes it and for the
//! operator deciding whether to enable it.
//!
//! One run ([`test_plugin`]) makes three kinds of calls through the real sandbox and reports
//! on all of them together:
//! - **conformance** (`conformance.rs`): inputs generated from each tool's JSON Schema
//!   (`generate.rs`, seeded) must never trap or hit a limit and must return declared output or a
//!   typed tool error; inputs the schema refuses must be refused before the guest runs. These
//!   calls have no network: every request is refused after the gate's checks, and still
//!   observed;
//! - **author tests** (`suite.rs`): the plugin's `*.test.toml` files — a tool, an input, the
//!   expected output or error, optional kv state — replayed from their cassettes
//!   (`cassette.rs`) with no network, or recorded against a real or stand-in upstream;
//! - the **report** (`report.rs`): per tool, what was declared next to what was observed
//!   (hosts, methods and paths, credentials, fuel, memory, time, output size), and findings
//!   with a severity that sets the exit status.
//!
//! Invariant: nothing here decides what a plugin may do — the sandbox enforces, this crate only
//! watches and compares. Only `cassette.rs` knows the cassette format.

pub mod cassette;
mod conformance;
pub mod generate;
mod observe;
pub mod report;
mod run;
pub mod suite;

pub use report::{Finding, Report, Severity};
pub use run::{Mode, Options, test_plugin};

/// Why a test run could not produce a report (a failing plugin still produces one).
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{file}:{line}:{column}: {message}")]
    Format { file: String, line: usize, column: usize, message: String },
    #[error("cannot load the plugin: {0}")]
    Load(String),
    #[error("{0}")]
    Internal(String),
}

impl TestError {
    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> TestError {
        TestError::Io { path: path.display().to_string(), message: e.to_string() }
    }
}
