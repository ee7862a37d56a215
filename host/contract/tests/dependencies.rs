//! The point of this crate: describing plugins must not link the runtime that runs them. This
//! test reads the real dependency trees (`cargo tree`, normal dependencies, host platform) and
//! fails if wasmtime, or anything else heavy, creeps into this crate or into the workflow crate.

use std::process::Command;

/// The packages `package` links (normal dependencies, transitively), by name.
fn linked(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(cargo)
        .args(["tree", "--manifest-path", manifest, "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {package} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let names: Vec<String> = text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
    assert!(names.iter().any(|n| n == package), "cargo tree did not list {package} itself:\n{text}");
    names
}

fn offenders(names: &[String], forbidden: &[&str]) -> Vec<String> {
    let mut hits: Vec<String> = names
        .iter()
        .filter(|n| forbidden.iter().any(|f| n.as_str() == *f || n.starts_with(&format!("{f}-"))))
        .cloned()
        .collect();
    hits.sort();
    hits.dedup();
    hits
}

#[test]
fn the_contract_links_no_runtime() {
    let names = linked("tollgate-contract");
    let hits = offenders(&names, &["wasmtime", "tokio", "hyper", "jsonschema", "tollgate-sandbox"]);
    assert!(hits.is_empty(), "tollgate-contract must stay plain data, but links {hits:?}");
}

#[test]
fn the_workflow_crate_links_no_wasmtime() {
    let names = linked("tollgate-workflow");
    assert!(names.iter().any(|n| n == "tollgate-contract"), "the workflow crate should use the contract");
    let hits = offenders(&names, &["wasmtime", "tollgate-sandbox"]);
    assert!(hits.is_empty(), "tollgate-workflow must not link the sandbox, but links {hits:?}");
}
