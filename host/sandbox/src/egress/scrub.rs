//! Credential values scrubbed from responses before the guest reads them. An upstream that
//! reflects request headers (an echo endpoint, a debug page, an error that quotes the request)
//! would otherwise hand the injected credential to the plugin, which could send it on —
//! hex-encoded, past output redaction — to another granted host.
//!
//! Every response to a request that carried a credential has that credential's value replaced
//! by `[REDACTED:<name>]` in its header values and, streaming, in its body: a [`ScrubBody`]
//! holds back the last `len - 1` bytes of each chunk so a value split across chunks is still
//! found. Each scrub is recorded for the call's report. What remains possible: an upstream
//! that *transforms* the value (encodes, hashes, reverses it) before reflecting it.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::Error as HttpError;

/// One credential value to scrub, and where to note that it was.
#[derive(Clone)]
pub(crate) struct Scrubber {
    name: String,
    value: Vec<u8>,
    marker: Bytes,
    /// Names of the credentials scrubbed during the call, for its report.
    seen: Arc<Mutex<BTreeSet<String>>>,
}

impl Scrubber {
    /// `None` for a value too short to scrub without destroying the response (as the
    /// redactor's minimum).
    pub(crate) fn new(name: &str, value: &str, seen: Arc<Mutex<BTreeSet<String>>>) -> Option<Scrubber> {
        (value.len() >= 4).then(|| Scrubber {
            name: name.to_string(),
            value: value.as_bytes().to_vec(),
            marker: Bytes::from(format!("[REDACTED:{name}]")),
            seen,
        })
    }

    fn note(&self) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(self.name.clone());
    }

    /// Replaces the value in every header value that contains it.
    pub(crate) fn headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            if let Some(replaced) = replace(value.as_bytes(), &self.value, &self.marker)
                && let Ok(v) = HeaderValue::from_bytes(&replaced)
            {
                *value = v;
                self.note();
            }
        }
    }
}

/// `haystack` with every `needle` replaced, or `None` if there was none.
fn replace(haystack: &[u8], needle: &[u8], marker: &[u8]) -> Option<Vec<u8>> {
    let first = find(haystack, needle, 0)?;
    let mut out = Vec::with_capacity(haystack.len());
    let mut at = 0;
    let mut next = Some(first);
    while let Some(i) = next {
        out.extend_from_slice(&haystack[at..i]);
        out.extend_from_slice(marker);
        at = i + needle.len();
        next = find(haystack, needle, at);
    }
    out.extend_from_slice(&haystack[at..]);
    Some(out)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// A response body with one credential value scrubbed, across chunk boundaries.
pub(crate) struct ScrubBody<B> {
    inner: B,
    scrubber: Scrubber,
    /// Bytes not yet handed on: a value may start in them.
    held: BytesMut,
    /// A trailers frame waiting behind the held bytes.
    trailers: Option<Frame<Bytes>>,
    done: bool,
}

impl<B> ScrubBody<B> {
    pub(crate) fn new(inner: B, scrubber: Scrubber) -> ScrubBody<B> {
        ScrubBody { inner, scrubber, held: BytesMut::new(), trailers: None, done: false }
    }

    /// Scrubs what is held and hands on all of it but a possible value prefix at the end.
    fn release(&mut self, all: bool) -> Option<Bytes> {
        if let Some(replaced) = replace(&self.held, &self.scrubber.value, &self.scrubber.marker) {
            self.held = BytesMut::from(&replaced[..]);
            self.scrubber.note();
        }
        let keep = if all { 0 } else { (self.scrubber.value.len() - 1).min(self.held.len()) };
        let ready = self.held.len() - keep;
        (ready > 0).then(|| self.held.split_to(ready).freeze())
    }
}

impl<B: Body<Data = Bytes, Error = HttpError> + Unpin> Body for ScrubBody<B> {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                if let Some(data) = this.release(true) {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                return Poll::Ready(this.trailers.take().map(Ok));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.held.extend_from_slice(&data);
                        if let Some(ready) = this.release(false) {
                            return Poll::Ready(Some(Ok(Frame::data(ready))));
                        }
                    }
                    Err(other) => {
                        this.trailers = Some(other);
                        this.done = true;
                    }
                },
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Scrubbing changes the length: no exact hint.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that yields the given chunks, one frame each.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = HttpError;
        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn body(chunks: &[&str]) -> Chunks {
        Chunks(chunks.iter().map(|c| Bytes::copy_from_slice(c.as_bytes())).collect())
    }

    #[tokio::test]
    async fn a_value_split_across_chunks_is_scrubbed() {
        let seen = Arc::default();
        let s = Scrubber::new("api", "tok-SECRET-123", Arc::clone(&seen)).unwrap();
        for chunks in [
            vec!["{\"authorization\":\"Bearer tok-SECRET-123\"}"],
            vec!["Bearer tok-SEC", "RET-123 and tok-SECRET-123", "!"],
            vec!["t", "o", "k", "-SECRET-1", "23"],
            vec!["nothing secret here", ", tok-SECRET-12"],
        ] {
            let out = ScrubBody::new(body(&chunks), s.clone()).collect().await.unwrap().to_bytes();
            let text = String::from_utf8(out.to_vec()).unwrap();
            assert!(!text.contains("tok-SECRET-123"), "{chunks:?}: {text}");
            assert_eq!(text.replace("[REDACTED:api]", "tok-SECRET-123"), chunks.concat(), "{chunks:?}");
        }
        assert!(seen.lock().unwrap().contains("api"));
    }

    #[test]
    fn header_values_are_scrubbed() {
        let seen = Arc::default();
        let s = Scrubber::new("api", "tok-SECRET-123", Arc::clone(&seen)).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-echo-authorization", HeaderValue::from_static("Bearer tok-SECRET-123"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        s.headers(&mut h);
        assert_eq!(h["x-echo-authorization"], "Bearer [REDACTED:api]");
        assert_eq!(h["content-type"], "text/plain");
        assert!(seen.lock().unwrap().contains("api"));
        assert!(Scrubber::new("short", "abc", Arc::default()).is_none());
    }
}
