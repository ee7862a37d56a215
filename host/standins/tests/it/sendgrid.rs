//! SendGrid Mail Send stand-in over real HTTP: key auth, accepted sends, SendGrid-shaped
//! validation errors, sandbox mode and idempotent replay.

use crate::common;

use common::{json, send};
use serde_json::{Value, json as j};
use tollgate_standins::{StandIns, Tokens};

const AUTH: (&str, &str) = ("Authorization", "Bearer SG.test-token");
const PATH: &str = "/v3/mail/send";

async fn start() -> StandIns {
    StandIns::start(Tokens::default()).await.expect("start")
}

fn mail() -> Value {
    j!({
        "personalizations": [{"to": [{"email": "ana.souza@northwind.example", "name": "Ana"}],
                              "custom_args": {"contact_id": "1001"}}],
        "from": {"email": "sales@tollgate.example", "name": "Tollgate Sales"},
        "subject": "Your Q4 proposal",
        "content": [{"type": "text/plain", "value": "Hi Ana, the proposal is attached."},
                    {"type": "text/html", "value": "<p>Hi Ana, the proposal is attached.</p>"}],
        "custom_args": {"run_id": "run-7"}
    })
}

fn fields(v: &Value) -> Vec<String> {
    v["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().unwrap_or("null").to_owned()).collect()
}

#[tokio::test]
async fn rejects_missing_or_wrong_key() {
    let s = start().await;
    let addr = s.sendgrid.addr();
    let r = json(addr, "POST", PATH, &[], &mail()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["errors"][0]["message"], "authorization required");
    let r = json(addr, "POST", PATH, &[("Authorization", "Bearer SG.other")], &mail()).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        j!({"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked",
                        "field": null, "help": null}]})
    );
    assert_eq!(s.sendgrid.side_effects(), 0);
    assert!(s.sendgrid_state().sent().is_empty());
    assert_eq!(s.sendgrid.requests().len(), 2);
}

#[tokio::test]
async fn accepts_mail_and_keeps_it() {
    let s = start().await;
    let addr = s.sendgrid.addr();
    let r = json(addr, "POST", PATH, &[AUTH], &mail()).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body, "");
    let id = r.header("x-message-id").expect("X-Message-Id").to_owned();
    assert_eq!(id.len(), 22);

    let sent = s.sendgrid_state().sent();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.message_id, id);
    assert_eq!(m.from, "sales@tollgate.example");
    assert_eq!(m.to, ["ana.souza@northwind.example"]);
    assert_eq!(m.subject.as_deref(), Some("Your Q4 proposal"));
    assert_eq!(m.text.as_deref(), Some("Hi Ana, the proposal is attached."));
    assert!(m.html.is_some());
    assert_eq!(m.custom_args["run_id"], "run-7");
    assert_eq!(m.custom_args["contact_id"], "1001");
    assert_eq!(s.sendgrid.side_effects(), 1);

    let rec = &s.sendgrid.requests()[0];
    assert_eq!((rec.method.as_str(), rec.path.as_str(), rec.status), ("POST", PATH, 202));
    assert_eq!(rec.header("authorization"), Some("Bearer SG.test-token"));
    assert_eq!(serde_json::from_str::<Value>(&rec.body).unwrap(), mail());

    // A subject on every personalization stands in for the top-level one.
    let mut per = mail();
    per.as_object_mut().unwrap().remove("subject");
    per["personalizations"][0]["subject"] = j!("Per-recipient subject");
    assert_eq!(json(addr, "POST", PATH, &[AUTH], &per).await.status, 202);
    assert_eq!(s.sendgrid_state().sent()[1].subject.as_deref(), Some("Per-recipient subject"));
}

#[tokio::test]
async fn validates_like_sendgrid() {
    let s = start().await;
    let addr = s.sendgrid.addr();
    let mut m = mail();
    m.as_object_mut().unwrap().remove("from");
    let r = json(addr, "POST", PATH, &[AUTH], &m).await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(fields(&v), ["from"]);
    assert!(v["errors"][0]["message"].as_str().unwrap().starts_with("The from object must be provided"));
    assert_eq!(
        v["errors"][0]["help"],
        "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.from"
    );

    let mut m = mail();
    m["personalizations"][0]["to"][0]["email"] = j!("ana-at-northwind");
    m["from"]["email"] = j!("sales@");
    let r = json(addr, "POST", PATH, &[AUTH], &m).await;
    assert_eq!(fields(&r.json()), ["personalizations.0.to.0.email", "from.email"]);

    let r = json(addr, "POST", PATH, &[AUTH], &j!({})).await;
    assert_eq!(fields(&r.json()), ["personalizations", "from", "subject", "content"]);

    let mut m = mail();
    m["content"] = j!([{"type": "text/html", "value": "<p>x</p>"}, {"type": "text/plain", "value": ""}]);
    let r = json(addr, "POST", PATH, &[AUTH], &m).await;
    assert_eq!(fields(&r.json()), ["content.1.value", "content.0.type"]);

    let r = send(addr, "POST", PATH, &[AUTH], b"not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["message"], "Bad Request");

    let mut m = mail();
    m["mail_settings"] = j!({"sandbox_mode": {"enable": true}});
    let r = json(addr, "POST", PATH, &[AUTH], &m).await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(s.sendgrid_state().sent().is_empty());
    assert_eq!(s.sendgrid.side_effects(), 0);
}

#[tokio::test]
async fn without_deduplication_a_repeated_key_sends_again_like_real_sendgrid() {
    let s = start().await;
    s.sendgrid.set_deduplicate(false);
    let addr = s.sendgrid.addr();
    let headers = [AUTH, ("Idempotency-Key", "welcome-ana")];
    let first = json(addr, "POST", PATH, &headers, &mail()).await;
    let second = json(addr, "POST", PATH, &headers, &mail()).await;
    assert_eq!((first.status, second.status), (202, 202));
    assert_ne!(first.header("x-message-id"), second.header("x-message-id"));
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_eq!((s.sendgrid.side_effects(), s.sendgrid_state().sent().len()), (2, 2));
    let log = s.sendgrid.requests();
    assert_eq!(log.iter().map(|r| r.deduplicated).collect::<Vec<_>>(), [false, false]);
    assert!(log.iter().all(|r| r.idempotency_key.as_deref() == Some("welcome-ana")), "keys are still recorded");
}

#[tokio::test]
async fn idempotent_replay_returns_the_first_message_id() {
    let s = start().await;
    let addr = s.sendgrid.addr();
    let headers = [AUTH, ("Idempotency-Key", "welcome-ana")];
    let first = json(addr, "POST", PATH, &headers, &mail()).await;
    let second = json(addr, "POST", PATH, &headers, &mail()).await;
    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(first.header("x-message-id"), second.header("x-message-id"));
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(s.sendgrid.side_effects(), 1);
    assert_eq!(s.sendgrid_state().sent().len(), 1);
    let log = s.sendgrid.requests();
    assert_eq!(log.iter().map(|r| r.deduplicated).collect::<Vec<_>>(), [false, true]);
    assert!(log.iter().all(|r| r.idempotency_key.as_deref() == Some("welcome-ana")));

    // A new key sends again.
    let third = json(addr, "POST", PATH, &[AUTH, ("Idempotency-Key", "welcome-ana-2")], &mail()).await;
    assert_ne!(third.header("x-message-id"), first.header("x-message-id"));
    assert_eq!(s.sendgrid.side_effects(), 2);
}
