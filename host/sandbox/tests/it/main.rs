//! The sandbox's integration tests, one binary (one link of wasmtime instead of one per file):
//! limits, the compilation cache, data-driven egress cases, connectors against the stand-ins, concurrency, loading and
//! load-time exhaustion (compile bombs, export floods), foreign components (toolchain internals,
//! unsupported imports, preopens, overrides), plain components and what converting
//! their values may cost, redaction before clipping, warm instances.

#[path = "../../../../tests/support/built_plugins.rs"]
mod built_plugins;
mod cache;
mod common;
mod concurrency;
mod connectors;
mod egress;
mod exhaustion;
mod foreign;
mod limits;
mod load;
mod plain;
mod plain_values;
mod redaction;
mod warm;
