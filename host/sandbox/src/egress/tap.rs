//! Where a checked request goes: the network ([`Network::Live`]), the network with every
//! exchange handed to a [`Recorder`] ([`Network::Record`]), or no network at all — a
//! [`Replayer`] answers ([`Network::Replay`]). `tollgate plugin test` records and replays
//! cassettes through this; runs always use `Live`.
//!
//! The tap sits *after* the gate: a request a manifest does not declare or the operator does
//! not grant is refused in replay exactly as it would be live, and the request a harness sees
//! is the one that would have left — with the `Host` the gate set and the injected credential
//! shown only by name (`<credential NAME>`), never its value. Responses are recorded after the
//! gate scrubbed any reflected credential, and every text is passed through the call's
//! redactor, so a cassette holds no secret the host knew of.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::redact::Redactor;

/// One request as a harness sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRequest {
    pub method: String,
    /// `scheme://host[:port]/path?query`, as the plugin addressed it (before any upstream remap).
    pub url: String,
    /// In order, names lowercase; the injected credential as `<credential NAME>`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One response as a harness sees it (or supplies it, in replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Receives every exchange of [`Network::Record`], once the response body has been read.
pub trait Recorder: Send + Sync {
    fn record(&self, request: TapRequest, response: TapResponse);
}

/// Answers requests in [`Network::Replay`]. An `Err` is why there is no answer (no recorded
/// exchange matches); the guest sees a refused request and the egress record says why.
pub trait Replayer: Send + Sync {
    fn replay(&self, request: &TapRequest) -> Result<TapResponse, String>;
}

/// Where checked requests go. The default is the network.
#[derive(Clone, Default)]
pub enum Network {
    #[default]
    Live,
    Record(Arc<dyn Recorder>),
    Replay(Arc<dyn Replayer>),
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Live => "Live",
            Network::Record(_) => "Record",
            Network::Replay(_) => "Replay",
        })
    }
}

/// Reads a whole body, at most `limit` bytes, by `deadline`.
pub(super) async fn read_body(
    mut body: WasiBody,
    limit: usize,
    deadline: Instant,
    too_large: fn(usize) -> HttpError,
) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                out.extend_from_slice(&data);
                if out.len() > limit {
                    return Err(too_large(out.len()));
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout_at(deadline.into(), read).await.map_err(|_| HttpError::ConnectionReadTimeout)??;
    Ok(out)
}

pub(super) fn full_body(bytes: Vec<u8>) -> WasiBody {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed_unsync()
}

/// Header pairs as a harness sees them: redacted, and `credential` (the injected header's
/// name and the credential's name) shown by name.
pub(super) fn headers(
    map: &HeaderMap,
    credential: Option<(&http::HeaderName, &str)>,
    redactor: &Redactor,
) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| {
            let shown = match credential {
                Some((header, cred)) if header == name => format!("<credential {cred}>"),
                _ => redactor.text(&String::from_utf8_lossy(value.as_bytes())),
            };
            (name.as_str().to_string(), shown)
        })
        .collect()
}

/// A body as a harness sees it: redacted when it is text.
pub(super) fn redacted_body(bytes: Vec<u8>, redactor: &Redactor) -> Vec<u8> {
    if redactor.is_empty() {
        return bytes;
    }
    match String::from_utf8(bytes) {
        Ok(text) => redactor.text(&text).into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

/// The response a replayer supplied, as the guest reads it.
pub(super) fn response(answer: TapResponse) -> Result<http::Response<WasiBody>, HttpError> {
    let mut builder = http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        // Lengths and encodings describe the recorded wire form, not this body.
        if matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
            continue;
        }
        builder = builder.header(name, value);
    }
    builder.body(full_body(answer.body)).map_err(|_| HttpError::HttpProtocolError)
}
