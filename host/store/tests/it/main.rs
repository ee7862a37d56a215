//! The store's integration tests, one binary: the rollback anchor, audit tampering on the SQLite
//! file, caps and kv, commits, and crash safety.

mod anchor;
mod audit_tamper;
mod caps_kv;
mod commit;
mod common;
mod crash;
