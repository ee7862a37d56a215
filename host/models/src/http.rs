//! The HTTP side shared by the vendor providers: one reqwest client (rustls, no redirects,
//! per-attempt timeout), JSON POST with bounded retries, vendor error extraction, and the
//! scrubbing that keeps API keys out of every error.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;

use crate::{ModelError, ProviderOptions};

/// A response body larger than this is refused: no model turn comes near it.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Vendor error text kept in a [`ModelError`]; proxies sometimes answer with whole HTML pages.
const MAX_ERROR_CHARS: usize = 1_000;

/// An API key. `Debug` never shows it; the only way out is into a sensitive header.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

impl ApiKey {
    pub(crate) fn new(value: String) -> Self {
        ApiKey(value.trim().to_string())
    }

    /// A header value marked sensitive (so HTTP-layer logging redacts it).
    pub(crate) fn header(&self, prefix: &str) -> Result<HeaderValue, ModelError> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0)).map_err(|_| ModelError::Transport {
            provider: "http".into(),
            // Never echo the value: only say what is wrong with it.
            message: "the API key contains characters not allowed in an HTTP header".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Where one provider sends its requests, and how it authenticates.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// Label used in errors: "openai", "anthropic", "openai-compatible".
    pub provider: &'static str,
    pub url: String,
    pub headers: HeaderMap,
    /// Kept only to scrub it from vendor error text.
    pub key: Option<ApiKey>,
    /// The variable the key came from, named in 401/403 errors.
    pub key_var: &'static str,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Endpoint")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("header_names", &names)
            .field("key", &self.key)
            .finish()
    }
}

/// The shared client and the retry policy from [`ProviderOptions`].
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    timeout: Duration,
    max_retries: u32,
    retry_base: Duration,
    max_retry_wait: Duration,
}

/// What one attempt came to, before the retry decision.
enum Attempt {
    Done(Result<Value, ModelError>),
    /// Worth retrying; `wait` is the server's `Retry-After` if it gave one.
    Retry {
        error: ModelError,
        wait: Option<Duration>,
    },
}

impl Http {
    pub(crate) fn new(options: &ProviderOptions) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(30)))
            // A redirect could carry the key (x-api-key is not a header reqwest strips) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ModelError::Transport { provider: "http".into(), message: error_chain(&e) })?;
        Ok(Http {
            client,
            timeout: options.timeout,
            max_retries: options.max_retries,
            retry_base: options.retry_base,
            max_retry_wait: options.max_retry_wait,
        })
    }

    /// POST `body` as JSON and return the JSON answer, retrying transient failures.
    pub(crate) async fn post_json(&self, endpoint: &Endpoint, body: &Value) -> Result<Value, ModelError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let (error, server_wait) = match self.attempt(endpoint, body, attempt).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { error, wait } => (error, wait),
            };
            if attempt > self.max_retries {
                return Err(error);
            }
            let wait = server_wait.unwrap_or_else(|| self.backoff(attempt));
            if wait > self.max_retry_wait {
                // Waiting that long inside one model call would stall the run; give the operator
                // the vendor's number instead.
                return Err(error);
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, endpoint: &Endpoint, body: &Value, attempt: u32) -> Attempt {
        let provider = endpoint.provider.to_string();
        let sent = self.client.post(&endpoint.url).headers(endpoint.headers.clone()).json(body).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return self.transport_failure(endpoint, &e, attempt),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = match read_capped(response).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge) => {
                return Attempt::Done(Err(ModelError::BadResponse {
                    provider,
                    message: format!("response body over {} MiB", MAX_RESPONSE_BYTES >> 20),
                }));
            }
            Err(ReadError::Http(e)) => return self.transport_failure(endpoint, &e, attempt),
        };
        if status.is_success() {
            return Attempt::Done(serde_json::from_slice(&bytes).map_err(|e| ModelError::BadResponse {
                provider,
                message: format!("body is not JSON ({e}): {}", snippet(&bytes, endpoint)),
            }));
        }
        let message = vendor_message(status, &bytes, endpoint);
        if status == StatusCode::TOO_MANY_REQUESTS {
            let error = ModelError::RateLimited { provider, retry_after, attempts: attempt };
            return Attempt::Retry { error, wait: retry_after };
        }
        let error = ModelError::Http { provider, status: status.as_u16(), message, attempts: attempt };
        // 529 is Anthropic's "overloaded"; it is a 5xx, so it is covered here.
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            Attempt::Retry { error, wait: retry_after }
        } else {
            Attempt::Done(Err(error))
        }
    }

    fn transport_failure(&self, endpoint: &Endpoint, e: &reqwest::Error, attempt: u32) -> Attempt {
        let provider = endpoint.provider.to_string();
        if e.is_timeout() {
            let error = ModelError::Timeout { provider, after: self.timeout, attempts: attempt };
            return Attempt::Retry { error, wait: None };
        }
        let message = scrub(&error_chain(e), endpoint.key.as_ref());
        let error = ModelError::Transport { provider, message };
        if e.is_builder() { Attempt::Done(Err(error)) } else { Attempt::Retry { error, wait: None } }
    }

    /// `retry_base * 2^(attempt-1)`, plus up to 25% jitter so parallel runs spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry_base.saturating_mul(1u32 << (attempt - 1).min(16));
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let jitter = exp.mul_f64(f64::from(nanos % 250) / 1000.0);
        (exp + jitter).min(self.max_retry_wait)
    }
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|len| len > MAX_RESPONSE_BYTES as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `retry-after-ms` (OpenAI) or `Retry-After` in seconds. HTTP-date forms fall back to backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    text(RETRY_AFTER.as_str()).and_then(|v| v.parse::<f64>().ok()).and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// The vendor's error text: `error.message` (OpenAI, Anthropic), `error` as a string (Ollama),
/// or the raw body. 401/403 name the variable to check.
fn vendor_message(status: StatusCode, body: &[u8], endpoint: &Endpoint) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let mut message = match error {
        Some(Value::String(text)) => text.clone(),
        Some(object @ Value::Object(_)) => {
            let text = object.get("message").and_then(Value::as_str).unwrap_or("").to_string();
            let kind = object.get("code").or_else(|| object.get("type")).and_then(Value::as_str);
            match kind {
                Some(kind) if !text.is_empty() => format!("{text} ({kind})"),
                Some(kind) => kind.to_string(),
                None => text,
            }
        }
        _ => String::new(),
    };
    if message.is_empty() {
        message = if body.is_empty() {
            status.canonical_reason().unwrap_or("no body").to_string()
        } else {
            String::from_utf8_lossy(body).into_owned()
        };
    }
    let mut message = clip(&scrub(&message, endpoint.key.as_ref()));
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        message.push_str(&format!(" — check {}", endpoint.key_var));
    } else if status == StatusCode::NOT_FOUND {
        message.push_str(&format!(" — check the model name and the URL {}", endpoint.url));
    }
    message
}

/// A short, scrubbed excerpt of a body for `BadResponse` messages.
pub(crate) fn snippet(body: &[u8], endpoint: &Endpoint) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_ERROR_CHARS)]);
    clip(&scrub(&text, endpoint.key.as_ref()))
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Remove the key from `text`, and any word sharing 8+ consecutive characters with it (vendors
/// echo keys partly masked, e.g. `sk-proj-abcd****wxyz`).
pub(crate) fn scrub(text: &str, key: Option<&ApiKey>) -> String {
    let Some(ApiKey(key)) = key else { return text.to_string() };
    if key.is_empty() {
        return text.to_string();
    }
    let text = text.replace(key.as_str(), "[REDACTED]");
    let windows: Vec<&str> = if key.len() >= 8 && key.is_ascii() {
        (0..=key.len() - 8).map(|i| &key[i..i + 8]).collect()
    } else {
        Vec::new()
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_end);
        if windows.iter().any(|w| word.contains(w)) {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(word);
        }
        let space_end = tail.find(|c: char| !c.is_whitespace()).unwrap_or(tail.len());
        out.push_str(&tail[..space_end]);
        rest = &tail[space_end..];
    }
    out
}

/// An error and its causes on one line ("error sending request …: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `base` + `path` with exactly one slash between them.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_full_and_partly_masked_keys() {
        let key = ApiKey::new("sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".into());
        let text = "Incorrect API key provided: sk-proj-ABCDEFGH************6789. Also sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 here";
        let out = scrub(text, Some(&key));
        assert!(!out.contains("ABCDEFGH"), "{out}");
        assert!(out.starts_with("Incorrect API key provided: [REDACTED] Also [REDACTED] here"), "{out}");
    }

    #[test]
    fn retry_after_prefers_milliseconds_then_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        headers.clear();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn join_url_has_one_slash() {
        assert_eq!(join_url("http://h/v1/", "/chat/completions"), "http://h/v1/chat/completions");
        assert_eq!(join_url("http://h", "v1/messages"), "http://h/v1/messages");
    }
}
