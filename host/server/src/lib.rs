//! `tollgate serve`: Tollgate as a service. The HTTP API over the same store the command line
//! uses, with API tokens and roles instead of self-asserted names, TLS, limits, and a drain on
//! shutdown.
//!
//! - [`config`] — the config file (TOML, file:line:col errors, JSON Schema);
//! - [`access`] — roles, endpoints, and the one table of who may call what;
//! - [`token`] — API tokens: minting, hashing, revoking;
//! - [`auth`] — the bearer token of a request → a [`auth::Caller`], rate limits;
//! - [`problem`] — errors as RFC 9457 problem+json with stable types;
//! - `api` — the routes;
//! - [`listen`] — plain or TLS listeners;
//! - [`worker`] — a run continues by itself once a decision about it is made over the API;
//!   approvals past their expiry are expired on a timer;
//! - [`serve`] — bind, serve, drain.
//!
//! Deployed workflows (`api/workflows.rs`, over [`tollgate_runtime::deploy`]) and runs started
//! over the API (`api/runs.rs`, once per `Idempotency-Key`) are here too.
//!
//! Not yet here (issue 15): leases with fencing tokens, approval authority (approvers, quorum),
//! triggers, notifications, server-sent events, the OpenAPI document.

pub mod access;
mod api;
pub mod auth;
pub mod config;
pub mod listen;
pub mod problem;
pub mod serve;
pub mod token;
pub mod worker;

pub use access::Role;
pub use api::Deploys;
pub use config::{ConfigError, LogFormat, ServerConfig};
pub use serve::{Bound, Parts, ServeError, bind, serve};
