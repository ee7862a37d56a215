//! SendGrid v3 Mail Send on the wire: validating and building the `POST /v3/mail/send`
//! request, reading its answer, and mapping SendGrid's `{"errors": [...]}` to [`ToolError`].
//! Pure functions, unit-tested natively; [`send`] is the only one that touches the network.

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_sdk::http::{Request, Response};
use tollgate_sdk::prelude::*;

use crate::model::{Address, SendEmailInput, SendEmailOutput};

/// Always the real API: the Tollgate host remaps it to a stand-in in tests.
pub const URL: &str = "https://api.sendgrid.com/v3/mail/send";

/// `custom_args` key carrying the call's idempotency key, so a duplicate send can be traced to
/// the same logical call in SendGrid's activity feed and event webhooks.
pub const KEY_ARG: &str = "tollgate_idempotency_key";

/// Checks what SendGrid would reject, so the model gets a precise `invalid_input` rather than
/// an upstream 400.
pub fn check(input: &SendEmailInput) -> Result<(), ToolError> {
    if input.to.is_empty() || input.to.len() > 50 {
        return Err(ToolError::invalid_input("`to` needs 1 to 50 recipients"));
    }
    let mut seen = Vec::with_capacity(input.to.len());
    for (index, address) in input.to.iter().enumerate() {
        check_address(&format!("to[{index}]"), address)?;
        let lower = address.email.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(ToolError::invalid_input(format!("to[{index}]: `{}` is listed twice", address.email)));
        }
        seen.push(lower);
    }
    check_address("from", &input.from)?;
    if let Some(reply_to) = &input.reply_to {
        check_address("reply_to", reply_to)?;
    }
    if input.subject.trim().is_empty() {
        return Err(ToolError::invalid_input("`subject` is empty"));
    }
    if input.text.is_empty() {
        return Err(ToolError::invalid_input("`text` is empty"));
    }
    if input.html.as_deref() == Some("") {
        return Err(ToolError::invalid_input("`html` is empty: leave it out instead"));
    }
    if input.categories.len() > 10 {
        return Err(ToolError::invalid_input("at most 10 `categories`"));
    }
    if let Some(bad) = input.categories.iter().find(|c| c.is_empty() || c.len() > 255 || !c.is_ascii()) {
        return Err(ToolError::invalid_input(format!("category `{bad}` must be 1 to 255 ASCII characters")));
    }
    Ok(())
}

fn check_address(field: &str, address: &Address) -> Result<(), ToolError> {
    let valid = match address.email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !address.email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ToolError::invalid_input(format!("{field}: `{}` is not an email address", address.email)))
    }
}

/// The Mail Send body: one personalization with every recipient, text then HTML content.
pub fn mail_body(input: &SendEmailInput, key: &str) -> Value {
    let mut content = vec![json!({"type": "text/plain", "value": input.text})];
    if let Some(html) = &input.html {
        content.push(json!({"type": "text/html", "value": html}));
    }
    let mut body = json!({
        "personalizations": [{ "to": input.to }],
        "from": input.from,
        "subject": input.subject,
        "content": content,
    });
    if let Some(reply_to) = &input.reply_to {
        body["reply_to"] = json!(reply_to);
    }
    if !input.categories.is_empty() {
        body["categories"] = json!(input.categories);
    }
    if !key.is_empty() {
        body["custom_args"] = json!({ KEY_ARG: key });
    }
    body
}

/// `POST /v3/mail/send` with the call's idempotency key as `Idempotency-Key`. SendGrid itself
/// does not deduplicate on it (a retried send can deliver twice); the stand-ins and
/// deduplicating proxies do.
pub fn send_request(input: &SendEmailInput, key: &str) -> Result<Request, ToolError> {
    check(input)?;
    Ok(Request::post(URL).header("idempotency-key", key).json(&mail_body(input, key)))
}

/// Sends `request`; any non-2xx status becomes a [`ToolError`] via [`error_from_response`].
pub fn send(request: Request) -> Result<Response, ToolError> {
    let response = request.send()?;
    if response.is_success() { Ok(response) } else { Err(error_from_response(&response)) }
}

/// The tool output for a successful (2xx) answer: 202 with `X-Message-Id` normally; sandbox
/// mode answers 200 without one.
pub fn output(input: &SendEmailInput, response: &Response) -> SendEmailOutput {
    SendEmailOutput {
        accepted: true,
        message_id: response.header("x-message-id").map(str::to_owned),
        recipients: u32::try_from(input.to.len()).unwrap_or(u32::MAX),
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<Problem>,
}

#[derive(Deserialize)]
struct Problem {
    message: Option<String>,
    field: Option<String>,
}

/// SendGrid's `{"errors":[{"message","field"}]}` to a [`ToolError`] by status: 401/403 →
/// `denied`, 404 → `not_found`, 409 → `invalid_input`, 429/5xx → `retryable`, other (usually
/// 400, a rejected payload) → `upstream`, each with SendGrid's messages.
pub fn error_from_response(response: &Response) -> ToolError {
    let status = response.status();
    let problems: Vec<String> = serde_json::from_slice::<Envelope>(response.bytes())
        .map(|envelope| {
            envelope
                .errors
                .into_iter()
                .filter_map(|p| match (p.field, p.message) {
                    (Some(field), Some(message)) => Some(format!("{field}: {message}")),
                    (None, Some(message)) => Some(message),
                    (_, None) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let detail = if problems.is_empty() {
        let text: String = response.text().chars().take(300).collect();
        if text.trim().is_empty() { "no error details".to_owned() } else { text }
    } else {
        problems.join("; ")
    };
    ToolError::from_http_status(status, format!("SendGrid returned HTTP {status}: {detail}"))
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
