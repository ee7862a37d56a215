//! The workflow format's integration tests, one binary: data-driven diagnostics and the policy.

mod cases;
mod policy;
