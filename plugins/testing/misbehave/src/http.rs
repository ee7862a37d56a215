//! Outbound HTTP through `wasi:http/outgoing-handler` (the `wasip2` crate), with a small URL
//! type for following redirects by hand.
//!
//! Resources are dropped children first (stream, then body, then response): the host refuses to
//! drop a resource whose children are still alive.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;

use crate::tollgate::plugin::types::{ToolError, UpstreamError};

/// An absolute `http(s)` URL split the way wasi:http wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: String,
    pub authority: String,
    /// Starts with `/`.
    pub path_and_query: String,
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn strip_fragment(s: &str) -> &str {
    s.split_once('#').map_or(s, |(before, _)| before)
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986 section 5.2.4, simplified).
fn normalise_path(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::from("/");
    result.push_str(&out.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    if let Some(q) = query {
        result.push('?');
        result.push_str(q);
    }
    result
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = strip_fragment(s.trim());
        let (scheme, rest) = s
            .split_once("://")
            .filter(|(scheme, _)| is_scheme(scheme))
            .ok_or_else(|| format!("not an absolute URL: {s:?}"))?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("URL has no host: {s:?}"));
        }
        let path_and_query = if tail.starts_with('/') { tail.to_string() } else { format!("/{tail}") };
        Ok(Url { scheme: scheme.to_ascii_lowercase(), authority: authority.to_string(), path_and_query })
    }

    /// Resolves a `Location` header value against this URL.
    pub fn join(&self, location: &str) -> Result<Url, String> {
        let location = strip_fragment(location.trim());
        if let Some((scheme, _)) = location.split_once("://")
            && is_scheme(scheme)
        {
            return Url::parse(location);
        }
        if location.starts_with("//") {
            return Url::parse(&format!("{}:{location}", self.scheme));
        }
        let path = if location.is_empty() {
            self.path_and_query.clone()
        } else if location.starts_with('/') {
            normalise_path(location)
        } else if location.starts_with('?') {
            let path = self.path_and_query.split_once('?').map_or(self.path_and_query.as_str(), |(p, _)| p);
            format!("{path}{location}")
        } else {
            let path = self.path_and_query.split_once('?').map_or(self.path_and_query.as_str(), |(p, _)| p);
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            normalise_path(&format!("{dir}{location}"))
        };
        Ok(Url { scheme: self.scheme.clone(), authority: self.authority.clone(), path_and_query: path })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path_and_query)
    }
}

pub fn parse_method(method: &str) -> Method {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(method.to_string()),
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// wasi:http said so.
    Code(ErrorCode),
    /// The plugin's own input was unusable (bad URL, bad method).
    Input(String),
    /// Anything else (a stream closed early, a resource already taken).
    Other(String),
}

impl Failure {
    /// The text tests match on: the `ErrorCode` debug text, or the message.
    pub fn text(&self) -> String {
        match self {
            Failure::Code(code) => format!("{code:?}"),
            Failure::Input(message) | Failure::Other(message) => message.clone(),
        }
    }
}

impl From<Failure> for ToolError {
    fn from(failure: Failure) -> ToolError {
        match failure {
            Failure::Code(ErrorCode::HttpRequestDenied) => {
                ToolError::Denied(format!("{:?}", ErrorCode::HttpRequestDenied))
            }
            Failure::Code(code) => ToolError::Upstream(UpstreamError { status: None, message: format!("{code:?}") }),
            Failure::Input(message) => ToolError::InvalidInput(message),
            Failure::Other(message) => ToolError::Upstream(UpstreamError { status: None, message }),
        }
    }
}

/// The body to send.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Bytes(&'a [u8]),
    /// `len` bytes of `byte`, generated while writing.
    Repeat {
        byte: u8,
        len: u64,
    },
}

/// What came back.
pub struct Response {
    pub status: u16,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// All values of header `name`, joined with ", ".
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// A header the host's `fields` refused (for example a forbidden `host`).
pub struct HeaderRejection {
    pub name: String,
    pub error: String,
}

fn io_failure(what: &str, error: &wasip2::io::error::Error) -> Failure {
    match http_error_code(error) {
        Some(code) => Failure::Code(code),
        None => Failure::Other(format!("{what}: {}", error.to_debug_string())),
    }
}

/// Writes `body` to `stream` in writes of at most 4 KiB. Returns the bytes written.
fn write_body(stream: &wasip2::io::streams::OutputStream, body: Body<'_>) -> Result<u64, (u64, Failure)> {
    const CHUNK: usize = 4096;
    let mut written: u64 = 0;
    let mut write = |chunk: &[u8]| -> Result<(), (u64, Failure)> {
        match stream.blocking_write_and_flush(chunk) {
            Ok(()) => {
                written += chunk.len() as u64;
                Ok(())
            }
            Err(StreamError::Closed) => {
                Err((written, Failure::Other(format!("request body stream closed after {written} bytes"))))
            }
            Err(StreamError::LastOperationFailed(e)) => Err((written, io_failure("request body write", &e))),
        }
    };
    match body {
        Body::Bytes(bytes) => {
            for chunk in bytes.chunks(CHUNK) {
                write(chunk)?;
            }
        }
        Body::Repeat { byte, len } => {
            let buffer = [byte; CHUNK];
            let mut left = len;
            while left > 0 {
                let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
                write(&buffer[..n])?;
                left -= n as u64;
            }
        }
    }
    Ok(written)
}

/// Sends one request and reads the whole response. Headers the host's `fields` refuse are
/// skipped and recorded in `rejected` (the request still goes out without them).
pub fn send(
    method: &Method,
    url: &Url,
    headers: &[(String, String)],
    body: Option<Body<'_>>,
    rejected: &mut Vec<HeaderRejection>,
) -> Result<Response, Failure> {
    let fields = Fields::new();
    for (name, value) in headers {
        if let Err(e) = fields.append(name, value.as_bytes()) {
            rejected.push(HeaderRejection { name: name.clone(), error: format!("{e:?}") });
        }
    }
    let request = OutgoingRequest::new(fields);
    request.set_method(method).map_err(|()| Failure::Input(format!("method {method:?} refused")))?;
    let scheme = match url.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request.set_scheme(Some(&scheme)).map_err(|()| Failure::Input(format!("scheme {:?} refused", url.scheme)))?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| Failure::Input(format!("authority {:?} refused", url.authority)))?;
    request
        .set_path_with_query(Some(&url.path_and_query))
        .map_err(|()| Failure::Input(format!("path {:?} refused", url.path_and_query)))?;

    let outgoing_body = match body {
        Some(_) => Some(request.body().map_err(|()| Failure::Other("request body already taken".to_string()))?),
        None => None,
    };

    // `handle` may refuse at once, or the refusal arrives through the future.
    let future = outgoing_handler::handle(request, None).map_err(Failure::Code)?;

    // Write the body after `handle`, so that the host is already consuming it.
    let mut body_failure = None;
    if let (Some(outgoing_body), Some(body)) = (outgoing_body, body) {
        match outgoing_body.write() {
            Ok(stream) => {
                if let Err((_, failure)) = write_body(&stream, body) {
                    body_failure = Some(failure);
                }
                drop(stream);
            }
            Err(()) => body_failure = Some(Failure::Other("body stream already taken".into())),
        }
        if let Err(code) = OutgoingBody::finish(outgoing_body, None) {
            body_failure.get_or_insert(Failure::Code(code));
        }
    }

    let pollable = future.subscribe();
    pollable.block();
    drop(pollable);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        // The host's own verdict beats whatever the body write saw.
        Some(Ok(Err(code))) => return Err(Failure::Code(code)),
        Some(Err(())) => return Err(Failure::Other("response already taken".to_string())),
        None => return Err(Failure::Other("response not ready after block".to_string())),
    };
    drop(future);
    if let Some(failure) = body_failure {
        return Err(failure);
    }

    let status = response.status();
    let headers = {
        let fields = response.headers();
        fields.entries()
    };
    let incoming_body = response.consume().map_err(|()| Failure::Other("response body already taken".to_string()))?;
    let stream =
        incoming_body.stream().map_err(|()| Failure::Other("response body stream already taken".to_string()))?;
    let mut bytes = Vec::new();
    let read = loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break Ok(()),
            Err(StreamError::LastOperationFailed(e)) => {
                break Err(io_failure("response body read", &e));
            }
        }
    };
    drop(stream);
    drop(IncomingBody::finish(incoming_body));
    drop(response);
    read?;
    Ok(Response {
        status,
        headers: headers.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect(),
        body: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses() {
        assert_eq!(
            url("HTTP://a.test:8080"),
            Url { scheme: "http".into(), authority: "a.test:8080".into(), path_and_query: "/".into() }
        );
        assert_eq!(url("https://a.test?q=1#f").path_and_query, "/?q=1");
        assert_eq!(url("https://a.test/x/y?q=1").path_and_query, "/x/y?q=1");
        assert_eq!(url("http://user@[::1]:80/p").authority, "user@[::1]:80".to_string());
        assert!(Url::parse("a.test/x").is_err());
        assert!(Url::parse("http:///x").is_err());
        assert!(Url::parse("1http://a/").is_err());
    }

    #[test]
    fn joins_locations() {
        let base = url("http://a.test:81/dir/page?x=1");
        let join = |l: &str| base.join(l).unwrap().to_string();
        assert_eq!(join("https://b.test/z"), "https://b.test/z");
        assert_eq!(join("//c.test/z"), "http://c.test/z");
        assert_eq!(join("/abs?q"), "http://a.test:81/abs?q");
        assert_eq!(join("rel"), "http://a.test:81/dir/rel");
        assert_eq!(join("../up/x"), "http://a.test:81/up/x");
        assert_eq!(join("./"), "http://a.test:81/dir/");
        assert_eq!(join("../../../top"), "http://a.test:81/top");
        assert_eq!(join("?y=2"), "http://a.test:81/dir/page?y=2");
        assert_eq!(join(""), "http://a.test:81/dir/page?x=1");
        assert_eq!(join("/a/./b/../c#frag"), "http://a.test:81/a/c");
        assert_eq!(join("http://169.254.169.254/latest"), "http://169.254.169.254/latest");
    }

    #[test]
    fn methods() {
        assert!(matches!(parse_method("get"), Method::Get));
        assert!(matches!(parse_method("PATCH"), Method::Patch));
        assert!(matches!(parse_method("BREW"), Method::Other(m) if m == "BREW"));
    }
}
