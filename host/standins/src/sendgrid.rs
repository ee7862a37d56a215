//! SendGrid v3 Mail Send stand-in (`POST /v3/mail/send`).
//!
//! Owns the outbox ([`SendGridState`] / [`SentMail`]), bearer API-key auth, SendGrid's payload
//! validation with its `{"errors":[{message, field, help}]}` envelope (all problems reported at
//! once), sandbox mode (validate only, 200), and the `202 Accepted` + `X-Message-Id` answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use http::{HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::recorder::{self, RawBody, Recorder, lock};
use crate::support::{bearer_token, format_rfc3339_ms, is_valid_email, now_ms, random_token};

const HELP: &str = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html";

/// One accepted message.
#[derive(Clone, Debug, Serialize)]
pub struct SentMail {
    /// The `X-Message-Id` returned for it.
    pub message_id: String,
    /// `from.email`.
    pub from: String,
    /// `from.name`, if given.
    pub from_name: Option<String>,
    /// Every `to` address over all personalizations, in order.
    pub to: Vec<String>,
    /// Every `cc` and `bcc` address over all personalizations.
    pub cc_bcc: Vec<String>,
    /// The top-level subject, else the first personalization's.
    pub subject: Option<String>,
    /// The `text/plain` content, if any.
    pub text: Option<String>,
    /// The `text/html` content, if any.
    pub html: Option<String>,
    /// Top-level `custom_args` merged with the first personalization's.
    pub custom_args: BTreeMap<String, String>,
    /// RFC 3339 time of acceptance.
    pub accepted_at: String,
    /// The request payload as received.
    pub payload: Value,
}

/// Handle on the SendGrid stand-in's outbox (cheap to clone).
#[derive(Clone)]
pub struct SendGridState {
    sent: Arc<Mutex<Vec<SentMail>>>,
    token: Arc<str>,
    recorder: Recorder,
}

fn is_mutating(method: &Method, _path: &str) -> bool {
    *method == Method::POST
}

impl SendGridState {
    pub(crate) fn new(token: String) -> Self {
        Self {
            sent: Arc::new(Mutex::new(Vec::new())),
            token: token.into(),
            recorder: Recorder::new("sendgrid", is_mutating),
        }
    }

    pub(crate) fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Every accepted (non-sandbox) message, in order.
    pub fn sent(&self) -> Vec<SentMail> {
        lock(&self.sent).clone()
    }
}

/// One entry of SendGrid's error list.
fn problem(message: &str, field: Option<&str>, anchor: Option<&str>) -> Value {
    json!({
        "message": message,
        "field": field,
        "help": anchor.map(|a| format!("{HELP}#{a}")),
    })
}

fn errors(status: StatusCode, list: Vec<Value>) -> Response {
    (status, Json(json!({ "errors": list }))).into_response()
}

async fn auth(State(s): State<SendGridState>, req: Request, next: Next) -> Response {
    let message = match bearer_token(req.headers()) {
        Some(t) if *t == *s.token => return next.run(req).await,
        Some(_) => "The provided authorization grant is invalid, expired, or revoked",
        None if req.headers().contains_key(http::header::AUTHORIZATION) => {
            "The provided authorization grant is invalid, expired, or revoked"
        }
        None => "authorization required",
    };
    errors(StatusCode::UNAUTHORIZED, vec![problem(message, None, None)])
}

pub(crate) fn router(state: SendGridState) -> Router {
    let rec = state.recorder();
    Router::new()
        .route("/v3/mail/send", post(send))
        .fallback(|| async {
            errors(StatusCode::NOT_FOUND, vec![json!({ "field": null, "message": "resource not found" })])
        })
        .layer(from_fn_with_state(rec.clone(), recorder::idempotency))
        .layer(from_fn_with_state(state.clone(), auth))
        .layer(from_fn_with_state(rec, recorder::record))
        .with_state(state)
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// Checks one `to` / `cc` / `bcc` list; returns its addresses.
fn check_addresses(list: &Value, field: &str, seen: &mut Vec<String>, problems: &mut Vec<Value>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(items) = list.as_array() else {
        problems.push(problem(
            "Invalid type. Expected: array, given: object.",
            Some(field),
            Some("message.personalizations"),
        ));
        return out;
    };
    for (j, item) in items.iter().enumerate() {
        let email = item.get("email").and_then(Value::as_str).unwrap_or("");
        if !is_valid_email(email) {
            problems.push(problem(
                "Does not contain a valid address.",
                Some(&format!("{field}.{j}.email")),
                Some("message.personalizations.to"),
            ));
            continue;
        }
        let lower = email.to_ascii_lowercase();
        if seen.contains(&lower) {
            problems.push(problem(
                &format!(
                    "Each email address in the personalization block should be unique between \
                     to, cc, and bcc. We found the first duplicate instance of [{email}] in the \
                     {field} field."
                ),
                Some(&format!("{field}.{j}.email")),
                Some("message.recipient_errors"),
            ));
            continue;
        }
        seen.push(lower);
        out.push(email.to_owned());
    }
    out
}

fn string_map(v: Option<&Value>, field: &str, problems: &mut Vec<Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return out };
    let Some(map) = v.as_object() else {
        problems.push(problem("Invalid type. Expected: object.", Some(field), Some("message.custom_args")));
        return out;
    };
    for (k, v) in map {
        match v.as_str() {
            Some(s) => {
                out.insert(k.clone(), s.to_owned());
            }
            None => problems.push(problem(
                "Invalid type. Expected: string.",
                Some(&format!("{field}.{k}")),
                Some("message.custom_args"),
            )),
        }
    }
    out
}

/// Validates a Mail Send payload; returns the message (sans id) or SendGrid's error list.
fn validate(payload: &Map<String, Value>) -> Result<SentMail, Vec<Value>> {
    let mut problems = Vec::new();
    let has_template = non_empty_str(payload.get("template_id")).is_some();

    let (mut to, mut cc_bcc, mut all_have_subject, mut first_subject) = (vec![], vec![], true, None);
    let mut first_args = None;
    match payload.get("personalizations").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            for (i, p) in list.iter().enumerate() {
                let field = format!("personalizations.{i}");
                let mut seen = Vec::new();
                match p.get("to") {
                    Some(v) if v.as_array().is_some_and(|a| !a.is_empty()) => {
                        to.extend(check_addresses(v, &format!("{field}.to"), &mut seen, &mut problems));
                    }
                    _ => problems.push(problem(
                        "The to array is required for all personalization objects, and must have \
                         at least one email object with a valid email address.",
                        Some(&format!("{field}.to")),
                        Some("message.personalizations.to"),
                    )),
                }
                for kind in ["cc", "bcc"] {
                    if let Some(v) = p.get(kind) {
                        let found = check_addresses(v, &format!("{field}.{kind}"), &mut seen, &mut problems);
                        cc_bcc.extend(found);
                    }
                }
                let subject = non_empty_str(p.get("subject"));
                all_have_subject &= subject.is_some();
                if i == 0 {
                    first_subject = subject.map(str::to_owned);
                    first_args = p.get("custom_args").cloned();
                }
            }
        }
        _ => {
            all_have_subject = false;
            problems.push(problem(
                "The personalizations field is required and must have at least one personalization.",
                Some("personalizations"),
                Some("-Personalizations-Errors"),
            ));
        }
    }

    let from = payload.get("from");
    let from_email = from.and_then(|f| f.get("email")).and_then(Value::as_str);
    match (from.and_then(Value::as_object), from_email) {
        (None, _) | (Some(_), None) => problems.push(problem(
            "The from object must be provided for every email send. It is an object that requires \
             an email parameter, but may also contain a name parameter.  e.g. {\"email\" : \
             \"example@example.com\"}  or {\"email\" : \"example@example.com\", \"name\" : \
             \"Example Recipient\"}.",
            Some("from"),
            Some("message.from"),
        )),
        (Some(_), Some(e)) if !is_valid_email(e) => problems.push(problem(
            "The from email does not contain a valid address.",
            Some("from.email"),
            Some("message.from"),
        )),
        _ => {}
    }
    if let Some(reply) = payload.get("reply_to") {
        let ok = reply.get("email").and_then(Value::as_str).is_some_and(is_valid_email);
        if !ok {
            problems.push(problem(
                "The reply_to email does not contain a valid address.",
                Some("reply_to.email"),
                Some("message.reply_to"),
            ));
        }
    }

    let subject = non_empty_str(payload.get("subject"));
    if subject.is_none() && !all_have_subject && !has_template {
        problems.push(problem(
            "The subject is required. You can get around this requirement if you use a template \
             with a subject defined or if every personalization has a subject defined.",
            Some("subject"),
            Some("message.subject"),
        ));
    }

    let (mut text, mut html) = (None, None);
    match payload.get("content").and_then(Value::as_array) {
        Some(blocks) if !blocks.is_empty() => {
            for (i, block) in blocks.iter().enumerate() {
                let kind = non_empty_str(block.get("type"));
                let value = non_empty_str(block.get("value"));
                if kind.is_none() {
                    problems.push(problem(
                        "The content type cannot contain ';', or CRLF characters, and must be at \
                         least one character in length.",
                        Some(&format!("content.{i}.type")),
                        Some("message.content.type"),
                    ));
                }
                if value.is_none() {
                    problems.push(problem(
                        "The content value must be a string at least one character in length.",
                        Some(&format!("content.{i}.value")),
                        Some("message.content.value"),
                    ));
                }
                match kind {
                    Some("text/plain") if i > 0 => problems.push(problem(
                        "If present, text/plain must be first, followed by text/html, followed \
                         by any other content.",
                        Some("content.0.type"),
                        Some("message.content.type"),
                    )),
                    Some("text/plain") => text = value.map(str::to_owned),
                    Some("text/html") => html = value.map(str::to_owned),
                    _ => {}
                }
            }
        }
        _ if has_template => {}
        _ => problems.push(problem(
            "Unless a valid template_id is provided, the content parameter is required. There \
             must be at least one defined content block. We typically suggest both text/plain \
             and text/html blocks are included, but only one block is required.",
            Some("content"),
            Some("message.content"),
        )),
    }

    let mut custom_args = string_map(payload.get("custom_args"), "custom_args", &mut problems);
    let per = string_map(first_args.as_ref(), "personalizations.0.custom_args", &mut problems);
    custom_args.extend(per);

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SentMail {
        message_id: String::new(),
        from: from_email.unwrap_or_default().to_owned(),
        from_name: from.and_then(|f| f.get("name")).and_then(Value::as_str).map(str::to_owned),
        to,
        cc_bcc,
        subject: subject.map(str::to_owned).or(first_subject),
        text,
        html,
        custom_args,
        accepted_at: format_rfc3339_ms(now_ms()),
        payload: Value::Object(payload.clone()),
    })
}

async fn send(State(s): State<SendGridState>, Extension(RawBody(body)): Extension<RawBody>) -> Response {
    let payload = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => {
            return errors(StatusCode::BAD_REQUEST, vec![problem("Bad Request", None, None)]);
        }
    };
    let mut mail = match validate(&payload) {
        Ok(mail) => mail,
        Err(list) => return errors(StatusCode::BAD_REQUEST, list),
    };
    let sandbox = payload
        .get("mail_settings")
        .and_then(|m| m.pointer("/sandbox_mode/enable"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if sandbox {
        return StatusCode::OK.into_response();
    }
    mail.message_id = random_token("", 22);
    let id = HeaderValue::from_str(&mail.message_id).unwrap_or(HeaderValue::from_static("x"));
    lock(&s.sent).push(mail);
    s.recorder.applied();
    let mut resp = StatusCode::ACCEPTED.into_response();
    resp.headers_mut().insert("x-message-id", id);
    resp
}
