//! `tollgate validate <FILE> [--json]`: loads a workflow, inspects every plugin it names (read,
//! sha256, manifest — nothing is granted or called), checks the plugins' imports against the
//! workflow's grants with the sandbox's own rule, and runs the workflow's manifest checks.
//! Prints `path:line:col: error: …` diagnostics, or one `ok:` line.
//!
//! Exit status: 0 valid (warnings allowed), 1 invalid, 2 the command could not run (the
//! workflow file is unreadable, bad arguments, the sandbox did not start).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tollgate_runtime::check_manifests;
use tollgate_sandbox::capability::check_imports;
use tollgate_sandbox::{Grants, Inspection, Sandbox};
use tollgate_workflow::{Diagnostic, Diagnostics, LoadedWorkflow, Severity};

use crate::plugin_cmd::{CacheArgs, sandbox_config};

#[derive(Args)]
pub struct ValidateArgs {
    /// The workflow file (.toml).
    file: PathBuf,
    /// Print `{"ok": bool, "diagnostics": [...]}` instead of text.
    #[arg(long)]
    json: bool,
    /// Require, for every plugin, a passing `tollgate plugin test` report (JSON, from `--report`)
    /// for its exact sha256: a report file, or a folder of them (repeatable).
    #[arg(long = "require-report", value_name = "PATH")]
    require_reports: Vec<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
}

pub async fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    // An unreadable file is a usage error (exit 2), not an invalid workflow.
    std::fs::metadata(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let (found, summary) = match tollgate_workflow::load(&args.file) {
        Err(d) => (d, None),
        Ok(lw) => {
            let sandbox = Sandbox::new(sandbox_config(&args.cache)).context("cannot start the sandbox")?;
            let reports = read_reports(&args.require_reports)?;
            check(&lw, &sandbox, (!args.require_reports.is_empty()).then_some(&reports)).await
        }
    };
    if args.json {
        let out = serde_json::json!({ "ok": !found.has_errors(), "diagnostics": found, "workflow": summary });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        err!("{found}");
        if let Some(s) = &summary
            && !found.has_errors()
        {
            outln!(
                "ok: {} {}: {} plugins, {} tools, {} agents",
                s["name"].as_str().unwrap_or_default(),
                s["version"].as_str().unwrap_or_default(),
                s["plugins"],
                s["tools"],
                s["agents"]
            );
        }
    }
    Ok(if found.has_errors() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Inspects the plugins and runs the manifest checks; returns every finding and a summary.
async fn check(
    lw: &LoadedWorkflow,
    sandbox: &Sandbox,
    reports: Option<&[TestReport]>,
) -> (Diagnostics, Option<serde_json::Value>) {
    let mut found = lw.warnings.clone();
    let mut inspected: BTreeMap<String, Inspection> = BTreeMap::new();
    for name in lw.definition.plugins.keys() {
        match inspect(lw, sandbox, name).await {
            Ok(i) => {
                found.extend(imports_granted(lw, name, &i));
                found.extend(foreign_warnings(lw, name, &i));
                if let Some(reports) = reports {
                    found.extend(report_required(lw, name, &i, reports));
                }
                inspected.insert(name.clone(), i);
            }
            Err(d) => found.push(d),
        }
    }
    // The same manifest checks `tollgate run` makes. A plugin that did not load is reported
    // above, at its `source`; the checks say the same at the same place.
    let taken: Vec<(u32, u32)> = found.iter().map(|d| (d.line, d.column)).collect();
    let plugins = inspected.iter().map(|(name, i)| (name.as_str(), &i.manifest, i.sha256.as_str(), i.plain.is_some()));
    let checked = match check_manifests(lw, plugins) {
        Ok(warnings) => warnings,
        Err(d) => d.0,
    };
    found.extend(checked.into_iter().filter(|d| !taken.contains(&(d.line, d.column))));
    let mut all = Diagnostics(found);
    all.sort();
    let w = &lw.definition;
    let summary = serde_json::json!({
        "name": w.name,
        "version": w.version,
        "plugins": w.plugins.len(),
        "tools": inspected.values().map(|i| i.manifest.tools.len()).sum::<usize>(),
        "agents": w.agents.len(),
        "steps": w.steps.len(),
    });
    (all, Some(summary))
}

async fn inspect(lw: &LoadedWorkflow, sandbox: &Sandbox, name: &str) -> Result<Inspection, Diagnostic> {
    let path = lw.plugin_source(name);
    let at_source = |message: String| lw.diagnostic_at(&["plugins", name, "source"], message, None);
    let bytes = std::fs::read(&path)
        .map_err(|e| at_source(format!("cannot read plugin `{name}` ({}): {e}", path.display())))?;
    sandbox
        .inspect(&bytes)
        .await
        // The error may quote the plugin's manifest: escaped, like everything a plugin supplies.
        .map_err(|e| {
            let e = tollgate_contract::text::escape_for_terminal(&e.to_string()).into_owned();
            at_source(format!("plugin `{name}` ({}) does not load: {e}", path.display()))
        })
}

/// A foreign (plain) component importing what the host links but does not back (no
/// directories for `wasi:filesystem/preopens`): a warning at its `source`, since its calls will
/// fail for that reason. Tollgate plugins are built knowing there are no files.
fn foreign_warnings(lw: &LoadedWorkflow, name: &str, i: &Inspection) -> Vec<Diagnostic> {
    if i.plain.is_none() {
        return Vec::new();
    }
    i.warnings
        .iter()
        .map(|w| {
            let mut d = lw.diagnostic_at(
                &["plugins", name, "source"],
                format!("plugin `{name}` {}", tollgate_contract::text::escape_for_terminal(w)),
                None,
            );
            d.severity = Severity::Warning;
            d
        })
        .collect()
}

/// The sandbox refuses a plugin that imports a capability its grants do not cover; say so now,
/// at the plugin's grants, rather than when a run starts.
fn imports_granted(lw: &LoadedWorkflow, name: &str, i: &Inspection) -> Option<Diagnostic> {
    let grants = Grants::from(lw.grants(name)?);
    let err = check_imports(i.imports.iter().map(|imp| imp.name.as_str()), &grants).err()?;
    let help = "grant it under [plugins.<name>.grants] (hosts, kv, log), or use a plugin that does not import it";
    Some(lw.diagnostic_at(
        &["plugins", name, "grants"],
        format!("plugin `{name}` would not load: {err}"),
        Some(help.replace("<name>", name)),
    ))
}

/// What `validate --require-report` reads of a `tollgate plugin test` report.
pub(crate) struct TestReport {
    file: PathBuf,
    sha256: String,
    errors: usize,
    failed_cases: usize,
}

/// Largest report read: a report is per tool and finding, kilobytes in practice.
const MAX_REPORT_BYTES: u64 = 16 << 20;

/// The reports at `paths` (files, or folders of `*.json`); a file that is not a report is an
/// error naming it, so a typo cannot quietly require nothing.
fn read_reports(paths: &[PathBuf]) -> anyhow::Result<Vec<TestReport>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|file| {
            let size = std::fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?.len();
            anyhow::ensure!(size <= MAX_REPORT_BYTES, "{} is {size} bytes: not a plugin test report", file.display());
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            anyhow::ensure!(
                v["format"] == tollgate_plugintest::report::FORMAT,
                "{} is not a `tollgate plugin test --report` file (format `{}`)",
                file.display(),
                tollgate_plugintest::report::FORMAT
            );
            let count = |items: &serde_json::Value, pred: &dyn Fn(&serde_json::Value) -> bool| {
                items.as_array().map_or(0, |a| a.iter().filter(|x| pred(x)).count())
            };
            let failed_cases = v["tests"]
                .as_array()
                .map_or(0, |files| files.iter().map(|f| count(&f["cases"], &|c| c["passed"] != true)).sum());
            Ok(TestReport {
                sha256: v["sha256"].as_str().unwrap_or_default().to_string(),
                errors: count(&v["findings"], &|f| f["severity"] == "error"),
                failed_cases,
                file,
            })
        })
        .collect()
}

/// An error at the plugin's `source` unless a report for its exact bytes passed. A report is
/// evidence a CI job produced, not a signature: whoever can write the folder can write one.
fn report_required(lw: &LoadedWorkflow, name: &str, i: &Inspection, reports: &[TestReport]) -> Option<Diagnostic> {
    let at_source = |message: String, help: String| lw.diagnostic_at(&["plugins", name, "source"], message, Some(help));
    let mine: Vec<&TestReport> = reports.iter().filter(|r| r.sha256 == i.sha256).collect();
    if mine.is_empty() {
        return Some(at_source(
            format!("no `tollgate plugin test` report for plugin `{name}` (sha256 {})", i.sha256),
            format!(
                "run `tollgate plugin test {} --report FILE` and pass FILE to --require-report",
                lw.plugin_source(name).display()
            ),
        ));
    }
    if mine.iter().any(|r| r.errors == 0 && r.failed_cases == 0) {
        return None;
    }
    let r = mine[0];
    Some(at_source(
        format!(
            "the plugin test report for plugin `{name}` ({}) did not pass: {} error finding(s), {} failed test case(s)",
            r.file.display(),
            r.errors,
            r.failed_cases
        ),
        "fix the plugin or its tests, then test it again".to_string(),
    ))
}
