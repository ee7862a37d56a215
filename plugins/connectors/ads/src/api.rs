//! The Meta Graph API (v21.0) on the wire: building requests, decoding campaigns and insights,
//! and mapping Graph's `{"error": {...}}` envelope to [`ToolError`]. Pure functions, unit-tested
//! natively; [`send`] is the only one that touches the network.

use serde::Deserialize;
use tollgate_sdk::http::{Request, Response};
use tollgate_sdk::prelude::*;

use crate::model::{
    Campaign, CampaignInsights, CampaignInsightsInput, ListCampaignsInput, RawInsights, UpdateCampaignInput,
};

/// Always the real API: the Tollgate host remaps it to a stand-in in tests.
pub const BASE: &str = "https://graph.facebook.com/v21.0";

const CAMPAIGN_FIELDS: &str = "id,name,status,effective_status,daily_budget,objective";
const INSIGHT_FIELDS: &str = "campaign_id,campaign_name,spend,impressions,clicks,ctr,cpc";

/// Graph ids are numeric; checking keeps a stray `/` or `?` out of the path.
fn check_id(field: &str, id: &str) -> Result<(), ToolError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ToolError::invalid_input(format!(
            "`{field}` must be numeric (for an ad account, without `act_`), got `{id}`"
        )))
    }
}

/// `GET /act_{id}/campaigns`.
pub fn list_campaigns_request(input: &ListCampaignsInput) -> Result<Request, ToolError> {
    check_id("ad_account_id", &input.ad_account_id)?;
    let mut request =
        Request::get(format!("{BASE}/act_{}/campaigns", input.ad_account_id)).query("fields", CAMPAIGN_FIELDS);
    if let Some(limit) = input.limit {
        if !(1..=100).contains(&limit) {
            return Err(ToolError::invalid_input("`limit` must be between 1 and 100"));
        }
        request = request.query("limit", limit.to_string());
    }
    if let Some(after) = &input.after {
        request = request.query("after", after.clone());
    }
    Ok(request)
}

/// `GET /{campaign_id}/insights` for the preset window.
pub fn insights_request(input: &CampaignInsightsInput) -> Result<Request, ToolError> {
    check_id("campaign_id", &input.campaign_id)?;
    Ok(Request::get(format!("{BASE}/{}/insights", input.campaign_id))
        .query("fields", INSIGHT_FIELDS)
        .query("date_preset", input.date_preset.as_str()))
}

/// `POST /{campaign_id}`, form-encoded, with the call's idempotency key. Meta does not
/// document `Idempotency-Key`, but the update is idempotent by nature (it sets values).
pub fn update_request(input: &UpdateCampaignInput, key: &str) -> Result<Request, ToolError> {
    check_id("campaign_id", &input.campaign_id)?;
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(status) = input.status {
        fields.push(("status", status.as_str().to_owned()));
    }
    if let Some(budget) = input.daily_budget {
        if budget < 100 {
            return Err(ToolError::invalid_input("`daily_budget` is in minor units (cents) and must be at least 100"));
        }
        fields.push(("daily_budget", budget.to_string()));
    }
    if fields.is_empty() {
        return Err(ToolError::invalid_input("give `status`, `daily_budget` or both: there is nothing to update"));
    }
    Ok(Request::post(format!("{BASE}/{}", input.campaign_id)).header("idempotency-key", key).form(&fields))
}

/// Sends `request`; any non-2xx status becomes a [`ToolError`] via [`error_from_response`].
pub fn send(request: Request) -> Result<Response, ToolError> {
    let response = request.send()?;
    if response.is_success() { Ok(response) } else { Err(error_from_response(&response)) }
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    error_user_msg: Option<String>,
    is_transient: Option<bool>,
}

/// Graph answers most failures with HTTP 400 and says what happened in `error.code`, so the
/// code decides first: auth and permission codes → `denied`, "object does not exist"
/// (100/33) → `not_found`, rate limits and transient errors → `retryable`; otherwise the HTTP
/// status decides (401/403 → denied, 404 → not_found, 409 → invalid_input, 429/5xx →
/// retryable, other → upstream). The message is Meta's, preferring the user-facing one.
pub fn error_from_response(response: &Response) -> ToolError {
    let status = response.status();
    let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(response.bytes()) else {
        let text: String = response.text().chars().take(300).collect();
        return ToolError::from_http_status(status, format!("Meta returned HTTP {status}: {text}"));
    };
    let mut message = error.error_user_msg.or(error.message).unwrap_or_else(|| "no error details".to_owned());
    if let Some(code) = error.code {
        message = match error.error_subcode {
            Some(sub) => format!("{message} (code {code}, subcode {sub})"),
            None => format!("{message} (code {code})"),
        };
    }
    let message = format!("Meta returned HTTP {status}: {message}");
    match (error.code, error.error_subcode) {
        (Some(190 | 102 | 104 | 10 | 200..=299), _) => ToolError::denied(message),
        (Some(100), Some(33)) => ToolError::not_found(message),
        (Some(1 | 2 | 4 | 17 | 32 | 341 | 613 | 80_000..=80_014), _) => ToolError::retryable(message),
        _ if error.is_transient == Some(true) => ToolError::retryable(message),
        _ => ToolError::from_http_status(status, message),
    }
}

#[derive(Deserialize)]
struct WireCampaign {
    id: String,
    name: Option<String>,
    status: Option<String>,
    effective_status: Option<String>,
    objective: Option<String>,
    daily_budget: Option<String>,
}

#[derive(Deserialize)]
struct WirePage<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    paging: Option<WirePaging>,
}

#[derive(Deserialize)]
struct WirePaging {
    cursors: Option<WireCursors>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct WireCursors {
    after: Option<String>,
}

/// Campaigns and the cursor of the next page (only when Graph says there is one).
pub fn parse_campaigns(response: &Response) -> Result<(Vec<Campaign>, Option<String>), ToolError> {
    let page: WirePage<WireCampaign> = response.json()?;
    let mut campaigns = Vec::with_capacity(page.data.len());
    for c in page.data {
        let daily_budget = match c.daily_budget.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<u64>()
                    .map_err(|_| ToolError::upstream(None, format!("Meta sent a non-integer daily_budget `{raw}`")))?,
            ),
        };
        campaigns.push(Campaign {
            id: c.id,
            name: c.name,
            status: c.status,
            effective_status: c.effective_status,
            objective: c.objective,
            daily_budget,
        });
    }
    let next_after = page.paging.filter(|p| p.next.is_some()).and_then(|p| p.cursors).and_then(|c| c.after);
    Ok((campaigns, next_after))
}

#[derive(Deserialize)]
struct WireInsight {
    campaign_name: Option<String>,
    date_start: Option<String>,
    date_stop: Option<String>,
    #[serde(flatten)]
    raw: RawInsights,
}

/// The insights row (Graph returns an empty `data` when the campaign did not deliver).
pub fn parse_insights(input: &CampaignInsightsInput, response: &Response) -> Result<CampaignInsights, ToolError> {
    let page: WirePage<WireInsight> = response.json()?;
    let mut out = CampaignInsights {
        campaign_id: input.campaign_id.clone(),
        campaign_name: None,
        date_preset: input.date_preset,
        date_start: None,
        date_stop: None,
        has_delivery: false,
        spend: 0.0,
        impressions: 0,
        clicks: 0,
        ctr: None,
        cpc: None,
        raw: None,
    };
    let Some(row) = page.data.into_iter().next() else {
        return Ok(out);
    };
    let raw = row.raw;
    out.spend = decimal("spend", raw.spend.as_deref())?.unwrap_or(0.0);
    out.impressions = integer("impressions", raw.impressions.as_deref())?;
    out.clicks = integer("clicks", raw.clicks.as_deref())?;
    out.ctr = decimal("ctr", raw.ctr.as_deref())?;
    out.cpc = decimal("cpc", raw.cpc.as_deref())?;
    out.has_delivery = out.spend > 0.0 || out.impressions > 0;
    out.campaign_name = row.campaign_name;
    out.date_start = row.date_start;
    out.date_stop = row.date_stop;
    out.raw = Some(raw);
    Ok(out)
}

fn decimal(field: &str, raw: Option<&str>) -> Result<Option<f64>, ToolError> {
    raw.map(|text| {
        text.trim()
            .parse::<f64>()
            .map_err(|_| ToolError::upstream(None, format!("Meta sent a non-numeric {field} `{text}`")))
    })
    .transpose()
}

fn integer(field: &str, raw: Option<&str>) -> Result<u64, ToolError> {
    raw.map_or(Ok(0), |text| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| ToolError::upstream(None, format!("Meta sent a non-integer {field} `{text}`")))
    })
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
