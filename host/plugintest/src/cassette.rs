//! Cassettes: the HTTP exchanges of one test file, saved by `--record` and answered from on
//! replay with no network. The format (documented in docs/plugins/testing.md) is pretty JSON,
//! one exchange per entry in the order they happened, bodies as JSON when they parse as JSON
//! (so a diff shows the field that changed), as text when UTF-8, as hex otherwise. Credentials
//! never reach a cassette: the sandbox shows the tap an injected credential by name only and
//! redacts every secret it knows.
//!
//! Replay matches a request by method, scheme, host, port, path, query (as a multiset of
//! pairs, order ignored) and body (as JSON values when both parse, bytes otherwise); each
//! recorded exchange answers once, in order among the ones that match. A request nothing
//! matches is refused and kept, so a test fails on it even if the plugin swallowed the error.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_sandbox::{Recorder, Replayer, TapRequest, TapResponse};

use crate::TestError;

/// The format's name and version, first in every file.
pub const FORMAT: &str = "tollgate-cassette/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    pub format: String,
    pub exchanges: Vec<Exchange>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The test case that made the request.
    pub case: String,
    pub request: Request,
    pub response: Response,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub body: Body,
}

/// A body in its most readable faithful form. Absent keys mean an empty body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

impl Body {
    pub fn from_bytes(bytes: &[u8]) -> Body {
        if bytes.is_empty() {
            return Body::default();
        }
        if let Ok(json) = serde_json::from_slice::<Value>(bytes)
            && (json.is_object() || json.is_array())
        {
            return Body { json: Some(json), ..Body::default() };
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Body { text: Some(text.to_string()), ..Body::default() },
            Err(_) => Body { hex: Some(hex::encode(bytes)), ..Body::default() },
        }
    }

    /// The bytes to answer with. JSON is written compactly: a replayed body is equal as JSON,
    /// not byte for byte, to the one recorded.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        match (&self.json, &self.text, &self.hex) {
            (Some(json), None, None) => Ok(serde_json::to_vec(json).map_err(|e| e.to_string())?),
            (None, Some(text), None) => Ok(text.clone().into_bytes()),
            (None, None, Some(h)) => hex::decode(h).map_err(|e| format!("`hex` body: {e}")),
            (None, None, None) => Ok(Vec::new()),
            _ => Err("a body is one of `json`, `text` or `hex`, not several".to_string()),
        }
    }

    fn matches(&self, bytes: &[u8]) -> bool {
        match &self.json {
            Some(json) => serde_json::from_slice::<Value>(bytes).is_ok_and(|v| &v == json),
            None => self.to_bytes().is_ok_and(|b| b == bytes),
        }
    }
}

fn header_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        map.entry(name.clone()).and_modify(|v| *v = format!("{v}, {value}")).or_insert_with(|| value.clone());
    }
    map
}

impl Cassette {
    pub fn new() -> Cassette {
        Cassette { format: FORMAT.to_string(), exchanges: Vec::new() }
    }

    pub fn load(path: &Path) -> Result<Cassette, TestError> {
        let text = std::fs::read_to_string(path).map_err(|e| TestError::io(path, e))?;
        let cassette: Cassette = serde_json::from_str(&text).map_err(|e| TestError::Format {
            file: path.display().to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if cassette.format != FORMAT {
            return Err(TestError::Format {
                file: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!("`format` is `{}`; this Tollgate reads `{FORMAT}`", cassette.format),
            });
        }
        for (i, e) in cassette.exchanges.iter().enumerate() {
            for body in [&e.request.body, &e.response.body] {
                body.to_bytes().map_err(|message| TestError::Format {
                    file: path.display().to_string(),
                    line: 1,
                    column: 1,
                    message: format!("exchange {i}: {message}"),
                })?;
            }
        }
        Ok(cassette)
    }

    pub fn save(&self, path: &Path) -> Result<(), TestError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| TestError::Internal(e.to_string()))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| TestError::io(path, e))
    }
}

impl Default for Cassette {
    fn default() -> Self {
        Cassette::new()
    }
}

/// A URL split the way replay compares it.
#[derive(Debug, PartialEq, Eq)]
struct UrlKey {
    origin_and_path: String,
    query: Vec<(String, String)>,
}

fn url_key(url: &str) -> UrlKey {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    pairs.sort();
    UrlKey { origin_and_path: base.to_string(), query: pairs }
}

/// Why a recorded request is not the one asked for; `None` when it matches.
fn mismatch(recorded: &Request, asked: &TapRequest) -> Option<&'static str> {
    if recorded.method != asked.method {
        return Some("method");
    }
    let (want, got) = (url_key(&recorded.url), url_key(&asked.url));
    if want.origin_and_path != got.origin_and_path {
        return Some("url");
    }
    if want.query != got.query {
        return Some("query");
    }
    if !recorded.body.matches(&asked.body) {
        return Some("body");
    }
    None
}

/// Answers from a cassette; keeps every request it could not answer.
#[derive(Debug)]
pub struct CassetteReplayer {
    exchanges: Vec<Exchange>,
    state: Mutex<ReplayState>,
}

#[derive(Debug, Default)]
struct ReplayState {
    used: Vec<bool>,
    unmatched: Vec<String>,
}

impl CassetteReplayer {
    pub fn new(cassette: Cassette) -> Arc<CassetteReplayer> {
        let used = vec![false; cassette.exchanges.len()];
        Arc::new(CassetteReplayer {
            exchanges: cassette.exchanges,
            state: Mutex::new(ReplayState { used, unmatched: Vec::new() }),
        })
    }

    /// The requests no recorded exchange answered, each described, since the last call.
    pub fn take_unmatched(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).unmatched)
    }

    /// Recorded exchanges no request used.
    pub fn unused(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.exchanges
            .iter()
            .zip(&state.used)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| format!("{} {} (case `{}`)", e.request.method, e.request.url, e.case))
            .collect()
    }
}

impl Replayer for CassetteReplayer {
    fn replay(&self, request: &TapRequest) -> Result<TapResponse, String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut nearest: Option<&'static str> = None;
        let mut already_used = false;
        for (i, exchange) in self.exchanges.iter().enumerate() {
            match mismatch(&exchange.request, request) {
                None if state.used[i] => already_used = true,
                None => {
                    state.used[i] = true;
                    let body = exchange.response.body.to_bytes()?;
                    let headers = exchange.response.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    return Ok(TapResponse { status: exchange.response.status, headers, body });
                }
                // The most specific difference among exchanges that agree on method and URL.
                Some(why @ ("query" | "body")) if nearest != Some("body") => nearest = Some(why),
                Some(_) => {}
            }
        }
        let why = match (already_used, nearest) {
            (true, _) => "the recorded exchanges that match were all used already".to_string(),
            (false, Some(part)) => format!("recorded with this method and URL, but the {part} differs"),
            (false, None) => "nothing recorded with this method and URL".to_string(),
        };
        let described = format!("{} {}: {why}", request.method, request.url);
        state.unmatched.push(described.clone());
        Err(format!("replay: no recorded exchange matches {described}"))
    }
}

/// Collects exchanges while recording, labelled with the case being run.
#[derive(Debug, Default)]
pub struct CassetteRecorder {
    state: Mutex<(String, Vec<Exchange>)>,
}

impl CassetteRecorder {
    pub fn new() -> Arc<CassetteRecorder> {
        Arc::new(CassetteRecorder::default())
    }

    /// Labels the exchanges that follow.
    pub fn begin_case(&self, case: &str) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 = case.to_string();
    }

    pub fn cassette(&self) -> Cassette {
        let exchanges = self.state.lock().unwrap_or_else(|e| e.into_inner()).1.clone();
        Cassette { format: FORMAT.to_string(), exchanges }
    }
}

impl Recorder for CassetteRecorder {
    fn record(&self, request: TapRequest, response: TapResponse) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let exchange = Exchange {
            case: state.0.clone(),
            request: Request {
                method: request.method,
                url: request.url,
                // Host repeats the URL and lengths describe the wire form.
                headers: header_map(
                    &request
                        .headers
                        .into_iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length"))
                        .collect::<Vec<_>>(),
                ),
                body: Body::from_bytes(&request.body),
            },
            response: Response {
                status: response.status,
                headers: header_map(
                    &response
                        .headers
                        .into_iter()
                        .filter(|(k, _)| {
                            !matches!(k.as_str(), "date" | "content-length" | "connection" | "transfer-encoding")
                        })
                        .collect::<Vec<_>>(),
                ),
                body: Body::from_bytes(&response.body),
            },
        };
        state.1.push(exchange);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(method: &str, url: &str, body: &str) -> TapRequest {
        TapRequest { method: method.into(), url: url.into(), headers: vec![], body: body.as_bytes().to_vec() }
    }

    fn cassette() -> Cassette {
        let recorder = CassetteRecorder::new();
        recorder.begin_case("one");
        recorder.record(
            asked("POST", "https://api.example.com/search?a=1&b=2", r#"{"q":"ada","limit":2}"#),
            TapResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"hits":[1]}"#.to_vec(),
            },
        );
        recorder.record(
            asked("GET", "https://api.example.com/item/7", ""),
            TapResponse { status: 404, headers: vec![], body: b"gone".to_vec() },
        );
        recorder.cassette()
    }

    #[test]
    fn bodies_keep_their_most_readable_form() {
        assert_eq!(Body::from_bytes(br#"{"a":1}"#).json, Some(serde_json::json!({"a": 1})));
        assert_eq!(Body::from_bytes(b"plain").text.as_deref(), Some("plain"));
        assert_eq!(Body::from_bytes(&[0xff, 0x00]).hex.as_deref(), Some("ff00"));
        assert_eq!(Body::from_bytes(b""), Body::default());
        // A bare JSON scalar stays text: `"7"` and `7` must not become the same body.
        assert_eq!(Body::from_bytes(b"7").text.as_deref(), Some("7"));
        let both = Body { json: Some(Value::Null), text: Some("x".into()), hex: None };
        assert!(both.to_bytes().is_err());
    }

    #[test]
    fn replay_matches_by_method_url_query_set_and_json_body() {
        let replayer = CassetteReplayer::new(cassette());
        // Query order and JSON key order and spacing do not matter.
        let answer = replayer
            .replay(&asked("POST", "https://api.example.com/search?b=2&a=1", r#"{ "limit": 2, "q": "ada" }"#))
            .unwrap();
        assert_eq!((answer.status, answer.body), (200, br#"{"hits":[1]}"#.to_vec()));
        // Used once.
        let again =
            replayer.replay(&asked("POST", "https://api.example.com/search?a=1&b=2", r#"{"q":"ada","limit":2}"#));
        assert!(again.unwrap_err().contains("all used already"));
        let body =
            replayer.replay(&asked("POST", "https://api.example.com/search?a=1&b=2", r#"{"q":"bob","limit":2}"#));
        assert!(body.unwrap_err().contains("the body differs"));
        let query = replayer.replay(&asked("POST", "https://api.example.com/search?a=1", r#"{"q":"ada","limit":2}"#));
        assert!(query.unwrap_err().contains("the query differs"));
        let method = replayer.replay(&asked("DELETE", "https://api.example.com/item/7", ""));
        assert!(method.unwrap_err().contains("nothing recorded"));
        assert_eq!(replayer.take_unmatched().len(), 4);
        assert_eq!(replayer.unused(), ["GET https://api.example.com/item/7 (case `one`)"]);
        assert_eq!(replayer.replay(&asked("GET", "https://api.example.com/item/7", "")).unwrap().body, b"gone");
    }

    #[test]
    fn a_cassette_survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cassette.json");
        let c = cassette();
        c.save(&path).unwrap();
        assert_eq!(Cassette::load(&path).unwrap(), c);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"json\": {\n"), "bodies are readable JSON: {text}");
        std::fs::write(&path, text.replace(FORMAT, "tollgate-cassette/9")).unwrap();
        assert!(Cassette::load(&path).unwrap_err().to_string().contains("tollgate-cassette/9"));
        std::fs::write(&path, "{\"format\": \"tollgate-cassette/1\",\n \"exchanges\": [ {\"case\": 3} ]}").unwrap();
        let e = Cassette::load(&path).unwrap_err().to_string();
        assert!(e.contains(":2:"), "{e}");
    }
}
