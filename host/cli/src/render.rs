//! Text and JSON renderings of inspections and call reports for people and scripts.

use std::fmt::Write;
use std::path::Path;

use tollgate_contract::units::format_bytes;
use tollgate_sandbox::{CallOutcome, CallReport, Inspection};

pub fn inspection(path: &Path, i: &Inspection) -> String {
    let m = &i.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "{} {} — {}", m.name, m.version, m.description);
    let _ = writeln!(s, "  file     {}", path.display());
    let _ = writeln!(s, "  size     {} ({} bytes)", format_bytes(i.size), i.size);
    let _ = writeln!(s, "  sha256   {}", i.sha256);
    let caps: Vec<String> = i.capabilities.iter().map(|c| c.to_string()).collect();
    let _ = writeln!(s, "  capabilities  {}", if caps.is_empty() { "none (pure)".into() } else { caps.join(", ") });
    if !m.hosts.is_empty() {
        let _ = writeln!(s, "  hosts    {}", m.hosts.join(", "));
    }
    for c in &m.credentials {
        let _ =
            writeln!(s, "  credential `{}` → {} ({}: {}…) {}", c.name, c.host, c.header, c.value_prefix, c.description);
    }
    let _ = writeln!(s, "  imports");
    for imp in &i.imports {
        let _ = writeln!(s, "    {:<48} {}", imp.name, imp.class);
    }
    let _ = writeln!(s, "  tools");
    for t in &m.tools {
        let effects = t.effects.names();
        let _ = writeln!(
            s,
            "    {}  [{}{}]{}",
            t.name,
            if effects.is_empty() { "no effects".to_string() } else { effects.join(", ") },
            if t.idempotent { ", idempotent" } else { "" },
            t.compensation.as_ref().map(|c| format!(" compensated by {c}")).unwrap_or_default()
        );
        let _ = writeln!(s, "      {}", t.description);
        let _ = writeln!(s, "      input  {}", serde_json::to_string(&t.input_schema).unwrap_or_default());
        if let Some(o) = &t.output_schema {
            let _ = writeln!(s, "      output {}", serde_json::to_string(o).unwrap_or_default());
        }
    }
    if let Some(plain) = i.plain.as_ref().filter(|p| !p.unsupported.is_empty()) {
        let _ = writeln!(s, "  not offered (no JSON mapping)");
        for u in &plain.unsupported {
            let _ = writeln!(s, "    {}\n      {}", u.export, u.reason);
        }
    }
    s
}

pub fn report(r: &CallReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "── {}.{} {} in {:.1} ms · fuel {} of {} · peak memory {}",
        r.plugin,
        r.tool,
        r.outcome,
        r.duration_us as f64 / 1000.0,
        r.fuel_used,
        r.fuel_limit,
        format_bytes(r.peak_memory_bytes)
    );
    if r.memory_refused {
        let _ = writeln!(s, "   memory limit refused a grow");
    }
    if let Some(own) = &r.guest_error {
        let _ = writeln!(s, "   the guest's own error: {own}");
    }
    for e in &r.egress {
        let result = match (&e.status, &e.denied, &e.error) {
            (Some(st), _, _) => format!("→ {st}"),
            (_, Some(d), _) => format!("DENIED: {d}"),
            (_, _, Some(err)) => format!("failed: {err}"),
            _ => "no response".into(),
        };
        let via = e.upstream.as_ref().map(|u| format!(" via {u}")).unwrap_or_default();
        let cred = e.credential.as_ref().map(|c| format!(" [credential {c}]")).unwrap_or_default();
        let _ = writeln!(
            s,
            "   egress {} {}://{}:{}{} {result}{via}{cred} ({} B out, {} B in)",
            e.method, e.scheme, e.host, e.port, e.path, e.request_bytes, e.response_bytes
        );
    }
    for l in &r.logs {
        let fields = if l.fields.is_null() { String::new() } else { format!(" {}", l.fields) };
        let _ = writeln!(s, "   log {} {}{fields}", l.level, l.message);
    }
    if r.logs_dropped > 0 {
        let _ = writeln!(s, "   ({} log lines dropped over the cap)", r.logs_dropped);
    }
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        for line in text.lines().take(20) {
            let _ = writeln!(s, "   {name} | {line}");
        }
    }
    if !r.secrets_read.is_empty() {
        let _ = writeln!(s, "   secrets read: {}", r.secrets_read.join(", "));
    }
    s
}

pub fn outcome_json(o: &CallOutcome) -> serde_json::Value {
    match &o.result {
        Ok(v) => serde_json::json!({"ok": true, "output": v, "report": o.report}),
        Err(e) => {
            serde_json::json!({"ok": false, "error": {"kind": e.kind(), "message": e.to_string(), "detail": e}, "report": o.report})
        }
    }
}
