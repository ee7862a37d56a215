//! The runtime's integration tests, one binary (one link of wasmtime instead of six): approvals,
//! conversations, fixed steps, the gate, per-run instances and whole runs, each against real
//! plugins, a SQLite store and the vendor stand-ins.

mod approvals;
mod authority;
mod claims;
mod common;
mod conversation;
mod deploys;
mod fixed;
mod gate;
mod honest;
mod in_doubt;
mod instances;
mod loading;
mod model_numbers;
mod runs;
mod tampering;
