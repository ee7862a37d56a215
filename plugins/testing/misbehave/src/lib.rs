//! `misbehave`: a deliberately misbehaving Tollgate test plugin.
//!
//! The host's test suite calls its tools to prove, one by one, that every limit and gate holds:
//! CPU (epoch or fuel), memory, stack, output size and validity, traps, outbound HTTP (allowlist,
//! redirects, injected credentials, forbidden headers, request and byte caps), the empty WASI
//! environment (no variables, arguments, files or sockets), captured stdio, wall-clock deadlines
//! over host waits, the key-value store's limits, secret redaction and log caps.
//!
//! Its manifest asks for every host and port (`http://*:*`, `https://*:*`): the operator's grant
//! is what narrows it. It declares one bearer credential, `api`, for `api.example.test`.
//!
//! It uses `wit-bindgen` directly rather than the Tollgate SDK so that the host's tests do not
//! depend on the SDK; `wasi:http`, `wasi:clocks` and `wasi:sockets` come from the `wasip2` crate.
//! See `plugins/testing/README.md` for what each tool proves.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin",
});

mod http;
mod manifest;

use std::hint::black_box;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use exports::tollgate::plugin::requests::{Guest as RequestsGuest, ToolRequests};
use exports::tollgate::plugin::tool::Guest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tollgate::plugin::kv::{self, KvError};
use tollgate::plugin::log::{self, Level};
use tollgate::plugin::secrets::{self, SecretError};
use tollgate::plugin::types::{CallContext, Manifest, ToolError};

use crate::http::{Body, HeaderRejection, Url};

type ToolResult = Result<String, ToolError>;

fn parse<T: DeserializeOwned>(input: &str) -> Result<T, ToolError> {
    serde_json::from_str(input).map_err(|e| ToolError::InvalidInput(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// CPU, memory, stack, output

/// Never returns. `black_box` keeps the optimiser from proving the loop side-effect free.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// `iterations` rounds of a cheap mix the optimiser cannot fold.
fn burn(iterations: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut i: u64 = 0;
    while i < iterations {
        x = black_box((x.rotate_left(5) ^ i).wrapping_mul(0x0000_0100_0000_01B3));
        i += 1;
    }
    // 53 bits, so every JSON reader gets the exact value.
    x >> 11
}

#[derive(Deserialize)]
struct AllocInput {
    mib: u64,
    #[serde(default)]
    fallible: bool,
}

fn alloc(input: AllocInput) -> ToolResult {
    const MIB: usize = 1 << 20;
    const PAGE: usize = 4096;
    let len = usize::try_from(input.mib)
        .ok()
        .and_then(|m| m.checked_mul(MIB))
        .filter(|&len| isize::try_from(len).is_ok())
        .ok_or_else(|| ToolError::InvalidInput(format!("{} MiB does not fit in memory", input.mib)))?;
    let mut buffer: Vec<u8> = Vec::new();
    if input.fallible {
        buffer
            .try_reserve_exact(len)
            .map_err(|e| ToolError::Internal(format!("could not allocate {} MiB: {e}", input.mib)))?;
    } else {
        // Aborts (traps) if the allocator cannot grow memory.
        buffer.reserve_exact(len);
    }
    // Touch one byte per 4 KiB page so the memory is really used.
    let spare = buffer.spare_capacity_mut();
    for (n, i) in (0..len).step_by(PAGE).enumerate() {
        spare[i].write(n as u8);
    }
    black_box(&mut buffer);
    Ok(json!({ "mib": input.mib }).to_string())
}

/// Non-tail recursion: the result of the inner call passes through `black_box` before it is
/// used, so the optimiser can neither make this a loop nor fold it.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let below = recurse(black_box(depth - 1));
    black_box(below) + 1
}

fn huge_output(bytes: u64) -> ToolResult {
    let len = usize::try_from(bytes)
        .ok()
        .filter(|&len| len >= 2)
        .ok_or_else(|| ToolError::InvalidInput(format!("cannot make {bytes} bytes")))?;
    let mut out = String::new();
    out.try_reserve_exact(len).map_err(|e| ToolError::Internal(format!("could not allocate {len} bytes: {e}")))?;
    out.push('"');
    out.extend(std::iter::repeat_n('x', len - 2));
    out.push('"');
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Deserialize)]
struct FetchInput {
    url: String,
    method: Option<String>,
    #[serde(default)]
    headers: Map<String, Value>,
    body: Option<String>,
    #[serde(default)]
    follow_redirects: bool,
    max_redirects: Option<u32>,
    /// Also return the body hex-encoded: what a plugin exfiltrating a reflected credential past
    /// output redaction would send on.
    #[serde(default)]
    hex_body: bool,
}

fn header_list(headers: Map<String, Value>) -> Result<Vec<(String, String)>, ToolError> {
    headers
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(value) => Ok((name, value)),
            other => Err(ToolError::InvalidInput(format!("header {name:?} must be a string, not {other}"))),
        })
        .collect()
}

fn rejections_json(rejected: &[HeaderRejection]) -> Value {
    rejected.iter().map(|r| json!({ "name": r.name, "error": r.error })).collect()
}

fn fetch(input: FetchInput) -> ToolResult {
    const DEFAULT_MAX_REDIRECTS: u32 = 5;
    let headers = header_list(input.headers)?;
    let mut url = Url::parse(&input.url).map_err(ToolError::InvalidInput)?;
    let mut method = http::parse_method(input.method.as_deref().unwrap_or("GET"));
    let mut body = input.body.map(String::into_bytes);
    let max_redirects = input.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS);
    let mut hops = Vec::new();
    let mut rejected = Vec::new();
    loop {
        let response = http::send(&method, &url, &headers, body.as_deref().map(Body::Bytes), &mut rejected)?;
        hops.push(json!({ "url": url.to_string(), "status": response.status }));
        let location = response.header("location");
        let redirects_so_far = hops.len() - 1;
        if input.follow_redirects
            && matches!(response.status, 301 | 302 | 303 | 307 | 308)
            && redirects_so_far < max_redirects as usize
            && let Some(location) = &location
        {
            url = url.join(location).map_err(|message| {
                ToolError::Upstream(tollgate::plugin::types::UpstreamError {
                    status: Some(response.status),
                    message: format!("unusable Location {location:?}: {message}"),
                })
            })?;
            let post = matches!(method, wasip2::http::types::Method::Post);
            if response.status == 303 || (post && matches!(response.status, 301 | 302)) {
                method = wasip2::http::types::Method::Get;
                body = None;
            }
            continue;
        }
        let mut headers_out = Map::new();
        for (name, _) in &response.headers {
            if !headers_out.contains_key(name) {
                let value = response.header(name).unwrap_or_default();
                headers_out.insert(name.clone(), Value::String(value));
            }
        }
        let mut out = json!({
            "status": response.status,
            "headers": headers_out,
            "body": String::from_utf8_lossy(&response.body),
            "hops": hops,
        });
        if input.hex_body {
            let hex: String = response.body.iter().map(|b| format!("{b:02x}")).collect();
            out["body_hex"] = Value::String(hex);
        }
        if let Some(location) = location {
            out["location"] = Value::String(location);
        }
        if !rejected.is_empty() {
            out["header_errors"] = rejections_json(&rejected);
        }
        return Ok(out.to_string());
    }
}

#[derive(Deserialize)]
struct FetchManyInput {
    url: String,
    count: u32,
}

fn fetch_many(input: FetchManyInput) -> ToolResult {
    let url = Url::parse(&input.url).map_err(ToolError::InvalidInput)?;
    let mut statuses = Vec::new();
    let mut error = None;
    for _ in 0..input.count {
        match http::send(&wasip2::http::types::Method::Get, &url, &[], None, &mut Vec::new()) {
            Ok(response) => statuses.push(response.status),
            Err(failure) => {
                error = Some(failure.text());
                break;
            }
        }
    }
    let mut out = json!({ "statuses": statuses });
    if let Some(error) = error {
        out["error"] = Value::String(error);
    }
    Ok(out.to_string())
}

#[derive(Deserialize)]
struct PostBigInput {
    url: String,
    bytes: u64,
    content_length: Option<u64>,
}

fn post_big(input: PostBigInput) -> ToolResult {
    let url = Url::parse(&input.url).map_err(ToolError::InvalidInput)?;
    let mut headers = vec![("content-type".to_string(), "application/octet-stream".to_string())];
    if let Some(declared) = input.content_length {
        headers.push(("content-length".to_string(), declared.to_string()));
    }
    let mut rejected = Vec::new();
    let response = http::send(
        &wasip2::http::types::Method::Post,
        &url,
        &headers,
        Some(Body::Repeat { byte: b'a', len: input.bytes }),
        &mut rejected,
    )?;
    let mut out = json!({ "status": response.status, "sent": input.bytes });
    if !rejected.is_empty() {
        // Not in the output schema on purpose: a rejected header is a test failure to notice.
        out["header_errors"] = rejections_json(&rejected);
    }
    Ok(out.to_string())
}

// ---------------------------------------------------------------------------------------------
// The WASI environment

fn read_env() -> ToolResult {
    let vars: Map<String, Value> = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), Value::String(v.to_string_lossy().into_owned())))
        .collect();
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    Ok(json!({ "vars": vars, "args": args }).to_string())
}

#[derive(Deserialize)]
struct ReadFileInput {
    path: String,
}

fn list_dir(path: &str) -> Value {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                match entry {
                    Ok(entry) => names.push(entry.file_name().to_string_lossy().into_owned()),
                    Err(e) => names.push(format!("<error: {e}>")),
                }
            }
            json!({ "ok": true, "entries": names })
        }
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    }
}

fn read_file(input: ReadFileInput) -> ToolResult {
    let mut out = match std::fs::read_to_string(&input.path) {
        Ok(content) => json!({ "ok": true, "content": content }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    };
    out["listings"] = json!({ "/": list_dir("/"), ".": list_dir(".") });
    Ok(out.to_string())
}

/// Writes exactly `bytes` bytes to `out`: lines of 79 'x' and a newline. Stops at the first
/// error and ignores it: the host may close or cap the stream.
fn write_lines(out: &mut dyn Write, bytes: u64) {
    const LINE: usize = 80;
    let mut block = [b'x'; 64 * LINE];
    for line in block.chunks_mut(LINE) {
        line[LINE - 1] = b'\n';
    }
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(block.len(), |l| l.min(block.len()));
        if out.write_all(&block[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = out.flush();
}

#[derive(Deserialize)]
struct PrintInput {
    bytes: u64,
}

fn print(input: PrintInput) -> ToolResult {
    write_lines(&mut std::io::stdout().lock(), input.bytes);
    write_lines(&mut std::io::stderr().lock(), input.bytes);
    Ok("{}".to_string())
}

#[derive(Deserialize)]
struct SleepInput {
    ms: u64,
}

fn sleep(input: SleepInput) -> ToolResult {
    let nanos = input.ms.saturating_mul(1_000_000);
    wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
    Ok("{}".to_string())
}

#[derive(Deserialize)]
struct RawTcpInput {
    addr: String,
}

/// A raw `wasi:sockets` connect, step by step.
fn wasi_connect(addr: std::net::SocketAddr) -> Result<(), String> {
    use wasip2::sockets::instance_network::instance_network;
    use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress};
    use wasip2::sockets::tcp_create_socket::create_tcp_socket;

    let (family, remote) = match addr {
        std::net::SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            (
                IpAddressFamily::Ipv4,
                IpSocketAddress::Ipv4(Ipv4SocketAddress { port: a.port(), address: (a0, a1, a2, a3) }),
            )
        }
        std::net::SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            (
                IpAddressFamily::Ipv6,
                IpSocketAddress::Ipv6(Ipv6SocketAddress {
                    port: a.port(),
                    flow_info: a.flowinfo(),
                    address: (s0, s1, s2, s3, s4, s5, s6, s7),
                    scope_id: a.scope_id(),
                }),
            )
        }
    };
    let network = instance_network();
    let socket = create_tcp_socket(family).map_err(|e| format!("create-tcp-socket: {e:?}"))?;
    socket.start_connect(&network, remote).map_err(|e| format!("start-connect: {e:?}"))?;
    loop {
        let pollable = socket.subscribe();
        pollable.block();
        drop(pollable);
        match socket.finish_connect() {
            Ok((input, output)) => {
                drop(input);
                drop(output);
                return Ok(());
            }
            Err(ErrorCode::WouldBlock) => continue,
            Err(e) => return Err(format!("finish-connect: {e:?}")),
        }
    }
}

fn raw_tcp(input: RawTcpInput) -> ToolResult {
    let addr: std::net::SocketAddr =
        input.addr.parse().map_err(|e| ToolError::InvalidInput(format!("{:?}: {e}", input.addr)))?;
    let mut out = json!({});
    match wasi_connect(addr) {
        Ok(()) => out["connected"] = Value::Bool(true),
        Err(e) => {
            out["connected"] = Value::Bool(false);
            out["error"] = Value::String(e);
        }
    }
    match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)) {
        Ok(stream) => {
            drop(stream);
            out["std_connected"] = Value::Bool(true);
        }
        Err(e) => {
            out["std_connected"] = Value::Bool(false);
            out["std_error"] = Value::String(e.to_string());
        }
    }
    Ok(out.to_string())
}

// ---------------------------------------------------------------------------------------------
// Tollgate capabilities: kv, secrets, log

fn kv_error(e: KvError) -> ToolError {
    match e {
        KvError::TooLarge(_) => ToolError::InvalidInput(format!("{e:?}")),
        KvError::Unavailable(_) => ToolError::Retryable(format!("{e:?}")),
    }
}

#[derive(Deserialize)]
struct KvRoundtripInput {
    key: String,
    value: String,
}

fn kv_roundtrip(input: KvRoundtripInput) -> ToolResult {
    kv::set(&input.key, input.value.as_bytes()).map_err(kv_error)?;
    let value = kv::get(&input.key).map_err(kv_error)?;
    let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok(json!({ "value": value }).to_string())
}

#[derive(Deserialize)]
struct KvFillInput {
    count: u32,
    bytes: u32,
    #[serde(default = "default_fill_prefix")]
    prefix: String,
}

fn default_fill_prefix() -> String {
    "fill/".to_string()
}

fn kv_fill(input: KvFillInput) -> ToolResult {
    let value = vec![b'v'; input.bytes as usize];
    let mut stored: u32 = 0;
    let mut error = None;
    for i in 0..input.count {
        match kv::set(&format!("{}{i:010}", input.prefix), &value) {
            Ok(()) => stored += 1,
            Err(e) => {
                error = Some(format!("{e:?}"));
                break;
            }
        }
    }
    let mut out = json!({ "stored": stored });
    if let Some(error) = error {
        out["error"] = Value::String(error);
    }
    Ok(out.to_string())
}

#[derive(Deserialize)]
struct SecretInput {
    name: String,
    via: Option<String>,
}

fn get_secret(name: &str) -> Result<String, ToolError> {
    secrets::get(name).map_err(|e| match e {
        SecretError::NotGranted(_) => ToolError::Denied(format!("{e:?}")),
        SecretError::Unavailable(_) => ToolError::Retryable(format!("{e:?}")),
    })
}

/// The last secret value `secret` read, kept in guest memory for `recall_secret`.
static LAST_SECRET: Mutex<String> = Mutex::new(String::new());

fn secret(input: SecretInput) -> ToolResult {
    let value = get_secret(&input.name)?;
    *LAST_SECRET.lock().unwrap_or_else(|e| e.into_inner()) = value.clone();
    Ok(json!({ "length": value.len() }).to_string())
}

fn leak_secret(input: SecretInput) -> ToolResult {
    let value = get_secret(&input.name)?;
    let via = input.via.as_deref().unwrap_or("output");
    let all = via == "all";
    if all || via == "log" {
        log::log(
            Level::Warn,
            &format!("leaking secret {}: {value}", input.name),
            &json!({ "secret": value }).to_string(),
        );
    }
    if all || via == "stdout" {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "secret {}={value}", input.name);
        let _ = stdout.flush();
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "secret {}={value}", input.name);
    }
    match via {
        "error" => Err(ToolError::Internal(format!("failed while holding secret {}: {value}", input.name))),
        "output" | "all" => Ok(json!({ "value": value, "leaked_via": via }).to_string()),
        "log" | "stdout" => Ok(json!({ "leaked_via": via }).to_string()),
        other => Err(ToolError::InvalidInput(format!("unknown via {other:?}"))),
    }
}

#[derive(Deserialize)]
struct LogSpamInput {
    count: u32,
    bytes: u32,
    level: Option<String>,
}

fn log_spam(input: LogSpamInput) -> ToolResult {
    let level = match input.level.as_deref().unwrap_or("info") {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" => Level::Warn,
        "error" => Level::Error,
        other => return Err(ToolError::InvalidInput(format!("unknown level {other:?}"))),
    };
    let bytes = input.bytes as usize;
    for i in 0..input.count {
        let mut message = format!("line {i} ");
        message.truncate(bytes);
        message.extend(std::iter::repeat_n('x', bytes - message.len()));
        log::log(level, &message, &json!({ "i": i }).to_string());
    }
    Ok(json!({ "emitted": input.count }).to_string())
}

// ---------------------------------------------------------------------------------------------

/// Guest state that lives as long as the instance: a fresh instance starts at 0, a reused one
/// (the host's warm-instance mode) remembers earlier calls.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn dispatch(tool: &str, input: String, context: &CallContext) -> ToolResult {
    match tool {
        "spin" => spin(),
        "burn" => {
            #[derive(Deserialize)]
            struct Burn {
                iterations: u64,
            }
            let Burn { iterations } = parse(&input)?;
            Ok(json!({ "result": burn(iterations) }).to_string())
        }
        "alloc" => alloc(parse(&input)?),
        "recurse" => {
            #[derive(Deserialize)]
            struct Recurse {
                depth: u64,
            }
            let Recurse { depth } = parse(&input)?;
            Ok(json!({ "depth": recurse(depth) }).to_string())
        }
        "huge_output" => {
            #[derive(Deserialize)]
            struct HugeOutput {
                bytes: u64,
            }
            let HugeOutput { bytes } = parse(&input)?;
            huge_output(bytes)
        }
        "bad_output" => Ok("this is {not JSON".to_string()),
        "wrong_output" => Ok(r#"{"unexpected":true}"#.to_string()),
        "panic" => panic!("misbehave: deliberate panic"),
        "fetch" | "fetch_scoped" => fetch(parse(&input)?),
        "fetch_many" => fetch_many(parse(&input)?),
        "post_big" => post_big(parse(&input)?),
        "read_env" => read_env(),
        "read_file" => read_file(parse(&input)?),
        "print" => print(parse(&input)?),
        "sleep" => sleep(parse(&input)?),
        "kv_roundtrip" => kv_roundtrip(parse(&input)?),
        "kv_fill" => kv_fill(parse(&input)?),
        "secret" => secret(parse(&input)?),
        "leak_secret" => leak_secret(parse(&input)?),
        "log_spam" => log_spam(parse(&input)?),
        "raw_tcp" => raw_tcp(parse(&input)?),
        "context" => Ok(json!({
            "run_id": context.run_id,
            "call_id": context.call_id,
            "idempotency_key": context.idempotency_key,
        })
        .to_string()),
        "echo" => Ok(input),
        "recall_secret" => Ok(json!({ "value": *LAST_SECRET.lock().unwrap_or_else(|e| e.into_inner()) }).to_string()),
        "counter" => Ok(json!({ "count": COUNTER.fetch_add(1, Ordering::Relaxed) + 1 }).to_string()),
        other => Err(ToolError::NotFound(format!("unknown tool: {other}"))),
    }
}

struct Misbehave;

impl Guest for Misbehave {
    fn manifest() -> Manifest {
        manifest::manifest()
    }

    fn call(tool: String, input: String, context: CallContext) -> ToolResult {
        dispatch(&tool, input, &context)
    }
}

impl RequestsGuest for Misbehave {
    fn declared() -> Vec<ToolRequests> {
        vec![ToolRequests {
            tool: "fetch_scoped".to_string(),
            scopes: manifest::FETCH_SCOPED_REQUESTS.iter().map(|s| s.to_string()).collect(),
        }]
    }
}

export!(Misbehave);

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> CallContext {
        CallContext { run_id: "r".into(), call_id: "c".into(), idempotency_key: "k".into() }
    }

    fn call(tool: &str, input: &str) -> ToolResult {
        dispatch(tool, input.to_string(), &context())
    }

    fn value(result: ToolResult) -> Value {
        serde_json::from_str(&result.unwrap()).unwrap()
    }

    #[test]
    fn pure_tools() {
        assert_eq!(value(call("burn", r#"{"iterations": 0}"#))["result"], json!(0x9E37_79B9_7F4A_7C15u64 >> 11));
        assert!(value(call("burn", r#"{"iterations": 1000}"#))["result"].is_u64());
        assert_eq!(value(call("alloc", r#"{"mib": 3}"#)), json!({ "mib": 3 }));
        assert_eq!(value(call("alloc", r#"{"mib": 1, "fallible": true}"#)), json!({ "mib": 1 }));
        assert_eq!(value(call("recurse", r#"{"depth": 1000}"#)), json!({ "depth": 1000 }));
        let out = call("huge_output", r#"{"bytes": 10}"#).unwrap();
        assert_eq!(out, r#""xxxxxxxx""#);
        assert_eq!(call("huge_output", r#"{"bytes": 2}"#).unwrap(), r#""""#);
        assert!(serde_json::from_str::<Value>(&call("bad_output", "{}").unwrap()).is_err());
        assert_eq!(call("echo", r#"{"a":  [1]}"#).unwrap(), r#"{"a":  [1]}"#);
        assert_eq!(value(call("context", "{}")), json!({ "run_id": "r", "call_id": "c", "idempotency_key": "k" }));
    }

    #[test]
    fn errors() {
        assert!(matches!(call("nope", "{}"), Err(ToolError::NotFound(_))));
        assert!(matches!(call("burn", r#"{"iterations": -1}"#), Err(ToolError::InvalidInput(_))));
        assert!(matches!(call("huge_output", r#"{"bytes": 1}"#), Err(ToolError::InvalidInput(_))));
        assert!(matches!(call("fetch", r#"{"url": "not a url"}"#), Err(ToolError::InvalidInput(_))));
        assert!(matches!(
            call("fetch", r#"{"url": "http://a.test/", "headers": {"x": 1}}"#),
            Err(ToolError::InvalidInput(_))
        ));
    }

    #[test]
    fn write_lines_writes_exactly() {
        for n in [0u64, 1, 79, 80, 81, 5119, 5120, 5121, 20_000] {
            let mut out = Vec::new();
            write_lines(&mut out, n);
            assert_eq!(out.len() as u64, n);
            assert!(out.chunks(80).all(|l| l.len() < 80 || l[79] == b'\n'));
        }
    }

    #[test]
    fn every_tool_is_dispatched() {
        for spec in manifest::specs() {
            // `spin` never returns and `panic` panics; every other tool either parses its input
            // first (and so stops at "not json") or touches no import.
            if matches!(spec.name, "spin" | "panic") {
                continue;
            }
            let result = call(spec.name, "not json");
            if let Err(ToolError::NotFound(message)) = &result {
                panic!("{} is not dispatched: {message}", spec.name);
            }
        }
    }

    #[test]
    fn manifest_is_well_formed() {
        let m = manifest::manifest();
        assert_eq!(m.name, "misbehave");
        assert_eq!(m.hosts, ["http://*:*", "https://*:*"]);
        assert_eq!(m.credentials.len(), 1);
        let mut names = std::collections::BTreeSet::new();
        for tool in &m.tools {
            assert!(names.insert(tool.name.clone()), "duplicate {}", tool.name);
            assert!(tool.name.len() <= 64);
            assert!(tool.name.starts_with(|c: char| c.is_ascii_lowercase()));
            assert!(tool.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            for schema in std::iter::once(&tool.input_schema).chain(&tool.output_schema) {
                let schema: Value =
                    serde_json::from_str(schema).unwrap_or_else(|e| panic!("{}: {e}: {schema}", tool.name));
                jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{}: {e}", tool.name));
            }
        }
    }

    /// Example inputs and outputs validate against the declared schemas.
    #[test]
    fn schemas_accept_examples() {
        let m = manifest::manifest();
        let tool = |name: &str| m.tools.iter().find(|t| t.name == name).unwrap();
        let check = |schema: &str, doc: Value, ok: bool| {
            let schema: Value = serde_json::from_str(schema).unwrap();
            let validator = jsonschema::validator_for(&schema).unwrap();
            assert_eq!(validator.is_valid(&doc), ok, "{doc} against {schema}");
        };
        let input = |name: &str, doc: Value, ok: bool| check(&tool(name).input_schema, doc, ok);
        let output = |name: &str, doc: Value| {
            check(tool(name).output_schema.as_deref().unwrap(), doc, true);
        };
        input("spin", json!({}), true);
        input("spin", json!({ "x": 1 }), false);
        input("burn", json!({ "iterations": 5 }), true);
        input("burn", json!({ "iterations": 1.5 }), false);
        input("alloc", json!({ "mib": 64, "fallible": true }), true);
        input("alloc", json!({ "mib": 4096 }), false);
        input("huge_output", json!({ "bytes": 1 }), false);
        input(
            "fetch",
            json!({
                "url": "http://a.test/",
                "method": "POST",
                "headers": { "host": "evil.test", "authorization": "Bearer mine" },
                "body": "x",
                "follow_redirects": true,
                "max_redirects": 3,
            }),
            true,
        );
        input("fetch", json!({ "url": "http://a.test/", "headers": { "a": 1 } }), false);
        input("fetch_many", json!({ "url": "http://a.test/", "count": 3 }), true);
        input("post_big", json!({ "url": "http://a.test/", "bytes": 10, "content_length": 1 }), true);
        input("read_file", json!({ "path": "/etc/passwd" }), true);
        input("print", json!({ "bytes": 10 }), true);
        input("sleep", json!({ "ms": 10 }), true);
        input("kv_roundtrip", json!({ "key": "k", "value": "v" }), true);
        input("kv_fill", json!({ "count": 1, "bytes": 1, "prefix": "p/" }), true);
        input("secret", json!({ "name": "api" }), true);
        input("leak_secret", json!({ "name": "api", "via": "log" }), true);
        input("leak_secret", json!({ "name": "api", "via": "carrier pigeon" }), false);
        input("log_spam", json!({ "count": 1, "bytes": 1, "level": "warn" }), true);
        input("raw_tcp", json!({ "addr": "10.0.0.1:80" }), true);
        input("echo", json!({ "anything": [1] }), true);
        input("echo", json!([1]), false);

        output("burn", value(call("burn", r#"{"iterations": 3}"#)));
        output("alloc", json!({ "mib": 1 }));
        output("recurse", json!({ "depth": 1 }));
        output("huge_output", serde_json::from_str(&huge_output(100).unwrap()).unwrap());
        output(
            "fetch",
            json!({
                "status": 200,
                "headers": { "content-type": "text/plain" },
                "body": "hi",
                "location": "/x",
                "hops": [{ "url": "http://a.test/", "status": 200 }],
                "header_errors": [{ "name": "host", "error": "HeaderError::Forbidden" }],
            }),
        );
        output("fetch_many", json!({ "statuses": [200], "error": "ErrorCode::HttpRequestDenied" }));
        output("post_big", json!({ "status": 200, "sent": 10 }));
        output("read_env", value(read_env()));
        output("read_file", value(read_file(ReadFileInput { path: "/nonexistent/x".into() })));
        output("print", json!({}));
        output("sleep", json!({}));
        output("kv_roundtrip", json!({ "value": "v" }));
        output("kv_roundtrip", json!({ "value": null }));
        output("kv_fill", json!({ "stored": 3, "error": "KvError::TooLarge(\"full\")" }));
        output("secret", json!({ "length": 3 }));
        output("leak_secret", json!({ "value": "s3cret", "leaked_via": "output" }));
        output("leak_secret", json!({ "leaked_via": "log" }));
        output("log_spam", json!({ "emitted": 3 }));
        output("raw_tcp", json!({ "connected": false, "error": "e", "std_connected": false, "std_error": "e" }));
        output("context", value(call("context", "{}")));
        output("echo", json!({ "a": 1 }));
        // wrong_output's output must NOT match its own schema.
        let wrong: Value = serde_json::from_str(&call("wrong_output", "{}").unwrap()).unwrap();
        check(tool("wrong_output").output_schema.as_deref().unwrap(), wrong, false);
    }
}
