//! The outbound HTTP gate. Every `wasi:http/outgoing-handler` request of a plugin passes
//! [`EgressHooks::send_request`], which is the only code in Tollgate that opens a connection
//! for a guest. In order, it:
//!
//! 1. counts the request against the per-call cap;
//! 2. normalises the target (scheme, host — any IP spelling —, port);
//! 3. requires the target to match a host the manifest declares *and* one the operator grants,
//!    and, where the plugin declares or the operator grants the calling tool request scopes,
//!    one of each (`tollgate_contract::RequestScope`: method, host, path pattern; `scope.rs`);
//! 4. applies the operator's upstream remap, if any;
//! 5. resolves the name on the host (or the operator's pinned answer) and keeps only
//!    addresses outside refused ranges unless the operator opened them (see [`addr`]);
//! 6. sets `Host` itself, injects the credential bound to this host (the guest never sees it);
//! 7. connects to exactly a checked address, with timeouts inside the call's deadline, caps
//!    request and response bodies, and never follows redirects — or, for a test harness, hands
//!    the checked request to a recorder or a replayer instead (`tap.rs`).
//!
//! Each attempt, allowed or denied, becomes an [`EgressRecord`] in the call report.

pub mod addr;
mod path;
mod scope;
mod scrub;
mod send;
mod tap;

pub use tap::{Network, Recorder, Replayer, TapRequest, TapResponse};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use tollgate_contract::pattern::{HostMatch, HostPattern, Scheme, Target};
use tollgate_contract::{RequestScope, SecretSource};

use crate::grants::Upstream;
use crate::redact::Redactor;
use crate::report::EgressRecord;
use addr::blocked_range;
use http_body_util::BodyExt;
use path::could_leave_prefix;
use scrub::{ScrubBody, Scrubber};

/// A manifest credential resolved against the operator's grants.
#[derive(Debug, Clone)]
pub(crate) struct CredentialBinding {
    pub name: String,
    /// Exact name or `*.suffix`, from the manifest.
    pub host: HostMatch,
    pub header: HeaderName,
    pub prefix: String,
    /// `None` when the operator mapped no source: requests go out without it.
    pub source: Option<SecretSource>,
}

impl CredentialBinding {
    fn applies_to(&self, target: &Target) -> bool {
        self.host.covers(&target.host_match())
    }
}

/// A plugin's effective egress rules: built once at load, shared by its calls.
#[derive(Debug, Default)]
pub(crate) struct EgressPolicy {
    pub declared: Vec<HostPattern>,
    pub granted: Vec<HostPattern>,
    pub open_ranges: Vec<IpNet>,
    pub credentials: Vec<CredentialBinding>,
    pub upstreams: BTreeMap<String, Upstream>,
    pub resolve: BTreeMap<String, Vec<IpAddr>>,
    pub network: Network,
    /// Tool → the only requests it may make, as its plugin declares them (see [`RequestScope`]).
    pub declared_scopes: BTreeMap<String, Vec<RequestScope>>,
    /// Tool → the only requests it may make, as the operator grants them.
    pub tool_scopes: BTreeMap<String, Vec<RequestScope>>,
}

/// Per-call caps the gate enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EgressCaps {
    pub max_requests: usize,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
}

/// Appends to and updates the call's egress records from inside request futures.
#[derive(Debug, Clone, Default)]
pub(crate) struct EgressLog(Arc<Mutex<Vec<EgressRecord>>>);

/// Longest method, host and path kept in a record: the guest chooses them.
const MAX_RECORD_FIELD: usize = 512;

fn clip(s: &str) -> String {
    crate::limits::clip_text(s.to_string(), MAX_RECORD_FIELD)
}

impl EgressLog {
    /// Records `rec`, its guest-chosen fields redacted *before* they are clipped: a secret cut
    /// at the clip boundary would no longer match the redactor.
    fn push(&self, mut rec: EgressRecord, redactor: &Redactor) -> RecordHandle {
        rec.method = clip(&redactor.text(&rec.method));
        rec.host = clip(&redactor.text(&rec.host));
        rec.path = clip(&redactor.text(&rec.path));
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.push(rec);
        RecordHandle { log: self.clone(), index: v.len() - 1 }
    }
    pub fn take(&self) -> Vec<EgressRecord> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RecordHandle {
    log: EgressLog,
    index: usize,
}

impl RecordHandle {
    pub fn update(&self, f: impl FnOnce(&mut EgressRecord)) {
        let mut v = self.log.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = v.get_mut(self.index) {
            f(r);
        }
    }
}

/// The per-call `WasiHttpHooks`: the gate itself.
pub(crate) struct EgressHooks {
    pub policy: Arc<EgressPolicy>,
    pub caps: EgressCaps,
    pub deadline: Instant,
    pub log: EgressLog,
    /// Credential values read at call start: name → value, or why it could not be read.
    pub credential_values: Arc<BTreeMap<String, Result<String, String>>>,
    /// Every secret value known to the call so far (credentials, secrets the guest read, and
    /// for a reused instance those earlier calls handed it): guest text is redacted with it
    /// before it is clipped and kept.
    pub redactor: Redactor,
    /// Credentials whose value was scrubbed from a response this call (see `scrub`).
    pub scrubbed: Arc<Mutex<BTreeSet<String>>>,
    pub requests: usize,
    /// Attempts past the cap that were refused without a record.
    pub dropped: usize,
    /// The call's idempotency key: a request carrying it in a header is marked in its record.
    pub idempotency_key: String,
    /// The tool being called, whose request scopes apply.
    pub tool: String,
}

/// A denial: what the guest is told, and what the report says.
struct Denial {
    code: HttpError,
    reason: String,
}

fn deny(code: HttpError, reason: impl Into<String>) -> Denial {
    Denial { code, reason: reason.into() }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let started = Instant::now();
        let mut record = EgressRecord {
            method: request.method().to_string(),
            scheme: request.uri().scheme_str().unwrap_or("").to_string(),
            host: request.uri().host().unwrap_or("").to_string(),
            port: 0,
            path: request.uri().path().to_string(),
            idempotency_key: carries_key(request.headers(), &self.idempotency_key),
            ..EgressRecord::default()
        };
        let plan = match self.plan(&request, &mut record) {
            Ok(plan) => plan,
            Err(d) => {
                // Past the cap, attempts are counted, not recorded: a guest looping on denied
                // requests must not grow host memory.
                if self.requests <= self.caps.max_requests + 1 {
                    record.denied = Some(d.reason);
                    self.log.push(record, &self.redactor);
                } else {
                    self.dropped += 1;
                }
                let code = d.code;
                return Box::new(async move { Err(code) });
            }
        };
        let handle = self.log.push(record, &self.redactor);
        let deadline = self.deadline;
        let caps = self.caps;
        let policy = self.policy.clone();
        let redactor = self.redactor.clone();
        Box::new(async move {
            let result = execute(request, plan, options, deadline, caps, &policy, &handle, &redactor).await;
            handle.update(|r| {
                r.duration_us = started.elapsed().as_micros() as u64;
                match &result {
                    Ok((resp, _)) => r.status = Some(resp.status().as_u16()),
                    Err(Failure::Denied(d)) => r.denied = Some(d.reason.clone()),
                    Err(Failure::Error(e)) => r.error = Some(format!("{e}")),
                }
            });
            result.map_err(|f| match f {
                Failure::Denied(d) => d.code,
                Failure::Error(e) => e,
            })
        })
    }
}

/// Whether any header value of the request is the call's idempotency key (the conventional
/// `Idempotency-Key`, or a vendor's own header name).
fn carries_key(headers: &http::HeaderMap, key: &str) -> bool {
    !key.is_empty() && headers.values().any(|v| v.as_bytes() == key.as_bytes())
}

/// What the synchronous checks decided: where to connect and what to add.
struct Plan {
    original: Target,
    connect: Target,
    /// The connect target's address was named explicitly by the operator.
    explicit_ip: bool,
    path_prefix: String,
    credential: Option<(HeaderName, HeaderValue)>,
    /// Set when a credential is injected: its value is scrubbed from the response.
    scrub: Option<Scrubber>,
    /// The injected credential's name, for what a [`Network`] tap is shown.
    credential_name: Option<String>,
}

enum Failure {
    Denied(Denial),
    Error(HttpError),
}

impl EgressHooks {
    fn plan(&mut self, request: &http::Request<WasiBody>, record: &mut EgressRecord) -> Result<Plan, Denial> {
        self.requests += 1;
        if self.requests > self.caps.max_requests {
            return Err(deny(
                HttpError::ConnectionLimitReached,
                format!("outbound request limit of {} per call reached", self.caps.max_requests),
            ));
        }
        if matches!(request.method().as_str(), "CONNECT" | "TRACE") {
            return Err(deny(
                HttpError::HttpRequestMethodInvalid,
                format!("method {} is not allowed", request.method()),
            ));
        }
        let uri = request.uri();
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| deny(HttpError::HttpProtocolError, "scheme must be http or https"))?;
        let host = uri.host().ok_or_else(|| deny(HttpError::HttpRequestUriInvalid, "request has no host"))?;
        let original = Target::new(scheme, host, uri.port_u16());
        record.host = original.host.clone();
        record.port = original.port;
        record.scheme = scheme.as_str().to_string();

        let policy = &self.policy;
        if !policy.declared.iter().any(|p| p.matches(&original)) {
            return Err(deny(
                HttpError::HttpRequestDenied,
                format!("{original} is not declared in the plugin's manifest hosts"),
            ));
        }
        let Some(grant) = policy.granted.iter().find(|p| p.matches(&original)) else {
            return Err(deny(HttpError::HttpRequestDenied, format!("{original} is not granted by the operator")));
        };
        scope::check(
            &policy.declared_scopes,
            &policy.tool_scopes,
            &self.tool,
            request.method().as_str(),
            &original.host,
            uri.path(),
        )
        .map_err(|reason| deny(HttpError::HttpRequestDenied, reason))?;

        let upstream = policy.upstreams.get(&original.host);
        // With a path prefix, dot segments could climb out of it on servers that normalise,
        // including ones that decode `%2e` and `%2f` first.
        if upstream.is_some_and(|u| !u.path_prefix.is_empty()) && could_leave_prefix(uri.path()) {
            return Err(deny(
                HttpError::HttpRequestUriInvalid,
                "dot segments (plain or percent-encoded) and encoded slashes are not allowed under an upstream \
                 path prefix",
            ));
        }
        let (connect, explicit_ip, path_prefix) = match upstream {
            Some(u) => {
                let t = Target::new(u.scheme, &u.host, Some(u.port));
                record.upstream = Some(format!("{t}{}", u.path_prefix));
                let explicit = t.ip.is_some();
                (t, explicit, u.path_prefix.clone())
            }
            None => {
                let explicit = original.ip.is_some_and(|ip| grant.names_ip(ip));
                (original.clone(), explicit, String::new())
            }
        };

        let mut scrub = None;
        let credential = match policy.credentials.iter().find(|c| c.applies_to(&original)) {
            None => None,
            Some(binding) => match (&binding.source, self.credential_values.get(&binding.name)) {
                (None, _) => None,
                (Some(_), Some(Ok(value))) => {
                    // Bearer tokens over plaintext only where the operator pointed the host at
                    // a specific upstream (a local stand-in, a sidecar proxy).
                    if scheme == Scheme::Http && upstream.is_none() {
                        return Err(deny(
                            HttpError::HttpRequestDenied,
                            format!("credential `{}` is never sent over plaintext http to {original}", binding.name),
                        ));
                    }
                    let mut v = HeaderValue::from_str(&format!("{}{value}", binding.prefix)).map_err(|_| {
                        deny(
                            HttpError::InternalError(None),
                            format!("credential `{}` is not a valid header value", binding.name),
                        )
                    })?;
                    v.set_sensitive(true);
                    record.credential = Some(binding.name.clone());
                    scrub = Scrubber::new(&binding.name, value, self.scrubbed.clone());
                    Some((binding.header.clone(), v))
                }
                (Some(src), other) => {
                    let why = match other {
                        Some(Err(e)) => e.clone(),
                        _ => format!("{src} was not read"),
                    };
                    return Err(deny(
                        HttpError::InternalError(Some(format!("credential `{}` unavailable", binding.name))),
                        format!("credential `{}` unavailable: {why}", binding.name),
                    ));
                }
            },
        };
        let credential_name = record.credential.clone();
        Ok(Plan { original, connect, explicit_ip, path_prefix, credential, scrub, credential_name })
    }
}

type Sent = (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>);

/// Sets `Host` and the credential, then hands the request to [`Network`]: resolve, check
/// addresses, connect and send, recording the exchange if asked — or let a replayer answer.
#[allow(clippy::too_many_arguments, reason = "one request's plan, limits and bookkeeping")]
async fn execute(
    mut request: http::Request<WasiBody>,
    plan: Plan,
    options: Option<RequestOptions>,
    deadline: Instant,
    caps: EgressCaps,
    policy: &EgressPolicy,
    record: &RecordHandle,
    redactor: &Redactor,
) -> Result<Sent, Failure> {
    // Host is ours to set: the guest cannot steer virtual hosting or bypass the checks above.
    let authority = match (plan.original.ip, plan.original.port == plan.original.scheme.default_port()) {
        (Some(IpAddr::V6(v6)), true) => format!("[{v6}]"),
        (Some(IpAddr::V6(v6)), false) => format!("[{v6}]:{}", plan.original.port),
        (_, true) => plan.original.host.clone(),
        (_, false) => format!("{}:{}", plan.original.host, plan.original.port),
    };
    let headers = request.headers_mut();
    headers.insert(
        http::header::HOST,
        HeaderValue::from_str(&authority).map_err(|_| Failure::Error(HttpError::HttpRequestUriInvalid))?,
    );
    let credential_header = plan.credential.as_ref().map(|(name, _)| name.clone());
    if let Some((name, value)) = plan.credential {
        headers.insert(name, value);
    }
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let url = format!("{}://{authority}{path_and_query}", plan.original.scheme.as_str());
    let path = format!("{}{}", plan.path_prefix, path_and_query);
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Failure::Error(HttpError::HttpRequestUriInvalid))?;

    // What a tap is shown; reading the body here is what the live path caps while streaming.
    let tapped = match &policy.network {
        Network::Live => None,
        Network::Record(_) | Network::Replay(_) => {
            let (parts, body) = request.into_parts();
            let too_large = |n| HttpError::HttpRequestBodySize(Some(n as u64));
            let bytes =
                tap::read_body(body, caps.max_request_bytes, deadline, too_large).await.map_err(Failure::Error)?;
            record.update(|r| r.request_bytes = bytes.len());
            let credential = credential_header.as_ref().zip(plan.credential_name.as_deref());
            let seen = TapRequest {
                method: parts.method.to_string(),
                url: redactor.text(&url),
                headers: tap::headers(&parts.headers, credential, redactor),
                body: tap::redacted_body(bytes.clone(), redactor),
            };
            request = http::Request::from_parts(parts, tap::full_body(bytes));
            Some(seen)
        }
    };
    if let (Network::Replay(replayer), Some(seen)) = (&policy.network, &tapped) {
        let answer = replayer.replay(seen).map_err(|why| Failure::Denied(deny(HttpError::HttpRequestDenied, why)))?;
        if answer.body.len() > caps.max_response_bytes {
            return Err(Failure::Error(HttpError::HttpResponseBodySize(Some(answer.body.len() as u64))));
        }
        record.update(|r| r.response_bytes = answer.body.len());
        let response = tap::response(answer).map_err(Failure::Error)?;
        return Ok((response, Box::new(async { Ok(()) })));
    }

    let (response, io) =
        send_checked(request, &plan.connect, plan.explicit_ip, options, deadline, caps, policy, record).await?;
    let response = match plan.scrub {
        None => response,
        Some(scrubber) => {
            // The guest must never read the credential, even if the upstream reflects it.
            let (mut head, body) = response.into_parts();
            scrubber.headers(&mut head.headers);
            http::Response::from_parts(head, ScrubBody::new(body, scrubber).boxed_unsync())
        }
    };
    let (Network::Record(recorder), Some(seen)) = (&policy.network, tapped) else { return Ok((response, io)) };
    // The connection must be driven while the body is read; it ends with the response.
    tokio::spawn(Box::into_pin(io));
    let (head, body) = response.into_parts();
    let too_large = |n| HttpError::HttpResponseBodySize(Some(n as u64));
    let bytes = tap::read_body(body, caps.max_response_bytes, deadline, too_large).await.map_err(Failure::Error)?;
    let answer = TapResponse {
        status: head.status.as_u16(),
        headers: tap::headers(&head.headers, None, redactor),
        body: tap::redacted_body(bytes.clone(), redactor),
    };
    recorder.record(seen, answer);
    Ok((http::Response::from_parts(head, tap::full_body(bytes)), Box::new(async { Ok(()) })))
}

/// Resolves, checks addresses, connects and sends.
#[allow(clippy::too_many_arguments, reason = "one request's target, limits and bookkeeping")]
async fn send_checked(
    request: http::Request<WasiBody>,
    connect: &Target,
    explicit_ip: bool,
    options: Option<RequestOptions>,
    deadline: Instant,
    caps: EgressCaps,
    policy: &EgressPolicy,
    record: &RecordHandle,
) -> Result<Sent, Failure> {
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let addrs = resolve(connect, policy, remaining()).await.map_err(Failure::Error)?;
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for ip in addrs {
        match blocked_range(ip) {
            None => allowed.push(ip),
            Some(_) if explicit_ip && connect.ip == Some(ip) => allowed.push(ip),
            Some(_) if policy.open_ranges.iter().any(|r| r.contains(&addr::canonical(ip))) => allowed.push(ip),
            Some(range) => refused.push(format!("{ip} ({})", range.as_str())),
        }
    }
    if allowed.is_empty() {
        return Err(Failure::Denied(deny(
            HttpError::DestinationIpProhibited,
            format!("{} resolves only to refused addresses: {}", connect.host, refused.join(", ")),
        )));
    }
    let opt = options.unwrap_or_default();
    let bounded = |o: Option<Duration>, default: Duration| o.unwrap_or(default).min(remaining());
    let timeouts = send::Timeouts {
        connect: bounded(opt.connect_timeout, Duration::from_secs(10)),
        first_byte: bounded(opt.first_byte_timeout, Duration::from_secs(30)),
        between_bytes: opt.between_bytes_timeout.map(|d| d.min(remaining())),
    };
    let addrs: Vec<SocketAddr> = allowed.into_iter().map(|ip| SocketAddr::new(ip, connect.port)).collect();
    send::send(request, &addrs, connect, timeouts, caps, record).await.map_err(Failure::Error)
}

async fn resolve(target: &Target, policy: &EgressPolicy, within: Duration) -> Result<Vec<IpAddr>, HttpError> {
    if let Some(ip) = target.ip {
        return Ok(vec![ip]);
    }
    if let Some(pinned) = policy.resolve.get(&target.host) {
        return Ok(pinned.clone());
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    match tokio::time::timeout(within.min(Duration::from_secs(5)), lookup).await {
        Err(_) => Err(HttpError::DnsTimeout),
        Ok(Err(_)) => Err(HttpError::DnsError { rcode: Some("NXDOMAIN or resolver failure".into()), info_code: None }),
        Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn request(uri: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::<bytes::Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::builder().uri(uri).body(body).unwrap()
    }

    fn hooks(
        declared: &[&str],
        granted: &[&str],
        credentials: Vec<CredentialBinding>,
        values: &[(&str, Result<&str, &str>)],
    ) -> EgressHooks {
        let parse = |v: &[&str]| v.iter().map(|p| HostPattern::parse(p).unwrap()).collect();
        EgressHooks {
            policy: Arc::new(EgressPolicy {
                declared: parse(declared),
                granted: parse(granted),
                credentials,
                ..EgressPolicy::default()
            }),
            caps: EgressCaps { max_requests: 2, max_request_bytes: 10, max_response_bytes: 10 },
            deadline: Instant::now() + Duration::from_secs(5),
            log: EgressLog::default(),
            credential_values: Arc::new(
                values.iter().map(|(k, v)| (k.to_string(), v.map(String::from).map_err(String::from))).collect(),
            ),
            redactor: Redactor::default(),
            scrubbed: Arc::default(),
            requests: 0,
            dropped: 0,
            idempotency_key: String::new(),
            tool: String::new(),
        }
    }

    fn plan(h: &mut EgressHooks, uri: &str) -> Result<Plan, String> {
        h.plan(&request(uri), &mut EgressRecord::default()).map_err(|d| d.reason)
    }

    fn cred(source: Option<SecretSource>) -> CredentialBinding {
        CredentialBinding {
            name: "api".into(),
            host: HostMatch::Exact("api.example.com".into()),
            header: http::header::AUTHORIZATION,
            prefix: "Bearer ".into(),
            source,
        }
    }

    #[test]
    fn both_keys_are_required() {
        let mut h = hooks(&["api.example.com"], &["*.example.com", "other.example.org"], vec![], &[]);
        assert!(plan(&mut h, "https://api.example.com/x").is_ok());
        let mut h = hooks(&["api.example.com"], &["*.example.com", "other.example.org"], vec![], &[]);
        let e = plan(&mut h, "https://other.example.org/").err().unwrap();
        assert!(e.contains("not declared in the plugin's manifest"), "{e}");
        let mut h = hooks(&["*"], &["api.example.com"], vec![], &[]);
        assert!(plan(&mut h, "https://www.example.com/").err().unwrap().contains("not granted"));
    }

    #[test]
    fn request_count_is_capped() {
        let mut h = hooks(&["*"], &["*"], vec![], &[]);
        assert!(plan(&mut h, "https://a.example.com/").is_ok());
        assert!(plan(&mut h, "https://a.example.com/").is_ok());
        assert!(plan(&mut h, "https://a.example.com/").err().unwrap().contains("limit of 2"));
    }

    #[test]
    fn credentials_bind_to_their_host_and_scheme() {
        let src = Some(SecretSource::Env("X".into()));
        let mut h = hooks(
            &["http://*:*", "https://*:*"],
            &["http://*:*", "https://*:*"],
            vec![cred(src.clone())],
            &[("api", Ok("tok"))],
        );
        let p = plan(&mut h, "https://api.example.com/").unwrap();
        let (name, value) = p.credential.unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap(), value.is_sensitive()),
            ("authorization", "Bearer tok", true)
        );
        assert!(plan(&mut h, "https://evil.example.com/").unwrap().credential.is_none());

        let mut h = hooks(&["http://*:*"], &["http://*:*"], vec![cred(src.clone())], &[("api", Ok("tok"))]);
        assert!(plan(&mut h, "http://api.example.com/").err().unwrap().contains("plaintext"));

        let mut h = hooks(
            &["https://*:*"],
            &["https://*:*"],
            vec![cred(src)],
            &[("api", Err("environment variable X is not set"))],
        );
        let e = plan(&mut h, "https://api.example.com/").err().unwrap();
        assert!(e.contains("unavailable") && e.contains("X is not set"), "{e}");

        // Declared but not mapped by the operator: the request goes out without it.
        let mut h = hooks(&["https://*:*"], &["https://*:*"], vec![cred(None)], &[]);
        assert!(plan(&mut h, "https://api.example.com/").unwrap().credential.is_none());
    }

    #[test]
    fn paths_that_could_leave_an_upstream_prefix() {
        for bad in [
            "/../admin",
            "/./x",
            "/.%2e/admin",
            "/%2e./admin",
            "/%2E%2E/admin",
            "/..%2f",
            "/%2e%2e%2f",
            "/a%2fb",
            "/a%5C..",
            "/a\\..\\b",
            "/%252e%252e/admin",
            "/%2e",
        ] {
            assert!(could_leave_prefix(bad), "{bad}");
        }
        for good in ["/", "/v1/items", "/a.b/c..d/...", "/%41bc", "/files/report%20v2.pdf", "/.well-known/x"] {
            assert!(!could_leave_prefix(good), "{good}");
        }
    }

    #[test]
    fn only_http_and_https() {
        let mut h = hooks(&["*"], &["*"], vec![], &[]);
        assert!(plan(&mut h, "ftp://a.example.com/").err().unwrap().contains("scheme"));
    }
}
