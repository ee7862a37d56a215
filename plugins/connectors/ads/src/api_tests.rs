//! Unit tests for Graph request building, decoding and error mapping (native, no network).

use serde_json::{Value, json};
use tollgate_sdk::http::Method;

use super::*;
use crate::model::{CampaignStatus, DatePreset};

fn input<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

#[test]
fn list_campaigns_request_shape() {
    let request = list_campaigns_request(&input(json!({"ad_account_id": "1234567890"}))).unwrap();
    assert_eq!(request.method(), Method::Get);
    assert_eq!(
        request.url().unwrap(),
        "https://graph.facebook.com/v21.0/act_1234567890/campaigns\
         ?fields=id%2Cname%2Cstatus%2Ceffective_status%2Cdaily_budget%2Cobjective"
    );
    let paged = list_campaigns_request(&input(json!({"ad_account_id": "1", "limit": 2, "after": "MQ=="}))).unwrap();
    assert!(paged.url().unwrap().ends_with("&limit=2&after=MQ%3D%3D"));
    for bad in [json!({"ad_account_id": "act_1"}), json!({"ad_account_id": "1", "limit": 0})] {
        let error = list_campaigns_request(&input(bad)).unwrap_err();
        assert_eq!(error.kind(), "invalid-input");
    }
}

#[test]
fn insights_request_defaults_to_last_7d() {
    let parsed: CampaignInsightsInput = input(json!({"campaign_id": "120210000000000101"}));
    assert_eq!(parsed.date_preset, DatePreset::Last7d);
    let request = insights_request(&parsed).unwrap();
    assert_eq!(
        request.url().unwrap(),
        "https://graph.facebook.com/v21.0/120210000000000101/insights\
         ?fields=campaign_id%2Ccampaign_name%2Cspend%2Cimpressions%2Cclicks%2Cctr%2Ccpc\
         &date_preset=last_7d"
    );
    let yesterday: CampaignInsightsInput = input(json!({"campaign_id": "1", "date_preset": "yesterday"}));
    assert!(insights_request(&yesterday).unwrap().url().unwrap().ends_with("date_preset=yesterday"));
    assert!(
        serde_json::from_value::<CampaignInsightsInput>(json!({"campaign_id": "1", "date_preset": "last_90d"}))
            .is_err()
    );
}

#[test]
fn update_is_form_encoded_with_the_key() {
    let parsed: UpdateCampaignInput =
        input(json!({"campaign_id": "120210000000000101", "status": "PAUSED", "daily_budget": 1500}));
    assert_eq!(parsed.status, Some(CampaignStatus::Paused));
    let request = update_request(&parsed, "key-7").unwrap();
    assert_eq!(request.method(), Method::Post);
    assert_eq!(request.url().unwrap(), "https://graph.facebook.com/v21.0/120210000000000101");
    assert_eq!(request.header_value("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header_value("idempotency-key"), Some("key-7"));
    assert_eq!(request.body_bytes(), b"status=PAUSED&daily_budget=1500");

    let nothing: UpdateCampaignInput = input(json!({"campaign_id": "1"}));
    assert!(update_request(&nothing, "k").unwrap_err().message().contains("nothing to update"));
    let cheap: UpdateCampaignInput = input(json!({"campaign_id": "1", "daily_budget": 99}));
    assert_eq!(update_request(&cheap, "k").unwrap_err().kind(), "invalid-input");
}

#[test]
fn parses_campaign_pages() {
    let body = json!({
        "data": [
            {"id": "101", "name": "Black Friday", "status": "ACTIVE", "effective_status": "ACTIVE",
             "daily_budget": "50000", "objective": "OUTCOME_SALES"},
            {"id": "104", "name": "Spring", "status": "PAUSED", "effective_status": "PAUSED",
             "objective": "OUTCOME_TRAFFIC"}
        ],
        "paging": {"cursors": {"before": "MA==", "after": "MQ=="}, "next": "https://graph.facebook.com/..."}
    });
    let (campaigns, next) = parse_campaigns(&Response::new(200, vec![], body.to_string())).unwrap();
    assert_eq!(campaigns.len(), 2);
    assert_eq!(campaigns[0].daily_budget, Some(50_000));
    assert_eq!(campaigns[1].daily_budget, None);
    assert_eq!(next.as_deref(), Some("MQ=="));

    let last = json!({"data": [], "paging": {"cursors": {"before": "MA==", "after": "MA=="}}});
    let (campaigns, next) = parse_campaigns(&Response::new(200, vec![], last.to_string())).unwrap();
    assert!(campaigns.is_empty());
    assert_eq!(next, None, "no `next` link means the last page");
}

#[test]
fn parses_insights_with_numbers_and_raw_strings() {
    let parsed: CampaignInsightsInput = input(json!({"campaign_id": "101"}));
    let body = json!({"data": [{
        "campaign_id": "101", "campaign_name": "Black Friday", "spend": "12950.00",
        "impressions": "647500", "clicks": "10360", "ctr": "1.6", "cpc": "1.25",
        "date_start": "2024-11-20", "date_stop": "2024-11-26"
    }]});
    let insights = parse_insights(&parsed, &Response::new(200, vec![], body.to_string())).unwrap();
    assert!(insights.has_delivery);
    assert!((insights.spend - 12950.0).abs() < 1e-9);
    assert_eq!(insights.impressions, 647_500);
    assert_eq!(insights.clicks, 10_360);
    assert_eq!(insights.ctr, Some(1.6));
    assert_eq!(insights.cpc, Some(1.25));
    assert_eq!(insights.campaign_name.as_deref(), Some("Black Friday"));
    assert_eq!(insights.raw.as_ref().unwrap().spend.as_deref(), Some("12950.00"));
    assert_eq!(insights.date_stop.as_deref(), Some("2024-11-26"));

    let empty = parse_insights(&parsed, &Response::new(200, vec![], r#"{"data":[]}"#)).unwrap();
    assert!(!empty.has_delivery);
    assert_eq!(empty.spend, 0.0);
    assert!(empty.raw.is_none());

    let junk = json!({"data": [{"spend": "lots"}]});
    let error = parse_insights(&parsed, &Response::new(200, vec![], junk.to_string())).unwrap_err();
    assert_eq!(error.kind(), "upstream");
}

#[test]
fn maps_graph_errors_by_code_then_status() {
    let graph = |status: u16, error: Value| {
        error_from_response(&Response::new(status, vec![], json!({ "error": error }).to_string()))
    };
    let token = graph(400, json!({"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190}));
    assert_eq!(token.kind(), "denied");
    assert!(token.message().contains("Invalid OAuth access token (code 190)"));
    assert_eq!(graph(403, json!({"message": "perm", "code": 200})).kind(), "denied");
    let missing = graph(400, json!({"message": "Unsupported get request", "code": 100, "error_subcode": 33}));
    assert_eq!(missing.kind(), "not-found");
    assert_eq!(graph(400, json!({"message": "too many calls", "code": 17})).kind(), "retryable");
    assert_eq!(graph(400, json!({"message": "x", "code": 80_004})).kind(), "retryable");
    assert_eq!(graph(400, json!({"message": "x", "code": 1234, "is_transient": true})).kind(), "retryable");
    let low = graph(
        400,
        json!({
            "message": "Invalid parameter", "code": 100, "error_subcode": 1_885_272,
            "error_user_msg": "Your budget is too low. The minimum budget for this campaign is $1.00."
        }),
    );
    assert_eq!(low.kind(), "upstream");
    assert!(low.message().contains("Your budget is too low"), "{low}");
    assert_eq!(graph(409, json!({"message": "conflict"})).kind(), "invalid-input");
    assert_eq!(graph(500, json!({"message": "oops"})).kind(), "retryable");
    let gateway = error_from_response(&Response::new(502, vec![], "<html>Bad Gateway</html>"));
    assert_eq!(gateway.kind(), "retryable");
}
