//! The three connectors, loaded in the sandbox exactly as an operator would grant them, against
//! the local stand-ins: real API shapes, credentials injected at egress (never seen by the
//! plugin), idempotency keys forwarded and honoured.

use crate::common;

use serde_json::json;
use tollgate_sandbox::{CallContext, CallError, Grants, Plugin, Sandbox, SecretSource, ToolError, Upstream};
use tollgate_standins::{StandIn, StandIns, Tokens};

struct Setup {
    standins: StandIns,
    _dir: tempfile::TempDir,
    crm: Plugin,
    ads: Plugin,
    email: Plugin,
}

async fn grant(
    sandbox: &Sandbox,
    name: &str,
    host: &str,
    cred: &str,
    standin: &StandIn,
    token_file: &std::path::Path,
) -> Plugin {
    let grants = Grants::new()
        .allow_host(&format!("https://{host}"))
        .unwrap()
        .upstream(host, Upstream::parse(&standin.base_url()).unwrap())
        .credential(cred, SecretSource::File(token_file.to_path_buf()));
    common::load(sandbox, name, grants).await
}

async fn setup() -> Setup {
    let tokens = Tokens::default();
    let standins = StandIns::start(tokens.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |n: &str, v: &str| {
        let p = dir.path().join(n);
        std::fs::write(&p, v).unwrap();
        p
    };
    let (h, m, s) =
        (write("hubspot", &tokens.hubspot), write("meta", &tokens.meta), write("sendgrid", &tokens.sendgrid));
    let sandbox = common::sandbox();
    let crm = grant(&sandbox, "crm", "api.hubapi.com", "hubspot", &standins.hubspot, &h).await;
    let ads = grant(&sandbox, "ads", "graph.facebook.com", "meta", &standins.meta, &m).await;
    let email = grant(&sandbox, "email", "api.sendgrid.com", "sendgrid", &standins.sendgrid, &s).await;
    Setup { standins, _dir: dir, crm, ads, email }
}

fn ctx(key: &str) -> CallContext {
    CallContext { run_id: "run-1".into(), call_id: key.into(), idempotency_key: key.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_reads_and_writes_with_injected_credentials() {
    let s = setup().await;
    let found = s.crm.call("search_contacts", &json!({"query": "northwind"}).to_string(), &ctx("s1")).await;
    let v = found.result.unwrap();
    assert_eq!(v["total"], json!(2), "{v}");
    let req = s.standins.hubspot.requests().pop().unwrap();
    assert_eq!(req.header("authorization"), Some("Bearer hubspot-test-token"));
    assert_eq!(found.report.egress[0].credential.as_deref(), Some("hubspot"));
    assert!(!serde_json::to_string(&found.report).unwrap().contains("hubspot-test-token"));

    let got = s.crm.call("get_contact", r#"{"id": "1003"}"#, &ctx("g1")).await.result.unwrap();
    assert_eq!(got["properties"]["email"], json!("carla.mendes@globex.example"));
    let missing = s.crm.call("get_contact", r#"{"id": "999999"}"#, &ctx("g2")).await;
    assert!(matches!(missing.result, Err(CallError::Tool(ToolError::NotFound { .. }))), "{:?}", missing.result);

    let created =
        s.crm.call("create_contact", r#"{"email": "new.lead@acme.example", "firstname": "New"}"#, &ctx("c1")).await;
    let id = created.result.unwrap()["id"].as_str().unwrap().to_string();
    let updated = s
        .crm
        .call("update_contact", &json!({"id": id, "properties": {"lifecyclestage": "lead"}}).to_string(), &ctx("u1"))
        .await;
    assert_eq!(updated.result.unwrap()["properties"]["lifecyclestage"], json!("lead"));
    let dup = s.crm.call("create_contact", r#"{"email": "ana.souza@northwind.example"}"#, &ctx("c2")).await;
    assert!(matches!(dup.result, Err(CallError::Tool(ToolError::InvalidInput { .. }))), "{:?}", dup.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_with_the_same_key_happens_once() {
    let s = setup().await;
    let input = r#"{"contact_id": "1002", "body": "Spoke about the renewal."}"#;
    let first = s.crm.call("add_note", input, &ctx("run-1:step-3:call-0")).await.result.unwrap();
    let before = s.standins.hubspot.side_effects();
    let second = s.crm.call("add_note", input, &ctx("run-1:step-3:call-0")).await.result.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(s.standins.hubspot.side_effects(), before, "the retry created a second note");
    let notes = s.standins.hubspot_state().notes();
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.properties.get("hs_note_body").map(String::as_str) == Some("Spoke about the renewal."))
            .count(),
        1
    );
    // A different key is a different call.
    s.crm.call("add_note", input, &ctx("run-1:step-4:call-0")).await.result.unwrap();
    assert_eq!(s.standins.hubspot.side_effects(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_finds_the_overspending_campaign_and_pauses_it() {
    let s = setup().await;
    let list = s.ads.call("list_campaigns", r#"{"ad_account_id": "1234567890"}"#, &ctx("l1")).await.result.unwrap();
    let ids: Vec<String> =
        list["campaigns"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.contains(&tollgate_standins::meta::OVERSPENDING_CAMPAIGN_ID.to_string()), "{list}");
    let mut worst = (0.0, String::new());
    for id in &ids {
        let ins = s
            .ads
            .call("campaign_insights", &json!({"campaign_id": id}).to_string(), &ctx(&format!("i-{id}")))
            .await
            .result
            .unwrap();
        let spend = ins["spend"].as_f64().unwrap();
        if spend > worst.0 {
            worst = (spend, id.clone());
        }
    }
    assert_eq!(worst.1, tollgate_standins::meta::OVERSPENDING_CAMPAIGN_ID);
    let paused = s
        .ads
        .call("update_campaign", &json!({"campaign_id": worst.1, "status": "PAUSED"}).to_string(), &ctx("p1"))
        .await;
    assert_eq!(paused.result.unwrap()["status"], json!("PAUSED"));
    assert_eq!(s.standins.meta_state().campaign(&worst.1).unwrap().status, "PAUSED");
    let req = s.standins.meta.requests().pop().unwrap();
    assert_eq!(req.idempotency_key.as_deref(), Some("p1"));
    let bad = s.ads.call("update_campaign", &json!({"campaign_id": worst.1}).to_string(), &ctx("p2")).await;
    assert!(matches!(bad.result, Err(CallError::Tool(ToolError::InvalidInput { .. }))), "{:?}", bad.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_sends_once_per_key_and_schema_errors_never_reach_the_api() {
    let s = setup().await;
    let input = json!({
        "to": [{"email": "team@northwind.example", "name": "Growth team"}],
        "from": {"email": "agent@tollgate.example"},
        "subject": "Campaign review",
        "text": "Black Friday Retargeting was paused for overspend."
    })
    .to_string();
    let sent = s.email.call("send_email", &input, &ctx("e1")).await.result.unwrap();
    assert_eq!(sent["accepted"], json!(true));
    s.email.call("send_email", &input, &ctx("e1")).await.result.unwrap();
    assert_eq!(s.standins.sendgrid_state().sent().len(), 1, "a retry with the same key sent twice");
    let before = s.standins.sendgrid.requests().len();
    let bad = s.email.call("send_email", r#"{"to": [], "subject": "x"}"#, &ctx("e2")).await;
    assert!(matches!(bad.result, Err(CallError::InvalidInput { .. })), "{:?}", bad.result);
    assert_eq!(s.standins.sendgrid.requests().len(), before, "invalid input reached the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_a_denied_tool_error_without_the_token() {
    let standins = StandIns::start(Tokens::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("t");
    std::fs::write(&wrong, "SG.wrong-token-value").unwrap();
    let email = grant(&common::sandbox(), "email", "api.sendgrid.com", "sendgrid", &standins.sendgrid, &wrong).await;
    let input =
        json!({"to": [{"email": "a@b.example"}], "from": {"email": "c@d.example"}, "subject": "s", "text": "t"});
    let o = email.call("send_email", &input.to_string(), &ctx("w1")).await;
    assert!(matches!(o.result, Err(CallError::Tool(ToolError::Denied { .. }))), "{:?}", o.result);
    assert!(!format!("{:?}{}", o.result, serde_json::to_string(&o.report).unwrap()).contains("wrong-token-value"));
}
