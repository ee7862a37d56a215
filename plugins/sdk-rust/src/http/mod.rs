//! A small blocking HTTP client over `wasi:http/outgoing-handler`: [`Request`] builds a request,
//! [`Request::send`] returns a [`Response`] or an [`HttpError`].
//!
//! ```ignore
//! let contact: Contact = http::Request::get(format!("https://api.hubapi.com/crm/v3/objects/contacts/{id}"))
//!     .query("properties", "email,firstname")
//!     .send()?
//!     .json()?;
//! ```
//!
//! What to know:
//! - **Redirects are not followed** (the host never follows them either): a 3xx comes back as
//!   a [`Response`] with its `location` header, for the plugin to decide.
//! - **Credentials are added by the host** at egress for the hosts the manifest declares; do
//!   not set `authorization` yourself.
//! - The response body is read in chunks until the stream closes, and capped
//!   ([`DEFAULT_MAX_RESPONSE_BYTES`], change with [`Request::max_response_bytes`]): past the
//!   cap the call fails with [`HttpError::TooLarge`] instead of exhausting memory.
//! - [`Request::timeout`] bounds the whole exchange (connect, headers, body).
//! - A plugin that never calls [`Request::send`] does not import `wasi:http`.

mod transport;
mod url;

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ToolError;

pub use url::encode;

/// Responses larger than this fail with [`HttpError::TooLarge`] unless the request raises it.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Time allowed for a whole exchange unless the request sets its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }
}

/// Why a request produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The Tollgate host refused the request: the host name is not granted, the address is
    /// blocked, or a request cap was hit. Carries the host's message when it gave one.
    Denied(String),
    /// Could not reach the server: DNS, connection refused or reset, TLS.
    Connect(String),
    /// No complete response within the timeout.
    Timeout(String),
    /// The response (or request) body exceeded a size cap.
    TooLarge(String),
    /// The request could not be built: bad URL, header or body. A plugin bug.
    InvalidRequest(String),
    /// Anything else: protocol errors, a body that is not the expected JSON.
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "request denied by the host: {m}"),
            Self::Connect(m) => write!(f, "could not connect: {m}"),
            Self::Timeout(m) => write!(f, "timed out: {m}"),
            Self::TooLarge(m) => write!(f, "too large: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::Other(m) => write!(f, "HTTP error: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// `Denied` → `denied`; `Connect` and `Timeout` → `retryable` (safe with the same idempotency
/// key); `InvalidRequest` → `internal` (the plugin built it); anything else → `upstream`.
impl From<HttpError> for ToolError {
    fn from(error: HttpError) -> Self {
        let message = error.to_string();
        match error {
            HttpError::Denied(_) => ToolError::denied(message),
            HttpError::Connect(_) | HttpError::Timeout(_) => ToolError::retryable(message),
            HttpError::InvalidRequest(_) => ToolError::internal(message),
            HttpError::TooLarge(_) | HttpError::Other(_) => ToolError::upstream(None, message),
        }
    }
}

/// An outgoing request. Build it with [`Request::get`] and friends, then [`send`](Self::send).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
    max_response_bytes: usize,
    /// A builder step that failed (for example `.json` of an unserialisable value); reported by
    /// `send` so the builder chain stays infallible.
    deferred: Option<HttpError>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            deferred: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header (names are sent lower-case). Repeating a name sends it twice.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Appends a percent-encoded query parameter to the URL.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = body;
                self.set_default_header("content-type", "application/json");
            }
            Err(e) => {
                self.deferred = Some(HttpError::InvalidRequest(format!("could not serialise the JSON body: {e}")));
            }
        }
        self
    }

    /// Sets an `application/x-www-form-urlencoded` body.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, fields: &[(K, V)]) -> Self {
        self.body = url::form_encode(fields).into_bytes();
        self.set_default_header("content-type", "application/x-www-form-urlencoded");
        self
    }

    /// Sets a raw body; set `content-type` with [`header`](Self::header).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Bounds the whole exchange: connect, response headers and body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fails with [`HttpError::TooLarge`] when the response body exceeds `limit` bytes.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL with the query parameters appended, as it will be sent.
    pub fn url(&self) -> Result<String, HttpError> {
        let target = url::parse(&self.url, &self.query)?;
        Ok(format!("{}://{}{}", target.scheme, target.authority, target.path_with_query))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Sends the request and waits for the whole response. Any status, including 3xx, 4xx and
    /// 5xx, is a [`Response`]; only transport failures are errors.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(error) = self.deferred {
            return Err(error);
        }
        let target = url::parse(&self.url, &self.query)?;
        let mut headers = self.headers;
        if find_header(&headers, "user-agent").is_none() {
            headers.push(("user-agent".to_owned(), concat!("tollgate-sdk/", env!("CARGO_PKG_VERSION")).to_owned()));
        }
        if !self.body.is_empty() || matches!(self.method, Method::Post | Method::Put | Method::Patch) {
            // A known length lets the request go out without chunked encoding, which some
            // servers refuse.
            headers.retain(|(name, _)| name != "content-length");
            headers.push(("content-length".to_owned(), self.body.len().to_string()));
        }
        transport::send(transport::Outgoing {
            method: self.method,
            target,
            headers,
            body: self.body,
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
        })
    }

    fn set_default_header(&mut self, name: &str, value: &str) {
        if find_header(&self.headers, name).is_none() {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
    }
}

/// A complete response: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// Builds a response by hand, for unit tests of response handling.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: headers.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect(),
            body: body.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// All headers, names lower-case, in the order received. Values that are not UTF-8 are
    /// decoded lossily.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }

    /// The body as text; invalid UTF-8 is replaced rather than failing.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON into `T`. Failure is [`HttpError::Other`] naming the status
    /// and the first bytes of the body, so an HTML error page is recognisable.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let preview: String = self.text().chars().take(200).collect();
            HttpError::Other(format!("HTTP {} body is not the expected JSON ({e}): {preview}", self.status))
        })
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_records_what_will_be_sent() {
        let request = Request::post("https://api.example.com/v1/things")
            .query("dry_run", "true")
            .header("Idempotency-Key", "k1")
            .json(&serde_json::json!({"a": 1}));
        assert_eq!(request.method(), Method::Post);
        assert_eq!(request.url().unwrap(), "https://api.example.com/v1/things?dry_run=true");
        assert_eq!(request.header_value("idempotency-key"), Some("k1"));
        assert_eq!(request.header_value("content-type"), Some("application/json"));
        assert_eq!(request.body_bytes(), br#"{"a":1}"#);
    }

    #[test]
    fn form_sets_its_content_type_unless_given() {
        let request = Request::post("https://h/").form(&[("status", "PAUSED")]);
        assert_eq!(request.header_value("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(request.body_bytes(), b"status=PAUSED");
        let request = Request::post("https://h/").header("content-type", "text/plain").form(&[("a", "b")]);
        assert_eq!(request.header_value("content-type"), Some("text/plain"));
    }

    #[test]
    fn response_helpers() {
        let response = Response::new(200, vec![("X-Message-Id".into(), "abc".into())], br#"{"id":"7"}"#.to_vec());
        assert!(response.is_success());
        assert_eq!(response.header("x-message-id"), Some("abc"));
        let value: serde_json::Value = response.json().unwrap();
        assert_eq!(value["id"], "7");

        let html = Response::new(502, vec![], "<html>bad gateway</html>");
        let error = html.json::<serde_json::Value>().unwrap_err();
        assert!(matches!(&error, HttpError::Other(m) if m.contains("HTTP 502") && m.contains("<html>")));
    }

    #[test]
    fn errors_map_to_tool_errors() {
        let kind = |e: HttpError| ToolError::from(e).kind();
        assert_eq!(kind(HttpError::Denied("host not granted".into())), "denied");
        assert_eq!(kind(HttpError::Connect("refused".into())), "retryable");
        assert_eq!(kind(HttpError::Timeout("30s".into())), "retryable");
        assert_eq!(kind(HttpError::TooLarge("8 MiB".into())), "upstream");
        assert_eq!(kind(HttpError::Other("protocol".into())), "upstream");
        assert_eq!(kind(HttpError::InvalidRequest("bad url".into())), "internal");
        let denied = ToolError::from(HttpError::Denied("api.evil.com is not granted".into()));
        assert!(denied.message().contains("api.evil.com is not granted"));
    }

    #[test]
    fn deferred_builder_errors_surface_on_send() {
        struct Unserialisable;
        impl Serialize for Unserialisable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("nope"))
            }
        }
        // `send` returns before touching wasi:http, so this runs natively.
        let error = Request::post("https://h/").json(&Unserialisable).send().unwrap_err();
        assert!(matches!(error, HttpError::InvalidRequest(m) if m.contains("nope")));
        let error = Request::get("not a url").send().unwrap_err();
        assert!(matches!(error, HttpError::InvalidRequest(_)));
    }
}
