//! Unit tests for Mail Send validation, request building and error mapping (native).

use serde_json::json;
use tollgate_sdk::http::Method;

use super::*;

fn input(value: Value) -> SendEmailInput {
    serde_json::from_value(value).unwrap()
}

fn sample() -> SendEmailInput {
    input(json!({
        "to": [{"email": "ana@northwind.example", "name": "Ana"}, {"email": "ben@brightlabs.example"}],
        "subject": "Your demo",
        "text": "Hi! Here is the link.",
        "html": "<p>Hi! Here is <a href=\"https://x\">the link</a>.</p>",
        "from": {"email": "sales@tollgate.example", "name": "Sales"},
        "reply_to": {"email": "ops@tollgate.example"},
        "categories": ["demo"]
    }))
}

#[test]
fn request_has_sendgrid_shape_and_the_key_twice() {
    let request = send_request(&sample(), "key-5").unwrap();
    assert_eq!(request.method(), Method::Post);
    assert_eq!(request.url().unwrap(), "https://api.sendgrid.com/v3/mail/send");
    assert_eq!(request.header_value("idempotency-key"), Some("key-5"));
    assert_eq!(request.header_value("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(request.body_bytes()).unwrap();
    assert_eq!(
        body,
        json!({
            "personalizations": [{"to": [
                {"email": "ana@northwind.example", "name": "Ana"},
                {"email": "ben@brightlabs.example"}
            ]}],
            "from": {"email": "sales@tollgate.example", "name": "Sales"},
            "reply_to": {"email": "ops@tollgate.example"},
            "subject": "Your demo",
            "content": [
                {"type": "text/plain", "value": "Hi! Here is the link."},
                {"type": "text/html", "value": "<p>Hi! Here is <a href=\"https://x\">the link</a>.</p>"}
            ],
            "categories": ["demo"],
            "custom_args": {"tollgate_idempotency_key": "key-5"}
        })
    );
}

#[test]
fn minimal_message_leaves_optional_parts_out() {
    let minimal = input(json!({
        "to": [{"email": "a@b.example"}], "subject": "s", "text": "t",
        "from": {"email": "f@b.example"}
    }));
    let body = mail_body(&minimal, "");
    assert!(body.get("reply_to").is_none());
    assert!(body.get("categories").is_none());
    assert!(body.get("custom_args").is_none());
    assert_eq!(body["content"].as_array().unwrap().len(), 1);
}

#[test]
fn rejects_what_sendgrid_would() {
    type Mutation = Box<dyn Fn(&mut SendEmailInput)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|i| i.to.clear()), "1 to 50 recipients"),
        (Box::new(|i| i.to[1].email = "ANA@northwind.example".into()), "listed twice"),
        (Box::new(|i| i.to[0].email = "not-an-address".into()), "to[0]"),
        (Box::new(|i| i.from.email = "x@localhost".into()), "from"),
        (Box::new(|i| i.subject = "  ".into()), "`subject` is empty"),
        (Box::new(|i| i.html = Some(String::new())), "`html` is empty"),
        (Box::new(|i| i.categories = vec!["c".into(); 11]), "at most 10"),
        (Box::new(|i| i.categories = vec!["é".into()]), "ASCII"),
    ];
    for (mutate, expected) in cases {
        let mut message = sample();
        mutate(&mut message);
        let error = send_request(&message, "k").unwrap_err();
        assert_eq!(error.kind(), "invalid-input");
        assert!(error.message().contains(expected), "{error} !~ {expected}");
    }
    let fifty_one: Vec<Value> = (0..51).map(|n| json!({"email": format!("u{n}@x.example")})).collect();
    let mut many = sample();
    many.to = serde_json::from_value(json!(fifty_one)).unwrap();
    assert!(check(&many).is_err());
}

#[test]
fn output_reads_the_message_id() {
    let accepted = Response::new(202, vec![("X-Message-Id".into(), "abc123".into())], "");
    let out = output(&sample(), &accepted);
    assert!(out.accepted);
    assert_eq!(out.message_id.as_deref(), Some("abc123"));
    assert_eq!(out.recipients, 2);
}

#[test]
fn maps_sendgrid_errors() {
    let errors = |status: u16, list: Value| {
        error_from_response(&Response::new(status, vec![], json!({ "errors": list }).to_string()))
    };
    let auth = errors(
        401,
        json!([{"message": "The provided authorization grant is invalid, expired, or revoked", "field": null, "help": null}]),
    );
    assert_eq!(auth.kind(), "denied");
    assert!(auth.message().contains("authorization grant is invalid"));
    assert_eq!(errors(403, json!([{"message": "access forbidden"}])).kind(), "denied");
    let bad = errors(
        400,
        json!([
            {"message": "The from address does not match a verified Sender Identity.", "field": "from"},
            {"message": "Each email address in the personalization block should be unique", "field": "personalizations.0.to"}
        ]),
    );
    assert_eq!(
        bad,
        ToolError::upstream(
            Some(400),
            "SendGrid returned HTTP 400: from: The from address does not match a verified Sender \
             Identity.; personalizations.0.to: Each email address in the personalization block \
             should be unique"
        )
    );
    assert_eq!(errors(409, json!([{"message": "dup"}])).kind(), "invalid-input");
    assert_eq!(errors(429, json!([{"message": "slow down"}])).kind(), "retryable");
    assert_eq!(error_from_response(&Response::new(500, vec![], "")).kind(), "retryable");
}
