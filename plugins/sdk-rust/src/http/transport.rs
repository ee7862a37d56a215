//! The wasi:http side of the client: turns a prepared request into `outgoing-handler.handle`,
//! waits on pollables against one deadline, reads the body in chunks under a cap, and maps
//! `error-code` to [`HttpError`].
//!
//! Everything here is reached only from `Request::send`, so only plugins that send requests
//! import `wasi:http` (and the `wasi:io`/`wasi:clocks` pieces it needs).

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::StreamError;

use super::url::Target;
use super::{HttpError, Method, Response};

/// Bytes asked for per read; the host may return fewer.
const READ_CHUNK: u64 = 64 * 1024;
/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

/// A request after the builder's checks, ready for the wire.
pub(super) struct Outgoing {
    pub method: Method,
    pub target: Target,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

pub(super) fn send(request: Outgoing) -> Result<Response, HttpError> {
    let deadline = Deadline::start(request.timeout);
    let wire = build(&request)?;
    let body = wire.body().map_err(|()| HttpError::Other("the request body was already taken".to_owned()))?;

    // The host may not support these; the deadline below applies either way.
    let options = RequestOptions::new();
    let budget = Some(deadline.total_ns);
    let _ = options.set_connect_timeout(budget);
    let _ = options.set_first_byte_timeout(budget);
    let _ = options.set_between_bytes_timeout(budget);

    // Send first, then stream the body: the request is in flight while the body is written, so
    // a body larger than the host's buffer cannot deadlock.
    let future = outgoing_handler::handle(wire, Some(options)).map_err(classify)?;
    let written = write_body(body, &request.body);
    // A refused request usually shows up as a failed body write; the response future says why,
    // so it takes precedence.
    let response = wait_for_response(&future, &deadline)?;
    written?;
    read_response(&response, request.max_response_bytes, &deadline)
}

fn build(request: &Outgoing) -> Result<OutgoingRequest, HttpError> {
    let entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(name, value)| (name.clone(), value.clone().into_bytes())).collect();
    let fields = Fields::from_list(&entries).map_err(|error| {
        let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
        let why = match error {
            HeaderError::InvalidSyntax => "a header name or value is invalid",
            HeaderError::Forbidden => "a header is forbidden by the host",
            HeaderError::Immutable => "the headers are immutable",
        };
        HttpError::InvalidRequest(format!("{why} (headers: {})", names.join(", ")))
    })?;
    let wire = OutgoingRequest::new(fields);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Patch => WasiMethod::Patch,
        Method::Delete => WasiMethod::Delete,
        Method::Options => WasiMethod::Options,
    };
    let scheme = match request.target.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let invalid = |what: &str| HttpError::InvalidRequest(format!("the host rejected the {what}"));
    wire.set_method(&method).map_err(|()| invalid("method"))?;
    wire.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    wire.set_authority(Some(&request.target.authority)).map_err(|()| invalid("authority"))?;
    wire.set_path_with_query(Some(&request.target.path_with_query)).map_err(|()| invalid("path"))?;
    Ok(wire)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        // The stream is a child of the body: it must be dropped before `finish`.
        let stream =
            body.write().map_err(|()| HttpError::Other("the request body stream was already taken".to_owned()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream.blocking_write_and_flush(chunk).map_err(|e| stream_error("writing the request body", e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(classify)
}

fn wait_for_response(future: &FutureIncomingResponse, deadline: &Deadline) -> Result<IncomingResponse, HttpError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(classify(code)),
            Some(Err(())) => {
                return Err(HttpError::Other("the response was already taken".to_owned()));
            }
            None => deadline.wait(&future.subscribe(), "waiting for the response")?,
        }
    }
}

fn read_response(response: &IncomingResponse, max_bytes: usize, deadline: &Deadline) -> Result<Response, HttpError> {
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let declared = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.trim().parse::<u64>().ok());
    if let Some(length) = declared
        && length > max_bytes as u64
    {
        return Err(too_large(max_bytes, &format!("declared {length} bytes")));
    }
    let incoming =
        response.consume().map_err(|()| HttpError::Other("the response body was already taken".to_owned()))?;
    let body = read_body(&incoming, max_bytes, deadline)?;
    // Dropping the trailers future is fine: nothing here uses trailers.
    drop(IncomingBody::finish(incoming));
    Ok(Response::new(status, headers, body))
}

fn read_body(incoming: &IncomingBody, max_bytes: usize, deadline: &Deadline) -> Result<Vec<u8>, HttpError> {
    let stream =
        incoming.stream().map_err(|()| HttpError::Other("the response body stream was already taken".to_owned()))?;
    let mut body = Vec::new();
    loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => {
                deadline.wait(&stream.subscribe(), "reading the response body")?;
            }
            Ok(chunk) => {
                if body.len() + chunk.len() > max_bytes {
                    return Err(too_large(max_bytes, "the body kept coming"));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(error) => return Err(stream_error("reading the response body", error)),
        }
    }
}

fn too_large(max_bytes: usize, detail: &str) -> HttpError {
    HttpError::TooLarge(format!(
        "response body exceeds the {max_bytes}-byte cap ({detail}); raise it with Request::max_response_bytes"
    ))
}

fn stream_error(doing: &str, error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => HttpError::Other(format!("{doing}: the stream closed early")),
        StreamError::LastOperationFailed(error) => match http_error_code(&error) {
            Some(code) => classify(code),
            None => HttpError::Other(format!("{doing}: {}", error.to_debug_string())),
        },
    }
}

/// One deadline for the whole exchange, checked whenever the client blocks.
struct Deadline {
    at: monotonic_clock::Instant,
    total_ns: u64,
}

impl Deadline {
    fn start(timeout: Duration) -> Self {
        let total_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Self { at: monotonic_clock::now().saturating_add(total_ns), total_ns }
    }

    /// Blocks until `ready` fires or the deadline passes.
    fn wait(&self, ready: &Pollable, doing: &str) -> Result<(), HttpError> {
        let timer = monotonic_clock::subscribe_instant(self.at);
        if poll(&[ready, &timer]).contains(&0) {
            Ok(())
        } else {
            Err(HttpError::Timeout(format!("{doing} took longer than {:?}", Duration::from_nanos(self.total_ns))))
        }
    }
}

/// Maps a wasi:http `error-code` to the client's error kinds.
///
/// The Tollgate host reports a refused request as `HTTP-request-denied` (or blocks the address
/// with `destination-IP-prohibited`); it may instead say why in `internal-error("denied: …")`,
/// so an internal error whose message says it was denied counts as a denial too.
pub(super) fn classify(code: ErrorCode) -> HttpError {
    let name = format!("{code:?}");
    let name = name.strip_prefix("ErrorCode::").unwrap_or(&name).to_owned();
    match code {
        ErrorCode::HttpRequestDenied => {
            HttpError::Denied("the host does not allow this request (HttpRequestDenied)".to_owned())
        }
        ErrorCode::DestinationIpProhibited => {
            HttpError::Denied("the host does not allow this destination address (DestinationIpProhibited)".to_owned())
        }
        ErrorCode::InternalError(Some(message)) if mentions_denial(&message) => HttpError::Denied(message),
        ErrorCode::InternalError(Some(message)) => HttpError::Other(message),
        ErrorCode::DnsTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => HttpError::Timeout(name),
        ErrorCode::DnsError(payload) => HttpError::Connect(format!(
            "DNS error {} {}",
            payload.rcode.unwrap_or_default(),
            payload.info_code.map(|c| c.to_string()).unwrap_or_default()
        )),
        ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => HttpError::Connect(name),
        ErrorCode::HttpRequestBodySize(_)
        | ErrorCode::HttpResponseBodySize(_)
        | ErrorCode::HttpResponseHeaderSectionSize(_)
        | ErrorCode::HttpResponseHeaderSize(_) => HttpError::TooLarge(name),
        ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestUriTooLong
        | ErrorCode::HttpRequestHeaderSectionSize(_)
        | ErrorCode::HttpRequestHeaderSize(_)
        | ErrorCode::HttpRequestLengthRequired => HttpError::InvalidRequest(name),
        _ => HttpError::Other(name),
    }
}

fn mentions_denial(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["denied", "not allowed", "not granted", "forbidden"].iter().any(|word| lower.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_error_codes() {
        assert!(matches!(classify(ErrorCode::HttpRequestDenied), HttpError::Denied(_)));
        assert!(matches!(classify(ErrorCode::DestinationIpProhibited), HttpError::Denied(_)));
        assert_eq!(
            classify(ErrorCode::InternalError(Some("denied: api.evil.com is not in the allowlist".into()))),
            HttpError::Denied("denied: api.evil.com is not in the allowlist".into())
        );
        assert_eq!(classify(ErrorCode::InternalError(Some("boom".into()))), HttpError::Other("boom".into()));
        assert_eq!(classify(ErrorCode::ConnectionRefused), HttpError::Connect("ConnectionRefused".into()));
        assert!(matches!(classify(ErrorCode::ConnectionTimeout), HttpError::Timeout(_)));
        assert!(matches!(classify(ErrorCode::HttpResponseTimeout), HttpError::Timeout(_)));
        assert!(matches!(classify(ErrorCode::HttpResponseBodySize(Some(9))), HttpError::TooLarge(_)));
        assert!(matches!(classify(ErrorCode::HttpProtocolError), HttpError::Other(_)));
        assert!(matches!(classify(ErrorCode::HttpRequestUriInvalid), HttpError::InvalidRequest(_)));
    }
}
