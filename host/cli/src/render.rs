//! Text and JSON renderings of inspections and call reports for people and scripts.
//!
//! Everything a plugin or an upstream supplied — manifest strings, schemas, import names,
//! outputs, errors, logs, stdio, egress records — passes through
//! [`tollgate_contract::text`] before it is printed, so guest text cannot drive the terminal
//! or forge a line of this output (issue 13 §4). JSON output stays valid JSON with the same
//! value ([`json`]).

use std::borrow::Cow;
use std::fmt::Write;
use std::path::Path;

use tollgate_contract::text::{escape_for_terminal, escape_json_for_terminal, escape_lines_for_terminal};
use tollgate_contract::units::format_bytes;
use tollgate_sandbox::{CallOutcome, CallReport, Capability, Inspection};

/// One line's worth of supplied text, escaped.
pub(crate) fn t(s: &str) -> Cow<'_, str> {
    escape_for_terminal(s)
}

/// A JSON value as compact JSON, safe to print.
pub(crate) fn j(v: &serde_json::Value) -> String {
    escape_json_for_terminal(&serde_json::to_string(v).unwrap_or_default()).into_owned()
}

/// Pretty JSON, safe to print and still the same JSON (for `--json` and call outputs).
pub fn json<T: serde::Serialize>(v: &T) -> serde_json::Result<String> {
    Ok(escape_json_for_terminal(&serde_json::to_string_pretty(v)?).into_owned())
}

/// An inspection for people. With `tool`, only that tool, its schemas pretty-printed (the
/// caller has checked it exists); without, every tool with its schemas on one line each.
pub fn inspection(path: &Path, i: &Inspection, only: Option<&str>) -> String {
    let m = &i.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "{} {} — {}", t(&m.name), t(&m.version), t(&m.description));
    let _ = writeln!(s, "  file     {}", t(&path.display().to_string()));
    let _ = writeln!(s, "  size     {}", size(i.size));
    let _ = writeln!(s, "  sha256   {}", i.sha256);
    let caps: Vec<String> = i.capabilities.iter().map(|c| c.to_string()).collect();
    let _ = writeln!(s, "  capabilities  {}", if caps.is_empty() { "none (pure)".into() } else { caps.join(", ") });
    for (cap, caution) in i.capabilities.iter().filter_map(|c| c.caution().map(|w| (c, w))) {
        let _ = writeln!(s, "  ! {cap}: {caution}");
    }
    if !m.hosts.is_empty() {
        let hosts: Vec<Cow<'_, str>> = m.hosts.iter().map(|h| t(h)).collect();
        let _ = writeln!(s, "  hosts    {}", hosts.join(", "));
    }
    for c in &m.credentials {
        let _ = writeln!(
            s,
            "  credential `{}` → {} ({}: {}…) {}",
            t(&c.name),
            t(&c.host),
            t(&c.header),
            t(&c.value_prefix),
            t(&c.description)
        );
    }
    let _ = writeln!(s, "  imports");
    for imp in &i.imports {
        let _ = writeln!(s, "    {:<48} {}", t(&imp.name), t(&imp.class));
    }
    for warning in &i.warnings {
        let _ = writeln!(s, "  ! {}", t(warning));
    }
    let _ = writeln!(s, "  tools");
    for tool in m.tools.iter().filter(|t| only.is_none_or(|name| t.name == name)) {
        let pretty = only.is_some();
        let effects = tool.effects.names();
        let _ = writeln!(
            s,
            "    {}  [{}{}]{}",
            t(&tool.name),
            if effects.is_empty() { "no effects".to_string() } else { effects.join(", ") },
            if tool.idempotent { ", idempotent" } else { "" },
            tool.compensation.as_ref().map(|c| format!(" compensated by {}", t(c))).unwrap_or_default()
        );
        let _ = writeln!(s, "      {}", t(&tool.description));
        match tool.requests.as_deref() {
            Some([]) => {
                let _ = writeln!(s, "      requests: none (declared)");
            }
            Some(scopes) => {
                let scopes: Vec<String> = scopes.iter().map(|r| t(&r.to_string()).into_owned()).collect();
                let _ = writeln!(s, "      requests: {}", scopes.join(", "));
            }
            None => {}
        }
        if pretty {
            let _ = writeln!(s, "      input\n{}", indented(&tool.input_schema));
            if let Some(o) = &tool.output_schema {
                let _ = writeln!(s, "      output\n{}", indented(o));
            }
            continue;
        }
        let _ = writeln!(s, "      input  {}", j(&tool.input_schema));
        if let Some(o) = &tool.output_schema {
            let _ = writeln!(s, "      output {}", j(o));
        }
    }
    if let Some(plain) = i.plain.as_ref().filter(|p| !p.unsupported.is_empty()) {
        let _ = writeln!(s, "  not offered (no JSON mapping, or a toolchain internal)");
        for u in &plain.unsupported {
            let _ = writeln!(s, "    {}\n      {}", t(&u.export), t(&u.reason));
        }
    }
    s
}

/// A schema as indented, pretty JSON, safe to print.
fn indented(schema: &serde_json::Value) -> String {
    let text = json(schema).unwrap_or_default();
    text.lines().map(|line| format!("        {line}")).collect::<Vec<_>>().join("\n")
}

/// A size once, in the unit a person reads: bytes below 1 KiB, else KiB or MiB with a decimal.
fn size(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

pub fn report(r: &CallReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "── {}.{} {} in {:.1} ms · fuel {} of {} · peak memory {}",
        t(&r.plugin),
        t(&r.tool),
        t(&r.outcome),
        r.duration_us as f64 / 1000.0,
        r.fuel_used,
        r.fuel_limit,
        format_bytes(r.peak_memory_bytes)
    );
    if r.memory_refused {
        let _ = writeln!(s, "   memory limit refused a grow");
    }
    if let Some(own) = &r.guest_error {
        let _ = writeln!(s, "   the guest's own error: {}", t(own));
    }
    for e in &r.egress {
        let result = match (&e.status, &e.denied, &e.error) {
            (Some(st), _, _) => format!("→ {st}"),
            (_, Some(d), _) => format!("DENIED: {}", t(d)),
            (_, _, Some(err)) => format!("failed: {}", t(err)),
            _ => "no response".into(),
        };
        let via = e.upstream.as_ref().map(|u| format!(" via {}", t(u))).unwrap_or_default();
        let cred = e.credential.as_ref().map(|c| format!(" [credential {}]", t(c))).unwrap_or_default();
        let _ = writeln!(
            s,
            "   egress {} {}://{}:{}{} {result}{via}{cred} ({} B out, {} B in)",
            t(&e.method),
            t(&e.scheme),
            t(&e.host),
            e.port,
            t(&e.path),
            e.request_bytes,
            e.response_bytes
        );
    }
    if !r.credentials_scrubbed.is_empty() {
        let names: Vec<Cow<'_, str>> = r.credentials_scrubbed.iter().map(|n| t(n)).collect();
        let _ = writeln!(
            s,
            "   credential reflected by the upstream, scrubbed before the plugin read it: {}",
            names.join(", ")
        );
    }
    for l in &r.logs {
        let fields = if l.fields.is_null() { String::new() } else { format!(" {}", j(&l.fields)) };
        let _ = writeln!(s, "   log {} {}{fields}", t(&l.level), t(&l.message));
    }
    if r.logs_dropped > 0 {
        let _ = writeln!(s, "   ({} log lines dropped over the cap)", r.logs_dropped);
    }
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        for line in escape_lines_for_terminal(text).lines().take(20) {
            let _ = writeln!(s, "   {name} | {line}");
        }
    }
    if !r.secrets_read.is_empty() {
        let names: Vec<Cow<'_, str>> = r.secrets_read.iter().map(|n| t(n)).collect();
        let _ = writeln!(s, "   secrets read: {}", names.join(", "));
        if let Some(caution) = Capability::Secrets.caution() {
            let _ = writeln!(s, "   ! {caution}");
        }
    }
    s
}

/// The error of `plugin call`: the kind, then the message, which may quote the guest. A
/// message of several lines (a trap's backtrace) continues on lines marked `|`, so no line of
/// it can pass for a line of this output.
pub fn error_lines(kind: &str, message: &str) -> String {
    let escaped = escape_lines_for_terminal(message);
    let mut lines = escaped.lines();
    let mut s = format!("error [{kind}]: {}\n", lines.next().unwrap_or_default());
    for line in lines {
        let _ = writeln!(s, "   | {line}");
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
