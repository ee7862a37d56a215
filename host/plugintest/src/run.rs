//! One `plugin test` run: load the component the way an operator would grant it (every host
//! and credential it declares, kv, log), run conformance, then each test file with its own kv
//! namespace and its cassette, and build the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tollgate_contract::pattern::HostPattern;
use tollgate_sandbox::kv::{KvStore, MemoryKv};
use tollgate_sandbox::{
    CallContext, Grants, Limits, Network, Replayer, Sandbox, SandboxConfig, SecretSource, TapRequest, TapResponse,
    Upstream,
};

use crate::TestError;
use crate::cassette::{Cassette, CassetteRecorder, CassetteReplayer};
use crate::observe::{Observation, Source, is_breakage_kind};
use crate::report::{self, CaseResult, Finding, Report, Severity, TestFileReport};
use crate::suite;

/// Where the test files' requests go.
#[derive(Debug, Clone, Default)]
pub enum Mode {
    /// From each file's cassette, with no network (the default, and what CI runs).
    #[default]
    Replay,
    /// To the real hosts, or to the upstreams given (stand-ins, staging), saving each file's
    /// cassette.
    Record { upstreams: Vec<(String, Upstream)> },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Generated valid inputs per tool.
    pub cases: u32,
    pub seed: u64,
    /// Only this tool (conformance and test cases).
    pub tool: Option<String>,
    /// Test files to run.
    pub tests: Vec<PathBuf>,
    pub mode: Mode,
    /// Credential sources by name; a declared credential not given gets a placeholder value
    /// (right for replay: the value never leaves the sandbox).
    pub credentials: BTreeMap<String, SecretSource>,
    /// Raw secrets to grant, for plugins that import `tollgate:plugin/secrets`.
    pub secrets: BTreeMap<String, SecretSource>,
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: 32,
            seed: 1,
            tool: None,
            tests: Vec::new(),
            mode: Mode::Replay,
            credentials: BTreeMap::new(),
            secrets: BTreeMap::new(),
            limits: Limits::default(),
        }
    }
}

/// Refuses every request: conformance calls are observed at the gate, never sent.
struct Offline(&'static str);

impl Replayer for Offline {
    fn replay(&self, _: &TapRequest) -> Result<TapResponse, String> {
        Err(self.0.to_string())
    }
}

/// Tests the component at `component` and reports; `Err` only when there is nothing to report
/// on (the file cannot be read, the component does not load, a test file is malformed).
pub async fn test_plugin(config: SandboxConfig, component: &Path, options: &Options) -> Result<Report, TestError> {
    let started = Instant::now();
    let bytes = std::fs::read(component).map_err(|e| TestError::io(component, e))?;
    let kv = Arc::new(MemoryKv::default());
    let sandbox = Sandbox::with_kv(config, kv.clone()).map_err(|e| TestError::Internal(e.to_string()))?;
    let inspection = sandbox.inspect(&bytes).await.map_err(|e| TestError::Load(e.to_string()))?;
    let manifest = inspection.manifest.clone();
    if let Some(tool) = &options.tool
        && manifest.tool(tool).is_none()
    {
        return Err(TestError::Load(format!("the plugin has no tool `{tool}`")));
    }
    // Loaded up front so a malformed test file changes nothing and costs no calls.
    let files = options.tests.iter().map(|p| suite::load(p)).collect::<Result<Vec<_>, _>>()?;

    let placeholder = tempfile_with("tollgate-plugin-test-credential")?;
    let mut grants = Grants::new().log(true).kv(true).limits(options.limits.clone());
    for host in &manifest.hosts {
        let pattern = HostPattern::parse(host).map_err(|e| TestError::Load(e.to_string()))?;
        grants = grants.allow_pattern(pattern);
    }
    for c in &manifest.credentials {
        let source = match options.credentials.get(&c.name) {
            Some(source) => source.clone(),
            None => SecretSource::parse(&format!("file:{}", placeholder.path.display()))
                .map_err(|e| TestError::Internal(e.to_string()))?,
        };
        // A credential goes only to a host granted by name, even under a wildcard declaration.
        grants = grants
            .credential(&c.name, source)
            .allow_pattern(HostPattern::parse(&c.host).map_err(|e| TestError::Load(e.to_string()))?);
    }
    for (name, source) in &options.secrets {
        grants = grants.secret(name, source.clone());
    }
    let load = |grants: Grants| {
        let sandbox = &sandbox;
        let bytes = &bytes;
        async move { sandbox.load(bytes, grants).await.map_err(|e| TestError::Load(e.to_string())) }
    };

    let mut observations = Vec::new();
    let mut findings = Vec::new();
    let offline =
        Offline("plugin test: conformance calls run offline; the request passed the gate's checks and was not sent");
    let plugin = load(grants.clone().kv_namespace("conformance").network(Network::Replay(Arc::new(offline)))).await?;
    let counts = crate::conformance::run(
        &plugin,
        options.tool.as_deref(),
        options.cases,
        options.seed,
        &mut observations,
        &mut findings,
    )
    .await;

    let mut tests = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let namespace = format!("test-{index}");
        for (key, value) in &file.file.kv {
            kv.set(&namespace, key, value.as_bytes()).map_err(TestError::Internal)?;
        }
        let mut file_grants = grants.clone().kv_namespace(&namespace);
        let (mut replayer, mut recorder) = (None, None);
        let (network_name, network) = match &options.mode {
            Mode::Replay if file.cassette.is_file() => {
                let r = CassetteReplayer::new(Cassette::load(&file.cassette)?);
                replayer = Some(r.clone());
                ("replay", Network::Replay(r))
            }
            Mode::Replay => {
                let why = "plugin test: this test file has no cassette (record one with --record)";
                ("offline", Network::Replay(Arc::new(Offline(why))))
            }
            Mode::Record { upstreams } => {
                for (host, upstream) in upstreams {
                    file_grants = file_grants.upstream(host, upstream.clone());
                }
                let r = CassetteRecorder::new();
                recorder = Some(r.clone());
                ("record", Network::Record(r))
            }
        };
        let plugin = load(file_grants.network(network)).await?;
        let mut cases = Vec::new();
        for (n, case) in file.file.cases.iter().enumerate() {
            if options.tool.as_ref().is_some_and(|t| *t != case.tool) {
                continue;
            }
            if let Some(r) = &recorder {
                r.begin_case(&case.name);
            }
            // Stable across runs and however the file was named on the command line: requests
            // that carry the key (a create's dedupe search) must replay.
            let stem =
                file.cassette.file_name().and_then(|n| n.to_str()).unwrap_or("").trim_end_matches(".cassette.json");
            let key = format!("plugin-test-key-{stem}-{n}");
            let ctx = CallContext { run_id: "plugin-test".into(), call_id: key.clone(), idempotency_key: key };
            let outcome = plugin.call(&case.tool, &case.input.to_string(), &ctx).await;
            let got: Result<Value, (String, String)> = match &outcome.result {
                Ok(v) => Ok(v.clone()),
                Err(e) => Err((e.kind().to_string(), e.to_string())),
            };
            let mut failure = match &got {
                Err((kind, message)) if is_breakage_kind(kind) => Some(format!("{kind}: {message}")),
                _ => suite::check(&case.expect, &got),
            };
            if let Some(r) = &replayer {
                let unmatched = r.take_unmatched();
                // The cause, ahead of whatever the plugin made of the refusal.
                if !unmatched.is_empty() {
                    let then = failure.map(|f| format!(" (then: {f})")).unwrap_or_default();
                    failure = Some(format!("request not in the cassette: {}{then}", unmatched.join("; ")));
                }
            }
            observations.push(Observation::new(
                &case.tool,
                Source::Test,
                case.input.clone(),
                &ctx.idempotency_key,
                &outcome,
            ));
            cases.push(CaseResult {
                name: case.name.clone(),
                tool: case.tool.clone(),
                passed: failure.is_none(),
                failure,
            });
        }
        if let Some(r) = &recorder {
            r.cassette().save(&file.cassette)?;
        }
        if let Some(r) = &replayer {
            for unused in r.unused() {
                findings.push(Finding {
                    severity: Severity::Warning,
                    code: "cassette-exchange-unused".into(),
                    tool: None,
                    message: format!(
                        "{}: recorded {unused} was never requested: re-record the cassette",
                        file.cassette.display()
                    ),
                    input: None,
                    reproduce: None,
                });
            }
        }
        for c in cases.iter().filter(|c| !c.passed) {
            findings.push(Finding {
                severity: Severity::Error,
                code: "test-failed".into(),
                tool: Some(c.tool.clone()),
                message: format!("{}: case `{}`: {}", file.path.display(), c.name, c.failure.as_deref().unwrap_or("")),
                input: None,
                reproduce: None,
            });
        }
        tests.push(TestFileReport { file: file.path.display().to_string(), network: network_name.to_string(), cases });
    }

    if let Mode::Record { upstreams } = &options.mode {
        invalid_credentials(&bytes, &sandbox, &manifest, &grants, upstreams, &files, &observations, &mut findings)
            .await?;
    }

    // With `--tool`, the report is about that tool: the others were not exercised.
    let mut reported = plugin.manifest().clone();
    if let Some(only) = &options.tool {
        reported.tools.retain(|t| &t.name == only);
    }
    let tools = report::tools(&reported, &counts, &observations, &mut findings);
    if options.tool.is_some() {
        // Other tools may use the hosts this one does not.
        findings.retain(|f| f.code != "declared-host-unused");
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(Report {
        format: report::FORMAT.to_string(),
        plugin: manifest.name.clone(),
        version: manifest.version.clone(),
        sha256: inspection.sha256.clone(),
        capabilities: inspection.capabilities.iter().map(|c| c.to_string()).collect(),
        declared_hosts: manifest.hosts.clone(),
        seed: options.seed,
        cases: options.cases,
        tools,
        tests,
        findings,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Live only (recording): each tool that sent a credential in a test case makes that call again
/// with every credential replaced by a wrong value, and must end in a typed error — a success
/// means the upstream (or the plugin) does not check what it is given. Nothing is recorded.
#[allow(clippy::too_many_arguments, reason = "one run's plugin, grants and findings")]
async fn invalid_credentials(
    bytes: &[u8],
    sandbox: &Sandbox,
    manifest: &tollgate_sandbox::Manifest,
    grants: &Grants,
    upstreams: &[(String, Upstream)],
    files: &[suite::Loaded],
    observations: &[Observation],
    findings: &mut Vec<Finding>,
) -> Result<(), TestError> {
    if manifest.credentials.is_empty() {
        return Ok(());
    }
    let wrong = tempfile_with("tollgate-plugin-test-invalid-credential")?;
    let source = SecretSource::parse(&format!("file:{}", wrong.path.display()))
        .map_err(|e| TestError::Internal(e.to_string()))?;
    let mut bad = grants.clone().kv_namespace("invalid-credential");
    for c in &manifest.credentials {
        bad = bad.credential(&c.name, source.clone());
    }
    for (host, upstream) in upstreams {
        bad = bad.upstream(host, upstream.clone());
    }
    let plugin = sandbox.load(bytes, bad).await.map_err(|e| TestError::Load(e.to_string()))?;
    let mut done = std::collections::BTreeSet::new();
    let cases = files.iter().flat_map(|f| f.file.cases.iter());
    for case in cases {
        let used_credential = observations.iter().any(|o| {
            o.source == Source::Test && o.tool == case.tool && o.report.egress.iter().any(|e| e.credential.is_some())
        });
        if !used_credential || !done.insert(case.tool.clone()) {
            continue;
        }
        let key = format!("plugin-test-key-invalid-credential-{}", case.tool);
        let ctx = CallContext { run_id: "plugin-test".into(), call_id: key.clone(), idempotency_key: key };
        let outcome = plugin.call(&case.tool, &case.input.to_string(), &ctx).await;
        if outcome.result.is_ok() {
            findings.push(Finding {
                severity: Severity::Error,
                code: "invalid-credential-accepted".into(),
                tool: Some(case.tool.clone()),
                message: format!("case `{}` succeeded with a wrong credential: a call that cannot authenticate must end in a typed error", case.name),
                input: Some(case.input.clone()),
                reproduce: None,
            });
        }
    }
    Ok(())
}

/// A file holding `value`, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_with(value: &str) -> Result<TempFile, TestError> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = std::env::temp_dir().join(format!("tollgate-plugin-test-{}-{nanos:x}", std::process::id()));
    std::fs::write(&path, value).map_err(|e| TestError::io(&path, e))?;
    Ok(TempFile { path })
}
