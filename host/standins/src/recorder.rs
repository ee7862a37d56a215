//! Shared request recording and idempotency, used by all three stand-ins.
//!
//! Owns [`RecordedRequest`], the per-stand-in [`Recorder`] (request log, applied-mutation
//! counter, stored idempotent responses) and the two axum middlewares that feed it:
//! [`record`] (outermost: buffers the body, logs every request including rejected ones) and
//! [`idempotency`] (innermost, after auth: replays the stored response for a repeated
//! `Idempotency-Key` on a mutating route).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Serialize;

/// Largest request body a stand-in accepts (SendGrid's own limit is 30 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One HTTP request as a stand-in received it, with the status it answered.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query, e.g. `/crm/v3/objects/contacts/search`.
    pub path: String,
    /// Raw query string without `?`, if any.
    pub query: Option<String>,
    /// Every header as received (names lower-case), `authorization` included verbatim.
    pub headers: Vec<(String, String)>,
    /// The request body (lossy UTF-8).
    pub body: String,
    /// The status the stand-in answered.
    pub status: u16,
    /// The `Idempotency-Key` header, if the request carried one.
    pub idempotency_key: Option<String>,
    /// True when the response was a replay of an earlier request with the same key.
    pub deduplicated: bool,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Tells which requests are mutating (and so honour `Idempotency-Key`): `(method, path)`.
pub(crate) type MutatingPredicate = fn(&Method, &str) -> bool;

/// Locks a std mutex, ignoring poisoning (a panicking handler must not wedge the stand-in).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone)]
struct StoredResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

struct Inner {
    vendor: &'static str,
    is_mutating: MutatingPredicate,
    records: Mutex<Vec<RecordedRequest>>,
    stored: Mutex<HashMap<(String, String, String), StoredResponse>>,
    side_effects: AtomicUsize,
    /// Whether a repeated `Idempotency-Key` is answered from the store (on by default).
    deduplicate: AtomicBool,
    /// Serialises keyed mutating requests so a concurrent retry waits for the first to finish.
    serial: tokio::sync::Mutex<()>,
}

/// Request log, applied-mutation counter and idempotency store of one stand-in.
#[derive(Clone)]
pub(crate) struct Recorder {
    inner: Arc<Inner>,
}

/// Request extension holding the body bytes the [`record`] layer buffered.
#[derive(Clone, Debug)]
pub(crate) struct RawBody(pub Bytes);

/// Response extension marking a replayed (deduplicated) response.
#[derive(Clone, Copy, Debug)]
struct Replayed;

impl Recorder {
    pub(crate) fn new(vendor: &'static str, is_mutating: MutatingPredicate) -> Self {
        Self {
            inner: Arc::new(Inner {
                vendor,
                is_mutating,
                records: Mutex::new(Vec::new()),
                stored: Mutex::new(HashMap::new()),
                side_effects: AtomicUsize::new(0),
                deduplicate: AtomicBool::new(true),
                serial: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Every request so far, in completion order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.records).clone()
    }

    /// Mutations actually applied (replays excluded).
    pub(crate) fn side_effects(&self) -> usize {
        self.inner.side_effects.load(Ordering::SeqCst)
    }

    /// Turns replaying repeated `Idempotency-Key`s on or off.
    pub(crate) fn set_deduplicate(&self, on: bool) {
        self.inner.deduplicate.store(on, Ordering::SeqCst);
    }

    /// Handlers call this once per mutation they apply.
    pub(crate) fn applied(&self) {
        self.inner.side_effects.fetch_add(1, Ordering::SeqCst);
    }
}

/// Outermost middleware: buffers the request body (exposed to inner layers as [`RawBody`]),
/// runs the rest of the stack and appends a [`RecordedRequest`] before the response leaves.
pub(crate) async fn record(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let idempotency_key =
        parts.headers.get("idempotency-key").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());

    let (bytes, response) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let mut req = Request::from_parts(parts, Body::from(bytes.clone()));
            req.extensions_mut().insert(RawBody(bytes.clone()));
            (bytes, next.run(req).await)
        }
        Err(_) => (Bytes::new(), (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()),
    };

    let deduplicated = response.extensions().get::<Replayed>().is_some();
    let status = response.status().as_u16();
    tracing::info!(
        vendor = rec.inner.vendor,
        %method,
        %path,
        status,
        deduplicated,
        "stand-in request"
    );
    lock(&rec.inner.records).push(RecordedRequest {
        method,
        path,
        query,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status,
        idempotency_key,
        deduplicated,
    });
    response
}

/// Innermost middleware (runs after authentication): for a mutating request carrying an
/// `Idempotency-Key`, replays the stored response of the first request with the same key,
/// method and path instead of running the handler again. Responses below 500 are stored.
pub(crate) async fn idempotency(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !rec.inner.deduplicate.load(Ordering::SeqCst) {
        return next.run(req).await;
    }
    let key = match req.headers().get("idempotency-key") {
        Some(k) if (rec.inner.is_mutating)(req.method(), &path) => String::from_utf8_lossy(k.as_bytes()).into_owned(),
        _ => return next.run(req).await,
    };
    let slot = (req.method().to_string(), path, key);
    let _serial = rec.inner.serial.lock().await;

    let stored = lock(&rec.inner.stored).get(&slot).cloned();
    if let Some(stored) = stored {
        let mut response = Response::new(Body::from(stored.body));
        *response.status_mut() = stored.status;
        *response.headers_mut() = stored.headers;
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        response.extensions_mut().insert(Replayed);
        return response;
    }

    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    if !parts.status.is_server_error() {
        lock(&rec.inner.stored)
            .insert(slot, StoredResponse { status: parts.status, headers: parts.headers.clone(), body: body.clone() });
    }
    Response::from_parts(parts, Body::from(body))
}
