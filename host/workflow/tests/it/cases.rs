//! Data-driven diagnostics: every file under `tests/cases/` (checked by `parse`) and
//! `tests/check_cases/` (parsed, then checked by `check_plugins` against the manifests below)
//! lists what it must produce in its header:
//!
//! ```text
//! # expect: 12:5: error: unknown key `sourc`        ← prefix of "line:col: severity: message"
//! # help: did you mean `source`?                    ← substring of that finding's help
//! ```
//!
//! The findings must be exactly the expected ones, in file order. A case with no `expect`
//! lines must produce no finding at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use tollgate_contract::{CredentialSpec, Effects, Manifest, ToolSpec};
use tollgate_workflow::{Diagnostic, parse};

struct Expect {
    head: String,
    help: Option<String>,
}

fn expectations(source: &str) -> Vec<Expect> {
    let mut out: Vec<Expect> = Vec::new();
    for line in source.lines() {
        if let Some(e) = line.strip_prefix("# expect: ") {
            out.push(Expect { head: e.trim_end().to_string(), help: None });
        } else if let Some(h) = line.strip_prefix("# help: ") {
            out.last_mut().expect("`# help:` follows an `# expect:`").help = Some(h.trim_end().to_string());
        }
    }
    out
}

fn compare(case: &Path, found: &[Diagnostic], expected: &[Expect]) -> Result<(), String> {
    let shown = |d: &Diagnostic| {
        let sev = if d.is_error() { "error" } else { "warning" };
        format!("{}:{}: {sev}: {}", d.line, d.column, d.message)
    };
    let all = found.iter().map(|d| format!("  {}  [help: {:?}]", shown(d), d.help)).collect::<Vec<_>>().join("\n");
    if found.len() != expected.len() {
        return Err(format!("{}: expected {} findings, got {}:\n{all}", case.display(), expected.len(), found.len()));
    }
    for (d, e) in found.iter().zip(expected) {
        if !shown(d).starts_with(&e.head) {
            return Err(format!("{}: expected `{}`, got:\n{all}", case.display(), e.head));
        }
        if let Some(h) = &e.help
            && !d.help.as_deref().is_some_and(|x| x.contains(h.as_str()))
        {
            return Err(format!("{}: `{}` should have help containing `{h}`, got:\n{all}", case.display(), e.head));
        }
    }
    Ok(())
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {}", dir.display());
    v
}

fn run_all(dir: &str, check: impl Fn(&Path, &str) -> Vec<Diagnostic>) {
    let mut failures = Vec::new();
    let all = cases(dir);
    for case in &all {
        let source = std::fs::read_to_string(case).unwrap();
        let found = check(case, &source);
        for d in &found {
            assert_eq!(d.file, case.as_path(), "diagnostics name the file they were given");
        }
        if let Err(e) = compare(case, &found, &expectations(&source)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), all.len(), failures.join("\n\n"));
}

#[test]
fn load_cases() {
    run_all("cases", |path, source| match parse(source, path) {
        Ok(lw) => lw.warnings,
        Err(d) => d.0,
    });
}

#[test]
fn check_cases() {
    let manifests = manifests();
    run_all("check_cases", |path, source| {
        let lw = match parse(source, path) {
            Ok(lw) => lw,
            Err(d) => panic!("{} must load:\n{d}", path.display()),
        };
        // Each case may leave one plugin out to test the "not loaded" path.
        let mut m = manifests.clone();
        if source.contains("# without: crm") {
            m.remove("crm");
        }
        let mut found = lw.warnings.clone();
        // `# foreign: a b` adds plain components `a` and `b` (tools `add`, `sub`, no effects);
        // every plugin's tool overrides are applied as `tollgate run` and `validate` apply them.
        let foreign: Vec<&str> = source
            .lines()
            .find_map(|l| l.strip_prefix("# foreign: "))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        for name in &foreign {
            m.insert(name.to_string(), (plain_manifest(), digest(9)));
        }
        for (name, (manifest, _)) in m.iter_mut() {
            match lw.apply_tool_overrides(name, manifest, foreign.contains(&name.as_str())) {
                Ok(applied) => *manifest = applied,
                Err(d) => found.extend(d.0),
            }
        }
        match lw.check_plugins(&m) {
            Ok(w) => found.extend(w),
            Err(d) => found.extend(d.0),
        }
        found
    });
}

pub fn digest(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn tool(name: &str, effects: Effects, schema: serde_json::Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("{name} (test manifest)"),
        input_schema: schema,
        output_schema: None,
        effects,
        idempotent: true,
        compensation: None,
        requests: None,
    }
}

fn credential(name: &str, host: &str) -> CredentialSpec {
    CredentialSpec {
        name: name.into(),
        host: host.into(),
        header: "authorization".into(),
        value_prefix: "Bearer ".into(),
        description: String::new(),
    }
}

/// What the sandbox synthesizes for a plain component: no hosts, no credentials.
fn plain_manifest() -> Manifest {
    let any = json!({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": false});
    Manifest {
        name: "component".into(),
        version: "0.0.0".into(),
        description: "plain".into(),
        tools: vec![tool("add", Effects::default(), any.clone()), tool("sub", Effects::default(), any)],
        hosts: Vec::new(),
        credentials: Vec::new(),
    }
}

fn manifest(name: &str, host: &str, cred: &str, tools: Vec<ToolSpec>) -> Manifest {
    Manifest {
        name: name.into(),
        version: "0.1.0".into(),
        description: format!("{name} (test manifest)"),
        tools,
        hosts: vec![format!("https://{host}")],
        credentials: vec![credential(cred, host)],
    }
}

/// Stand-ins for the connectors' manifests: the same plugins, tools, effects, hosts and
/// credentials, with the input schemas' properties.
fn manifests() -> BTreeMap<String, (Manifest, String)> {
    let read = Effects { read: true, ..Effects::default() };
    let obj = |props: serde_json::Value, required: serde_json::Value| json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    let ads = manifest(
        "ads",
        "graph.facebook.com",
        "meta",
        vec![
            tool(
                "list_campaigns",
                read,
                obj(json!({"ad_account_id": {"type": "string"}, "limit": {}, "after": {}}), json!(["ad_account_id"])),
            ),
            tool(
                "campaign_insights",
                read,
                obj(
                    json!({"campaign_id": {"type": "string", "pattern": "^[0-9]+$"}, "date_preset": {"enum": ["today", "yesterday", "last_7d", "last_30d"]}}),
                    json!(["campaign_id"]),
                ),
            ),
            tool(
                "update_campaign",
                Effects { write: true, spend: true, ..Effects::default() },
                obj(
                    json!({"campaign_id": {"type": "string"}, "status": {}, "daily_budget": {"type": "integer"}}),
                    json!(["campaign_id"]),
                ),
            ),
        ],
    );
    let crm = manifest(
        "crm",
        "api.hubapi.com",
        "hubspot",
        vec![
            tool(
                "search_contacts",
                read,
                obj(json!({"query": {}, "filters": {}, "properties": {}, "limit": {}, "after": {}}), json!([])),
            ),
            tool("get_contact", read, obj(json!({"id": {}, "properties": {}}), json!(["id"]))),
            tool(
                "add_note",
                Effects { write: true, ..Effects::default() },
                obj(json!({"contact_id": {}, "body": {}, "timestamp": {}}), json!(["contact_id", "body"])),
            ),
        ],
    );
    let email = manifest(
        "email",
        "api.sendgrid.com",
        "sendgrid",
        vec![tool(
            "send_email",
            Effects { send_message: true, ..Effects::default() },
            obj(
                json!({"to": {}, "subject": {}, "text": {}, "html": {}, "from": {}}),
                json!(["to", "subject", "text", "from"]),
            ),
        )],
    );
    BTreeMap::from([
        ("ads".to_string(), (ads, digest(1))),
        ("crm".to_string(), (crm, digest(2))),
        ("email".to_string(), (email, digest(3))),
    ])
}
