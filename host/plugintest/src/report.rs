//! The report of one `tollgate plugin test`: per tool, what the manifest declares next to what
//! the calls did, and findings with a severity. JSON (`format = "tollgate-plugin-report/1"`) for
//! machines; [`Report::text`] for a terminal and [`Report::markdown`] for a review or a CI summary.
//! Everything a plugin or an upstream chose is escaped before it is shown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use tollgate_contract::RequestScope;
use tollgate_contract::text::escape_for_terminal;
use tollgate_sandbox::Manifest;

use crate::observe::{Observation, Source, input_strings, is_mutating, path_pattern, quantile};

pub const FORMAT: &str = "tollgate-plugin-report/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier, e.g. `read-tool-mutates` (docs/plugins/testing.md lists them).
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// How to make the same call again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
}

/// How conformance went for one tool.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolCounts {
    /// Generated inputs the host accepted and the tool was called with.
    pub valid: u32,
    /// Generation attempts that produced nothing the schema accepts (not called).
    pub not_generated: u32,
    /// The valid inputs stopped at the first breakage.
    pub stopped_early: bool,
    pub invalid: u32,
    pub invalid_refused: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

fn spread(mut values: Vec<u64>) -> Spread {
    let max = values.iter().copied().max().unwrap_or(0);
    Spread { p50: quantile(&mut values, 0.5), p99: quantile(&mut values, 0.99), max }
}

/// Requests of one shape (method, host, path pattern) a tool made.
#[derive(Debug, Clone, Serialize)]
pub struct RequestShape {
    pub method: String,
    pub host: String,
    pub path: String,
    pub count: u32,
    /// How many of them the gate refused.
    pub refused: u32,
    /// How many carried the call's idempotency key in a header.
    pub with_idempotency_key: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolReport {
    pub name: String,
    pub effects: Vec<String>,
    pub conformance: ToolCounts,
    /// Calls by outcome: `ok` or the error kind.
    pub outcomes: BTreeMap<String, u32>,
    pub fuel: Spread,
    pub peak_memory_bytes: Spread,
    pub duration_us: Spread,
    pub output_bytes: Spread,
    pub hosts_contacted: Vec<String>,
    pub requests: Vec<RequestShape>,
    pub credentials_used: Vec<String>,
    pub secrets_read: Vec<String>,
    /// The request scopes the tool declares (contract 0.1.1 `requests` export), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_requests: Option<Vec<String>>,
    /// The narrowest request scopes that cover what was observed: `METHOD host/path-pattern`.
    pub proposed_scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub tool: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestFileReport {
    pub file: String,
    /// `replay`, `record`, or `offline` (no cassette).
    pub network: String,
    pub cases: Vec<CaseResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: String,
    pub plugin: String,
    pub version: String,
    /// sha256 of the component tested: the report is evidence about these bytes only.
    pub sha256: String,
    pub capabilities: Vec<String>,
    pub declared_hosts: Vec<String>,
    pub seed: u64,
    pub cases: u32,
    pub tools: Vec<ToolReport>,
    pub tests: Vec<TestFileReport>,
    pub findings: Vec<Finding>,
    pub duration_ms: u64,
}

/// Per-tool statistics and the declared-vs-observed findings, from every call of the run.
pub(crate) fn tools(
    manifest: &Manifest,
    counts: &[(String, ToolCounts)],
    observations: &[Observation],
    findings: &mut Vec<Finding>,
) -> Vec<ToolReport> {
    let mut reports = Vec::new();
    let mut contacted_any = BTreeSet::new();
    for spec in &manifest.tools {
        let mine: Vec<&Observation> = observations.iter().filter(|o| o.tool == spec.name).collect();
        let mut outcomes = BTreeMap::new();
        let mut shapes: BTreeMap<(String, String, String), RequestShape> = BTreeMap::new();
        let (mut hosts, mut credentials, mut secrets) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut echoed = None;
        let mut leaked = None;
        let mut undeclared_hosts: BTreeMap<String, (u32, String, Value)> = BTreeMap::new();
        let mut scopes = ScopeUse::new(spec.requests.as_deref());
        for o in &mine {
            let kind = match &o.outcome {
                Ok(_) => "ok".to_string(),
                Err((kind, _)) => kind.clone(),
            };
            *outcomes.entry(kind).or_insert(0u32) += 1;
            secrets.extend(o.report.secrets_read.iter().cloned());
            for e in &o.report.egress {
                scopes.see(e, &o.input);
                let undeclared = e.denied.as_deref().is_some_and(|d| d.contains("not declared"));
                if undeclared {
                    // One finding per host, however many calls tried it.
                    let entry = undeclared_hosts.entry(e.host.clone()).or_insert_with(|| {
                        (0, format!("{} {}://{}{}", e.method, e.scheme, e.host, e.path), o.input.clone())
                    });
                    entry.0 += 1;
                } else {
                    hosts.insert(e.host.clone());
                }
                if let Some(c) = &e.credential {
                    credentials.insert(c.clone());
                }
                let shape =
                    shapes.entry((e.method.clone(), e.host.clone(), path_pattern(&e.path))).or_insert_with(|| {
                        RequestShape {
                            method: e.method.clone(),
                            host: e.host.clone(),
                            path: path_pattern(&e.path),
                            count: 0,
                            refused: 0,
                            with_idempotency_key: 0,
                        }
                    });
                shape.count += 1;
                shape.refused += u32::from(e.denied.is_some());
                shape.with_idempotency_key += u32::from(e.idempotency_key);
            }
            leaked = leaked.or(o.key_leaked_to);
            if echoed.is_none() && o.source != Source::Invalid {
                let mut strings = Vec::new();
                input_strings(&o.input, &mut strings);
                echoed =
                    o.report.logs.iter().find_map(|l| strings.iter().find(|s| l.message.contains(s.as_str())).cloned());
            }
        }
        contacted_any.extend(hosts.iter().cloned());
        for (_, (times, first, input)) in undeclared_hosts {
            findings.push(Finding {
                severity: Severity::Error,
                code: "undeclared-host".into(),
                tool: Some(spec.name.clone()),
                message: format!(
                    "tried a host its manifest does not declare ({times} time(s), refused), first {first}"
                ),
                input: Some(input),
                reproduce: None,
            });
        }
        let effects = spec.effects;
        let changes_state = effects.write || effects.spend || effects.send_message || effects.delete;
        let mutating: Vec<&RequestShape> = shapes.values().filter(|s| is_mutating(&s.method)).collect();
        if effects.names().is_empty() && !shapes.is_empty() {
            findings.push(finding(
                Severity::Warning,
                "effects-missing",
                &spec.name,
                format!(
                    "declares no effects but made {} request(s), e.g. {}",
                    shapes.values().map(|s| s.count).sum::<u32>(),
                    describe(shapes.values().next()),
                ),
            ));
        } else if let Some(undeclared) = mutating.iter().find(|s| !scopes.declares(s)).filter(|_| !changes_state) {
            findings.push(finding(Severity::Warning, "read-tool-mutates", &spec.name, format!(
                "declares effects [{}] but sent {}: a request that changes state. If it only reads (a search API that takes a POST body), declare that request in the tool's request scopes; otherwise declare the effect",
                effects.names().join(", "),
                describe(Some(undeclared)),
            )));
        }
        scopes.findings(&spec.name, findings);
        // A write may first look something up with a POST (a search); what matters is that the
        // request that acts carries the key, so only a tool none of whose requests did is flagged.
        let keyed: u32 = mutating.iter().map(|s| s.with_idempotency_key).sum();
        if (effects.write || effects.spend || effects.send_message) && !mutating.is_empty() && keyed == 0 {
            findings.push(finding(Severity::Warning, "idempotency-key-not-forwarded", &spec.name, format!(
                "none of its {} state-changing request(s), e.g. {}, carried a header with the call's idempotency key: a retried call may act twice",
                mutating.iter().map(|s| s.count).sum::<u32>(),
                describe(mutating.first().copied()),
            )));
        }
        match leaked {
            Some("output") => findings.push(finding(Severity::Info, "idempotency-key-in-output", &spec.name,
                "the call's idempotency key is in its output: expected when the upstream stores it on the record it creates (to find it on a retry), worth a look otherwise".to_string())),
            Some(place) => findings.push(finding(Severity::Warning, "idempotency-key-leaked", &spec.name, format!(
                "the call's idempotency key appeared in its {place}: a key is for the upstream that deduplicates, and whoever reads it can make a retry look like the original"
            ))),
            None => {}
        }
        if let Some(text) = echoed {
            findings.push(finding(Severity::Warning, "logs-echo-input", &spec.name, format!(
                "a log message repeats the input's text {:?}: inputs can carry personal data, and logs go to the audit trail",
                clip(&text, 40),
            )));
        }
        // Only hosts the manifest declares: an undeclared one is a finding, not a scope.
        let proposed_scopes = shapes
            .values()
            .filter(|s| hosts.contains(&s.host))
            .map(|s| format!("{} {}{}", s.method, s.host, s.path))
            // Only what parses as a scope: a path a server could read two ways never becomes one.
            .filter(|s| RequestScope::parse(s).is_ok())
            .collect();
        let conformance = counts.iter().find(|(n, _)| *n == spec.name).map(|(_, c)| c.clone()).unwrap_or_default();
        let tried = conformance.valid + conformance.not_generated;
        if tried > 0 && conformance.valid * 2 < tried && !conformance.stopped_early {
            findings.push(finding(Severity::Info, "few-generated-inputs", &spec.name, format!(
                "only {} of {tried} generated inputs satisfied the schema (it uses what the generator cannot read, such as an unusual pattern): conformance covered less of this tool; test files can cover the rest",
                conformance.valid
            )));
        }
        let of = |f: fn(&Observation) -> u64| spread(mine.iter().map(|o| f(o)).collect());
        reports.push(ToolReport {
            name: spec.name.clone(),
            effects: effects.names().into_iter().map(String::from).collect(),
            conformance,
            outcomes,
            fuel: of(|o| o.report.fuel_used),
            peak_memory_bytes: of(|o| o.report.peak_memory_bytes as u64),
            duration_us: of(|o| o.report.duration_us),
            output_bytes: of(|o| o.outcome.as_ref().map_or(0, |n| *n as u64)),
            hosts_contacted: hosts.into_iter().collect(),
            requests: shapes.into_values().collect(),
            credentials_used: credentials.into_iter().collect(),
            secrets_read: secrets.into_iter().collect(),
            declared_requests: spec.requests.as_ref().map(|r| r.iter().map(ToString::to_string).collect()),
            proposed_scopes,
        });
    }
    for host in &manifest.hosts {
        let bare = host.split("://").last().unwrap_or(host).split(':').next().unwrap_or(host);
        let used = contacted_any
            .iter()
            .any(|h| h == bare || bare.strip_prefix("*.").is_some_and(|s| h.ends_with(s)) || bare == "*");
        if !used {
            findings.push(Finding {
                severity: Severity::Info,
                code: "declared-host-unused".into(),
                tool: None,
                message: format!(
                    "declares {host} but no call tried it: a host it does not need widens what it could reach"
                ),
                input: None,
                reproduce: None,
            });
        }
    }
    reports
}

/// One tool's declared request scopes against its egress records: requests the gate refused
/// for being outside them, and scopes no allowed request used.
struct ScopeUse<'a> {
    declared: Option<&'a [RequestScope]>,
    used: Vec<bool>,
    /// Refused as outside the declared scopes: count, the first request and its input.
    outside: Option<(u32, String, Value)>,
}

impl<'a> ScopeUse<'a> {
    fn new(declared: Option<&'a [RequestScope]>) -> Self {
        ScopeUse { declared, used: vec![false; declared.map_or(0, <[_]>::len)], outside: None }
    }

    fn see(&mut self, e: &tollgate_contract::EgressRecord, input: &Value) {
        let Some(declared) = self.declared else { return };
        // The gate's wording for a request outside what the tool declares (`egress/scope.rs`).
        if e.denied.as_deref().is_some_and(|d| d.contains("` declares (")) {
            let first = || (0, format!("{} {}{}", e.method, e.host, e.path), input.clone());
            self.outside.get_or_insert_with(first).0 += 1;
        } else if e.denied.is_none() {
            for (i, scope) in declared.iter().enumerate() {
                self.used[i] |= scope.matches(&e.method, &e.host, &e.path);
            }
        }
    }

    /// Whether the tool declares requests of this shape (a shape's path is a pattern, so a
    /// scope is taken to cover it when it matches the pattern's text).
    fn declares(&self, shape: &RequestShape) -> bool {
        self.declared.is_some_and(|d| d.iter().any(|s| s.matches(&shape.method, &shape.host, &shape.path)))
    }

    fn findings(self, tool: &str, findings: &mut Vec<Finding>) {
        if let Some((times, first, input)) = self.outside {
            findings.push(Finding {
                severity: Severity::Error,
                code: "request-outside-scopes".into(),
                tool: Some(tool.into()),
                message: format!(
                    "sent requests its declared request scopes do not cover ({times} time(s), refused by the gate), first {first}"
                ),
                input: Some(input),
                reproduce: None,
            });
        }
        let unused: Vec<String> = (self.declared.unwrap_or_default().iter().zip(&self.used))
            .filter(|(_, used)| !**used)
            .map(|(scope, _)| scope.to_string())
            .collect();
        if !unused.is_empty() {
            findings.push(finding(Severity::Info, "declared-request-unused", tool, format!(
                "declares request scope(s) no call used: {}; a scope it does not need widens what it could send (or the tests do not reach it)",
                unused.join(", ")
            )));
        }
    }
}

fn finding(severity: Severity, code: &str, tool: &str, message: String) -> Finding {
    Finding { severity, code: code.into(), tool: Some(tool.into()), message, input: None, reproduce: None }
}

fn describe(shape: Option<&RequestShape>) -> String {
    shape.map_or_else(String::new, |s| format!("{} {}{}", s.method, s.host, s.path))
}

fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

impl Report {
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Findings at `severity` or worse.
    pub fn count_at_least(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= severity).count()
    }

    fn failed_cases(&self) -> usize {
        self.tests.iter().flat_map(|t| &t.cases).filter(|c| !c.passed).count()
    }

    /// For a terminal.
    pub fn text(&self) -> String {
        let e = |s: &str| escape_for_terminal(s).into_owned();
        let mut out = String::new();
        let _ = writeln!(out, "{} {} · sha256 {}", e(&self.plugin), e(&self.version), &self.sha256);
        let _ = writeln!(
            out,
            "capabilities: {}",
            if self.capabilities.is_empty() { "none".into() } else { self.capabilities.join(", ") }
        );
        let _ = writeln!(
            out,
            "declared hosts: {}",
            if self.declared_hosts.is_empty() { "none".into() } else { e(&self.declared_hosts.join(", ")) }
        );
        let _ = writeln!(
            out,
            "\nconformance (seed {}, {} cases per tool; requests refused after the gate's checks, not sent):",
            self.seed, self.cases
        );
        for t in &self.tools {
            let c = &t.conformance;
            let outcomes: Vec<String> = t.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(
                out,
                "  {} [{}]: {} valid inputs{}, {}/{} invalid refused before the guest ran; outcomes: {}",
                e(&t.name),
                t.effects.join(", "),
                c.valid,
                if c.stopped_early { " (stopped at the first breakage)" } else { "" },
                c.invalid_refused,
                c.invalid,
                outcomes.join(", "),
            );
            let _ = writeln!(
                out,
                "    fuel p50 {} p99 {} · memory p50 {} KiB p99 {} KiB · time p50 {} µs p99 {} µs · output p50 {} B max {} B",
                t.fuel.p50,
                t.fuel.p99,
                t.peak_memory_bytes.p50 / 1024,
                t.peak_memory_bytes.p99 / 1024,
                t.duration_us.p50,
                t.duration_us.p99,
                t.output_bytes.p50,
                t.output_bytes.max,
            );
            for r in &t.requests {
                let _ = writeln!(
                    out,
                    "    {} {}{} ×{}{}{}",
                    e(&r.method),
                    e(&r.host),
                    e(&r.path),
                    r.count,
                    if r.with_idempotency_key > 0 {
                        format!(", idempotency key ×{}", r.with_idempotency_key)
                    } else {
                        String::new()
                    },
                    if r.refused > 0 { format!(", refused ×{}", r.refused) } else { String::new() },
                );
            }
            if !t.credentials_used.is_empty() {
                let _ = writeln!(out, "    credentials: {}", t.credentials_used.join(", "));
            }
        }
        if !self.tests.is_empty() {
            let _ = writeln!(out, "\ntests:");
            for f in &self.tests {
                let passed = f.cases.iter().filter(|c| c.passed).count();
                let _ = writeln!(out, "  {} ({}): {passed}/{} passed", e(&f.file), f.network, f.cases.len());
                for c in f.cases.iter().filter(|c| !c.passed) {
                    let _ = writeln!(
                        out,
                        "    FAIL {} ({}): {}",
                        e(&c.name),
                        e(&c.tool),
                        e(c.failure.as_deref().unwrap_or(""))
                    );
                }
            }
        }
        let proposals: Vec<&ToolReport> =
            self.tools.iter().filter(|t| !t.proposed_scopes.is_empty() && t.declared_requests.is_none()).collect();
        if !proposals.is_empty() {
            let _ = writeln!(
                out,
                "\nrequest scopes seen, for tools that declare none (review, then declare them in the plugin — Rust \
                 `Tool::request`, Python `requests=`, JavaScript `requests:` — or grant them in the workflow; \
                 either way the gate enforces them):\n  [plugins.{}.grants.requests]",
                e(&self.plugin)
            );
            for t in proposals {
                let scopes: Vec<String> = t.proposed_scopes.iter().map(|s| format!("{:?}", e(s))).collect();
                let _ = writeln!(out, "  {} = [{}]", e(&t.name), scopes.join(", "));
            }
        }
        let _ = writeln!(out, "\nfindings:");
        if self.findings.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for f in &self.findings {
            let tool = f.tool.as_deref().map(|t| format!(" {}:", e(t))).unwrap_or_default();
            let _ = writeln!(out, "  {:?} {}{tool} {}", f.severity, f.code, e(&f.message));
            if let Some(input) = &f.input {
                let _ = writeln!(out, "    input: {}", e(&clip(&input.to_string(), 200)));
            }
            if let Some(r) = &f.reproduce {
                let _ = writeln!(out, "    reproduce: {}", e(r));
            }
        }
        let _ = writeln!(
            out,
            "\n{} error(s), {} warning(s), {} failed test case(s) in {:.1} s",
            self.count_at_least(Severity::Error),
            self.findings.iter().filter(|f| f.severity == Severity::Warning).count(),
            self.failed_cases(),
            self.duration_ms as f64 / 1000.0,
        );
        out
    }

    /// For a review or a CI job summary. Plugin-chosen text goes in code spans, escaped.
    pub fn markdown(&self) -> String {
        let code = |s: &str| format!("`{}`", escape_for_terminal(s).replace('`', "'").replace('|', "\\|"));
        let mut out = String::new();
        let _ = writeln!(out, "# Plugin report: {} {}\n", code(&self.plugin), code(&self.version));
        let _ = writeln!(out, "- sha256: `{}`", self.sha256);
        let _ = writeln!(
            out,
            "- capabilities: {}",
            self.capabilities.iter().map(|c| code(c)).collect::<Vec<_>>().join(", ")
        );
        let _ = writeln!(
            out,
            "- declared hosts: {}",
            self.declared_hosts.iter().map(|h| code(h)).collect::<Vec<_>>().join(", ")
        );
        let _ = writeln!(out, "- conformance: seed {}, {} cases per tool\n", self.seed, self.cases);
        let _ = writeln!(
            out,
            "| tool | effects | valid / invalid refused | outcomes | fuel p50 / p99 | memory p99 | requests | proposed scopes |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for t in &self.tools {
            let outcomes: Vec<String> = t.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let requests: Vec<String> =
                t.requests.iter().map(|r| code(&format!("{} {}{} ×{}", r.method, r.host, r.path, r.count))).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} / {} of {} | {} | {} / {} | {} KiB | {} | {} |",
                code(&t.name),
                t.effects.join(", "),
                t.conformance.valid,
                t.conformance.invalid_refused,
                t.conformance.invalid,
                outcomes.join(", "),
                t.fuel.p50,
                t.fuel.p99,
                t.peak_memory_bytes.p99 / 1024,
                requests.join("<br>"),
                t.proposed_scopes.iter().map(|s| code(s)).collect::<Vec<_>>().join("<br>"),
            );
        }
        if !self.tests.is_empty() {
            let _ = writeln!(out, "\n## Tests\n");
            for f in &self.tests {
                let passed = f.cases.iter().filter(|c| c.passed).count();
                let _ = writeln!(out, "- {} ({}): {passed}/{} passed", code(&f.file), f.network, f.cases.len());
                for c in f.cases.iter().filter(|c| !c.passed) {
                    let _ = writeln!(out, "  - FAIL {}: {}", code(&c.name), code(c.failure.as_deref().unwrap_or("")));
                }
            }
        }
        let _ = writeln!(out, "\n## Findings\n");
        if self.findings.is_empty() {
            let _ = writeln!(out, "None.");
        }
        for f in &self.findings {
            let tool = f.tool.as_deref().map(|t| format!(" {}", code(t))).unwrap_or_default();
            let _ = writeln!(out, "- **{:?}** `{}`{tool}: {}", f.severity, f.code, code(&f.message));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tollgate_contract::EgressRecord;

    use super::*;

    fn record(method: &str, path: &str, denied: Option<&str>) -> EgressRecord {
        EgressRecord {
            method: method.into(),
            host: "api.test".into(),
            path: path.into(),
            denied: denied.map(String::from),
            ..EgressRecord::default()
        }
    }

    /// Requests the gate refused as outside a tool's declared scopes are an error; declared
    /// scopes no allowed request used are worth a look; a declared POST is not a mutation to flag.
    #[test]
    fn declared_scopes_against_what_the_tool_sent() {
        let declared =
            ["POST api.test/search", "GET api.test/items/*"].map(|s| RequestScope::parse(s).unwrap()).to_vec();
        let mut scopes = ScopeUse::new(Some(&declared));
        scopes.see(&record("POST", "/search", None), &json!({}));
        let refused = "POST api.test/pay is outside the requests tool `t` declares (POST api.test/search)";
        scopes.see(&record("POST", "/pay", Some(refused)), &json!({"amount": 1}));
        scopes.see(&record("POST", "/pay", Some(refused)), &json!({"amount": 2}));
        let shape = |method: &str, path: &str| RequestShape {
            method: method.into(),
            host: "api.test".into(),
            path: path.into(),
            count: 1,
            refused: 0,
            with_idempotency_key: 0,
        };
        assert!(scopes.declares(&shape("POST", "/search")));
        assert!(!scopes.declares(&shape("POST", "/pay")));
        let mut findings = Vec::new();
        scopes.findings("t", &mut findings);
        let codes: Vec<(&str, Severity)> = findings.iter().map(|f| (f.code.as_str(), f.severity)).collect();
        assert_eq!(codes, [("request-outside-scopes", Severity::Error), ("declared-request-unused", Severity::Info)]);
        assert!(findings[0].message.contains("2 time(s)") && findings[0].message.contains("POST api.test/pay"));
        assert_eq!(findings[0].input, Some(json!({"amount": 1})));
        assert!(findings[1].message.contains("GET api.test/items/*"), "{}", findings[1].message);
        // A tool that declares nothing has nothing to say here.
        let mut none = Vec::new();
        let mut undeclared = ScopeUse::new(None);
        undeclared.see(&record("DELETE", "/x", None), &json!({}));
        undeclared.findings("t", &mut none);
        assert!(none.is_empty());
    }
}
