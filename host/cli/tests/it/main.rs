//! The CLI's integration tests, one binary: they drive the real `tollgate` binary (plugin calls,
//! `validate`, foreign components, a live-model run, the rollback anchor, and the kill -9 crash
//! test, and `tollgate serve` over real sockets).

mod anchor;
mod build;
#[path = "../../../../tests/support/built_plugins.rs"]
mod built_plugins;
mod cli;
mod closed_output;
mod crash;
mod deploy;
mod escaping;
mod foreign;
mod honest;
mod live_model;
mod plugin_test;
mod real_server;
mod run_control;
mod run_escaping;
mod serve;
mod two_servers;
mod validate;
