//! Meta Marketing API stand-in over real HTTP: token auth, campaign listing with cursor
//! paging, insights, campaign updates (form and JSON), Graph errors and idempotent replay.

use crate::common;

use common::{get, json, send};
use serde_json::{Value, json as j};
use tollgate_standins::{StandIns, Tokens};

const OVERSPENDER: &str = "120210000000000101";
const PAUSED: &str = "120210000000000104";
const BEARER: (&str, &str) = ("Authorization", "Bearer meta-test-token");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

async fn start() -> StandIns {
    StandIns::start(Tokens::default()).await.expect("start")
}

/// Path and query of an absolute `next` link.
fn target_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("absolute http url");
    rest[rest.find('/').expect("path")..].to_owned()
}

#[tokio::test]
async fn access_token_in_query_form_or_header() {
    let s = start().await;
    let addr = s.meta.addr();
    let r = get(addr, "/v21.0/act_1234567890/campaigns", &[]).await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!((e["code"].as_u64(), e["type"].as_str()), (Some(104), Some("OAuthException")));

    let r = get(addr, "/v21.0/act_1234567890/campaigns?access_token=wrong", &[]).await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["code"], 190);
    assert_eq!(e["message"], "Invalid OAuth access token - Cannot parse access token");
    assert!(e["fbtrace_id"].as_str().unwrap().starts_with('A'));
    assert!(r.header("www-authenticate").is_some());

    let r = get(addr, "/v21.0/act_1234567890/campaigns?access_token=meta-test-token", &[]).await;
    assert_eq!(r.status, 200);
    let r = get(addr, "/v21.0/act_1234567890/campaigns", &[BEARER]).await;
    assert_eq!(r.status, 200);
    let r = send(addr, "POST", &format!("/v21.0/{PAUSED}"), &[FORM], b"name=Spring+Sale&access_token=meta-test-token")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.meta_state().campaign(PAUSED).unwrap().name, "Spring Sale");

    let log = s.meta.requests();
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [400, 400, 200, 200, 200]);
    assert_eq!(log[3].header("authorization"), Some("Bearer meta-test-token"));
    assert_eq!(log[1].query.as_deref(), Some("access_token=wrong"));
}

#[tokio::test]
async fn lists_campaigns_with_fields_and_cursor_paging() {
    let s = start().await;
    let addr = s.meta.addr();
    let first = get(
        addr,
        "/v21.0/act_1234567890/campaigns?fields=id,name,status,effective_status,daily_budget,objective&limit=3",
        &[BEARER],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let v = first.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["id"], OVERSPENDER);
    assert_eq!(data[0]["daily_budget"], "50000");
    assert_eq!(data[0]["effective_status"], "ACTIVE");
    assert_eq!(data[0]["objective"], "OUTCOME_SALES");
    let next = v["paging"]["next"].as_str().expect("next link");
    assert!(next.starts_with(&s.meta.base_url()));
    assert!(v["paging"]["cursors"]["after"].is_string());

    let second = get(addr, &target_of(next), &[BEARER]).await.json();
    let data = second["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], PAUSED);
    assert_eq!(data[0]["status"], "PAUSED");
    assert!(second["paging"].get("next").is_none());
    assert!(second["paging"]["previous"].is_string());

    // Default fields: id only. Status filter.
    let v = get(addr, "/v21.0/act_1234567890/campaigns?effective_status=%5B%22PAUSED%22%5D", &[BEARER]).await.json();
    assert_eq!(v["data"], j!([{"id": PAUSED}]));

    let r = get(addr, "/v21.0/act_999/campaigns", &[BEARER]).await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["code"], 100);
    assert_eq!(e["type"], "GraphMethodException");
    assert!(e["message"].as_str().unwrap().contains("Object with ID 'act_999' does not exist"));

    let r = get(addr, "/v21.0/act_1234567890/campaigns?fields=id,colour", &[BEARER]).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with("(#100)"));

    let v = get(addr, &format!("/v21.0/{OVERSPENDER}?fields=name,daily_budget,status"), &[BEARER]).await.json();
    assert_eq!(v, j!({"name": "Black Friday Retargeting - US", "daily_budget": "50000", "status": "ACTIVE"}));
}

#[tokio::test]
async fn insights_scale_daily_figures_by_preset() {
    let s = start().await;
    let addr = s.meta.addr();
    let fields = "fields=campaign_id,campaign_name,spend,impressions,clicks,ctr,cpc";
    let v = get(addr, &format!("/v21.0/{OVERSPENDER}/insights?{fields}&date_preset=last_7d"), &[BEARER]).await.json();
    let row = &v["data"][0];
    assert_eq!(row["campaign_id"], OVERSPENDER);
    assert_eq!(row["spend"], "12950.00");
    assert_eq!(row["impressions"], "647500");
    assert_eq!(row["clicks"], "10360");
    assert_eq!(row["ctr"], "1.6");
    assert_eq!(row["cpc"], "1.25");
    let (start_day, stop_day) = (row["date_start"].as_str().unwrap(), row["date_stop"].as_str().unwrap());
    assert!(start_day < stop_day && start_day.len() == 10);

    let v = get(addr, &format!("/v21.0/{OVERSPENDER}/insights?fields=spend&date_preset=today"), &[BEARER]).await.json();
    assert_eq!(v["data"][0]["spend"], "1850.00");
    assert_eq!(v["data"][0]["date_start"], v["data"][0]["date_stop"]);
    let v =
        get(addr, &format!("/v21.0/{OVERSPENDER}/insights?fields=spend&date_preset=last_30d"), &[BEARER]).await.json();
    assert_eq!(v["data"][0]["spend"], "55500.00");
    // A campaign that did not deliver has no rows.
    let v = get(addr, &format!("/v21.0/{PAUSED}/insights?date_preset=last_7d"), &[BEARER]).await.json();
    assert_eq!(v["data"], j!([]));

    let v =
        get(addr, &format!("/v21.0/act_1234567890/insights?level=campaign&{fields}&date_preset=yesterday"), &[BEARER])
            .await
            .json();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["campaign_name"], "Q4 Brand Awareness - Video");
    assert_eq!(rows[1]["spend"], "192.40");
    let v =
        get(addr, "/v21.0/act_1234567890/insights?fields=spend,account_id&date_preset=today", &[BEARER]).await.json();
    assert_eq!(v["data"][0]["spend"], "2183.65");
    assert_eq!(v["data"][0]["account_id"], "1234567890");

    let r = get(addr, &format!("/v21.0/{OVERSPENDER}/insights?date_preset=last_century"), &[BEARER]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], 100);
    let r = get(addr, &format!("/v21.0/{OVERSPENDER}/insights?fields=spend,mood"), &[BEARER]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn updates_campaigns_validates_and_replays() {
    let s = start().await;
    let addr = s.meta.addr();
    let path = format!("/v21.0/{OVERSPENDER}");
    let keyed = [BEARER, FORM, ("Idempotency-Key", "pause-bf")];
    let r = send(addr, "POST", &path, &keyed, b"status=PAUSED").await;
    assert_eq!((r.status, r.json()), (200, j!({"success": true})));
    let again = send(addr, "POST", &path, &keyed, b"status=PAUSED").await;
    assert_eq!((again.status, again.body.as_str()), (200, r.body.as_str()));
    assert_eq!(s.meta.side_effects(), 1);
    assert!(s.meta.requests().last().unwrap().deduplicated);
    assert_eq!(s.meta_state().campaign(OVERSPENDER).unwrap().status, "PAUSED");

    let r = json(addr, "POST", &path, &[BEARER], &j!({"daily_budget": "30000"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.meta_state().campaign(OVERSPENDER).unwrap().daily_budget, Some(30000));
    let v = get(addr, &format!("{path}?fields=daily_budget,effective_status"), &[BEARER]).await.json();
    assert_eq!(v, j!({"daily_budget": "30000", "effective_status": "PAUSED"}));

    let r = send(addr, "POST", &path, &[BEARER, FORM], b"status=SLEEPING").await;
    assert_eq!(r.status, 400);
    let e = r.json()["error"].clone();
    assert_eq!(e["message"], "(#100) Param status must be one of {ACTIVE, PAUSED, DELETED, ARCHIVED}");
    assert_eq!((e["code"].as_u64(), e["type"].as_str()), (Some(100), Some("OAuthException")));
    let r = send(addr, "POST", &path, &[BEARER, FORM], b"daily_budget=50").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["error_subcode"], 1_885_272);
    let r = send(addr, "POST", &path, &[BEARER, FORM], b"daily_budget=12.5").await;
    assert_eq!(r.status, 400);
    let r = send(addr, "POST", "/v21.0/120219999999999999", &[BEARER, FORM], b"status=PAUSED").await;
    assert_eq!(r.status, 400);
    let e: Value = r.json()["error"].clone();
    assert_eq!(e["type"], "GraphMethodException");
    assert!(
        e["message"].as_str().unwrap().starts_with("Unsupported post request. Object with ID '120219999999999999'")
    );
    assert_eq!(s.meta.side_effects(), 2);
}
