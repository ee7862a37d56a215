//! Local stand-ins for the vendor endpoints: an axum server on 127.0.0.1:0 that checks auth the
//! way the vendor does (answering with the vendor's real error JSON), records every request,
//! and answers from a per-test responder.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_models::{Message, ModelRequest, ProviderOptions, Sampling, ToolCall, ToolChoice, ToolSpec};

/// How the stand-in authenticates, like the vendor it mimics.
#[derive(Clone)]
pub enum Auth {
    /// OpenAI: `Authorization: Bearer <key>`.
    Bearer(String),
    /// Anthropic: `x-api-key: <key>` plus a required `anthropic-version`.
    XApiKey(String),
    /// A local server with no auth (Ollama).
    Open,
}

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// What the responder answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply { status, headers: vec![], body: body.to_string(), delay: Duration::ZERO }
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

type Responder = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

struct Inner {
    path: &'static str,
    auth: Auth,
    seen: Mutex<Vec<Seen>>,
    responder: Box<Responder>,
}

pub struct Mock {
    pub base: String,
    inner: Arc<Inner>,
}

impl Mock {
    /// Every request received, authorised or not.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }
    pub fn count(&self) -> usize {
        self.inner.seen.lock().unwrap().len()
    }
}

/// Serve `path` on 127.0.0.1:0. `responder(n, request)` answers the n-th (0-based) request that
/// passed the auth check.
pub async fn start(
    path: &'static str,
    auth: Auth,
    responder: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
) -> Mock {
    let inner = Arc::new(Inner { path, auth, seen: Mutex::new(Vec::new()), responder: Box::new(responder) });
    let app = Router::new().fallback(handle).with_state(inner.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Mock { base: format!("http://{addr}"), inner }
}

async fn handle(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seen = Seen { path: uri.path().to_string(), headers: headers.clone(), body };
    let index = {
        let mut all = inner.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    if seen.path != inner.path {
        return (StatusCode::NOT_FOUND, format!("no route {}", seen.path)).into_response();
    }
    if let Some(refusal) = check_auth(&inner.auth, &headers) {
        return refusal;
    }
    let reply = (inner.responder)(index, &seen);
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The vendors' own 401/400 bodies (shapes copied from their API responses).
fn check_auth(auth: &Auth, headers: &HeaderMap) -> Option<Response> {
    match auth {
        Auth::Open => None,
        Auth::Bearer(key) => {
            let sent = header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer "));
            let message = match sent {
                Some(sent) if sent == key => return None,
                // OpenAI echoes the key it got; echo it whole here, the harshest case.
                Some(sent) => format!(
                    "Incorrect API key provided: {sent}. You can find your API key at https://platform.openai.com/account/api-keys."
                ),
                None => "You didn't provide an API key. You need to provide your API key in an Authorization header \
                         using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    .to_string(),
            };
            let code = if sent.is_some() { json!("invalid_api_key") } else { Value::Null };
            let body =
                json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}});
            Some((StatusCode::UNAUTHORIZED, body.to_string()).into_response())
        }
        Auth::XApiKey(key) => {
            if header(headers, "x-api-key") != Some(key.as_str()) {
                let body =
                    json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
                return Some((StatusCode::UNAUTHORIZED, body.to_string()).into_response());
            }
            if header(headers, "anthropic-version").is_none() {
                let body = json!({"type": "error", "error": {"type": "invalid_request_error",
                    "message": "anthropic-version: header is required"}});
                return Some((StatusCode::BAD_REQUEST, body.to_string()).into_response());
            }
            None
        }
    }
}

/// Options reading only `vars`, with short waits so retry tests stay fast.
pub fn options(vars: &[(&str, &str)]) -> ProviderOptions {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut options = ProviderOptions::new(".").with_env_map(vars);
    options.timeout = Duration::from_secs(5);
    options.max_retries = 2;
    options.retry_base = Duration::from_millis(20);
    options.max_retry_wait = Duration::from_secs(5);
    options
}

/// A conversation that exercises every message kind: a tool call, its result, an error result.
pub fn request() -> ModelRequest {
    ModelRequest {
        agent: "analyst".into(),
        turn_index: 1,
        system: "You analyse ad campaigns.".into(),
        messages: vec![
            Message::User { text: "How did campaign 101 do?".into() },
            Message::Assistant {
                text: Some("Looking it up.".into()),
                tool_calls: vec![
                    ToolCall {
                        id: "call_a".into(),
                        name: "ads__campaign_insights".into(),
                        input: json!({"campaign_id": "101", "date_preset": "last_7d"}),
                        arguments_error: None,
                    },
                    ToolCall {
                        id: "call_b".into(),
                        name: "crm__find_contact".into(),
                        input: json!({"email": "x@y.z"}),
                        arguments_error: None,
                    },
                ],
            },
            Message::ToolResult {
                call_id: "call_a".into(),
                name: "ads__campaign_insights".into(),
                content: "{\"spend\": 12.5}".into(),
                is_error: false,
            },
            Message::ToolResult {
                call_id: "call_b".into(),
                name: "crm__find_contact".into(),
                content: "not found".into(),
                is_error: true,
            },
        ],
        tools: vec![ToolSpec {
            name: "ads__campaign_insights".into(),
            description: "Insights for one campaign.".into(),
            input_schema: json!({"type": "object", "properties": {"campaign_id": {"type": "string"}},
                "required": ["campaign_id"]}),
        }],
        max_output_tokens: 1024,
        tool_choice: ToolChoice::Auto,
        sampling: Sampling::default(),
    }
}
