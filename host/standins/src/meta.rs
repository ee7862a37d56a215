//! Meta Marketing API stand-in (Graph API `v21.0` shapes): one ad account with campaigns.
//!
//! Owns the in-memory ad account ([`MetaState`], seeded with four campaigns, one of them far
//! over budget), access-token auth (query / form / JSON `access_token` or a bearer header),
//! Graph error envelopes and the node / edge routes: read an account or a campaign, list
//! campaigns, update a campaign (`POST /{campaign_id}`). Insights reporting lives in
//! `insights`, cursor paging in `paging`.

mod insights;
mod paging;

use paging::page;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::recorder::{self, RawBody, Recorder, lock};
use crate::support::{bearer_token, format_graph_time, now_ms, param, parse_urlencoded, random_token};

/// The seeded ad account's numeric id (address it as `act_1234567890`).
pub const AD_ACCOUNT_ID: &str = "1234567890";
/// The seeded campaign that spends far over its target: `daily_budget` 50000 (US$500/day)
/// against US$1,850/day of spend (US$12,950.00 over `last_7d`).
pub const OVERSPENDING_CAMPAIGN_ID: &str = "120210000000000101";
const ACCOUNT_NAME: &str = "Tollgate Demo Store";

/// One campaign as stored. Money is in minor units (US cents); delivery figures are per day.
#[derive(Clone, Debug, Serialize)]
pub struct Campaign {
    /// Campaign id (numeric string).
    pub id: String,
    /// Owning ad account id, without the `act_` prefix.
    pub account_id: String,
    /// Display name.
    pub name: String,
    /// Configured status: ACTIVE, PAUSED, ARCHIVED or DELETED.
    pub status: String,
    /// e.g. OUTCOME_SALES.
    pub objective: String,
    /// Daily budget in cents.
    pub daily_budget: Option<u64>,
    /// Seeded spend per day in cents (drives insights).
    pub daily_spend_cents: u64,
    /// Seeded impressions per day.
    pub daily_impressions: u64,
    /// Seeded clicks per day.
    pub daily_clicks: u64,
    /// Seeded reach per day.
    pub daily_reach: u64,
    created_ms: i64,
    updated_ms: i64,
}

/// Seed campaigns, one per line: id|name|status|objective|daily budget ¢|spend/day ¢|
/// impressions/day|clicks/day|reach/day. The first one spends $1,850/day against a $500/day
/// budget.
const SEED_CAMPAIGNS: &str = "\
120210000000000101|Black Friday Retargeting - US|ACTIVE|OUTCOME_SALES|50000|185000|92500|1480|41000
120210000000000102|Q4 Brand Awareness - Video|ACTIVE|OUTCOME_AWARENESS|20000|19240|61000|305|38500
120210000000000103|Webinar Lead Gen - November|ACTIVE|OUTCOME_LEADS|15000|14125|18400|412|12900
120210000000000104|Spring Collection Traffic|PAUSED|OUTCOME_TRAFFIC|10000|0|0|0|0";

/// Handle on the Meta stand-in's in-memory ad account (cheap to clone).
#[derive(Clone)]
pub struct MetaState {
    campaigns: Arc<Mutex<Vec<Campaign>>>,
    token: Arc<str>,
    base_url: Arc<str>,
    recorder: Recorder,
}

fn is_mutating(method: &Method, _path: &str) -> bool {
    matches!(*method, Method::POST | Method::DELETE)
}

impl MetaState {
    /// Account `act_1234567890` with the four seed campaigns; `base_url` feeds paging links.
    pub(crate) fn seeded(token: String, base_url: String) -> Self {
        // Created 2026-10-01T16:00:00Z, one campaign a day.
        let base_ms: i64 = 1_790_870_400_000;
        let campaigns = (0i64..)
            .zip(SEED_CAMPAIGNS.lines())
            .map(|(day, line)| {
                let c: Vec<&str> = line.split('|').collect();
                let num = |i: usize| c.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let text = |i: usize| c.get(i).copied().unwrap_or_default().to_owned();
                let at = base_ms + day * 86_400_000;
                Campaign {
                    id: text(0),
                    account_id: AD_ACCOUNT_ID.into(),
                    name: text(1),
                    status: text(2),
                    objective: text(3),
                    daily_budget: Some(num(4)),
                    daily_spend_cents: num(5),
                    daily_impressions: num(6),
                    daily_clicks: num(7),
                    daily_reach: num(8),
                    created_ms: at,
                    updated_ms: at,
                }
            })
            .collect();
        Self {
            campaigns: Arc::new(Mutex::new(campaigns)),
            token: token.into(),
            base_url: base_url.into(),
            recorder: Recorder::new("meta", is_mutating),
        }
    }

    pub(crate) fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Every campaign, deleted ones included.
    pub fn campaigns(&self) -> Vec<Campaign> {
        lock(&self.campaigns).clone()
    }

    /// One campaign by id.
    pub fn campaign(&self, id: &str) -> Option<Campaign> {
        lock(&self.campaigns).iter().find(|c| c.id == id).cloned()
    }
}

/// A Graph API error response.
pub(crate) fn graph_error(code: u32, kind: &str, message: &str, extra: &[(&str, Value)]) -> Response {
    let mut error = Map::new();
    error.insert("message".into(), json!(message));
    error.insert("type".into(), json!(kind));
    error.insert("code".into(), json!(code));
    for (k, v) in extra {
        error.insert((*k).to_owned(), v.clone());
    }
    error.insert("fbtrace_id".into(), json!(random_token("A", 22)));
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}

/// `(#100) ...` parameter error.
pub(crate) fn param_error(message: &str) -> Response {
    graph_error(100, "OAuthException", message, &[])
}

fn unsupported(verb: &str, id: &str) -> Response {
    let message = format!(
        "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due \
         to missing permissions, or does not support this operation. Please read the Graph API \
         documentation at https://developers.facebook.com/docs/graph-api"
    );
    graph_error(100, "GraphMethodException", &message, &[("error_subcode", json!(33))])
}

/// Request parameters: the query string, then (for writes) a form or JSON body.
pub(crate) fn params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let mut out = parse_urlencoded(query.unwrap_or(""));
    if body.is_empty() {
        return out;
    }
    let is_json =
        headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.contains("json"));
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) if is_json || body.starts_with(b"{") => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.push((k, v));
            }
        }
        _ => out.extend(parse_urlencoded(&String::from_utf8_lossy(body))),
    }
    out
}

async fn auth(State(s): State<MetaState>, req: Request, next: Next) -> Response {
    let body = req.extensions().get::<RawBody>().map(|b| b.0.clone()).unwrap_or_default();
    let all = params(req.uri().query(), req.headers(), &body);
    let header_token = bearer_token(req.headers()).or_else(|| {
        let v = req.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
        v.strip_prefix("OAuth ").map(|t| t.trim().to_owned())
    });
    let token = param(&all, "access_token").map(str::to_owned).or(header_token);
    let (code, message, reason) = match token {
        Some(t) if *t == *s.token => return next.run(req).await,
        Some(_) => (190, "Invalid OAuth access token - Cannot parse access token", "invalid_token"),
        None => (104, "An access token is required to request this resource.", "invalid_request"),
    };
    let mut resp = graph_error(code, "OAuthException", message, &[]);
    let www = format!("OAuth \"Facebook Platform\" \"{reason}\" \"{message}\"");
    if let Ok(v) = HeaderValue::from_str(&www) {
        resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    resp
}

pub(crate) fn router(state: MetaState) -> Router {
    let rec = state.recorder();
    Router::new()
        .route("/{version}/{node}", get(read_node).post(update_node))
        .route("/{version}/{node}/{edge}", get(read_edge))
        .fallback(|uri: Uri| async move { param_error_code(2500, &format!("Unknown path components: {}", uri.path())) })
        .layer(from_fn_with_state(rec.clone(), recorder::idempotency))
        .layer(from_fn_with_state(state.clone(), auth))
        .layer(from_fn_with_state(rec, recorder::record))
        .with_state(state)
}

fn param_error_code(code: u32, message: &str) -> Response {
    graph_error(code, "OAuthException", message, &[])
}

fn version_ok(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit()))
}

/// The comma-separated `fields` parameter (empty when absent).
pub(crate) fn fields(p: &[(String, String)]) -> Vec<String> {
    param(p, "fields").unwrap_or("").split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
}

fn effective_status(c: &Campaign) -> &str {
    c.status.as_str()
}

fn render_campaign(c: &Campaign, wanted: &[String]) -> Result<Value, Response> {
    let mut out = Map::new();
    let wanted: Vec<&str> = if wanted.is_empty() { vec!["id"] } else { wanted.iter().map(String::as_str).collect() };
    for f in wanted {
        let v = match f {
            "id" => json!(c.id),
            "name" => json!(c.name),
            "status" | "configured_status" => json!(c.status),
            "effective_status" => json!(effective_status(c)),
            "objective" => json!(c.objective),
            "daily_budget" => match c.daily_budget {
                Some(b) => json!(b.to_string()),
                None => continue,
            },
            "lifetime_budget" => json!("0"),
            "budget_remaining" => {
                let left = c.daily_budget.unwrap_or(0).saturating_sub(c.daily_spend_cents);
                json!(left.to_string())
            }
            "account_id" => json!(c.account_id),
            "created_time" | "start_time" => json!(format_graph_time(c.created_ms)),
            "updated_time" => json!(format_graph_time(c.updated_ms)),
            "buying_type" => json!("AUCTION"),
            "bid_strategy" => json!("LOWEST_COST_WITHOUT_CAP"),
            "special_ad_categories" => json!([]),
            other => {
                return Err(param_error(&format!(
                    "(#100) Tried accessing nonexisting field ({other}) on node type (Campaign)"
                )));
            }
        };
        out.insert(f.to_owned(), v);
    }
    Ok(Value::Object(out))
}

fn render_account(wanted: &[String], campaigns: &[Campaign]) -> Result<Value, Response> {
    let mut out = Map::new();
    let wanted: Vec<&str> =
        if wanted.is_empty() { vec!["id", "account_id"] } else { wanted.iter().map(String::as_str).collect() };
    for f in wanted {
        let v = match f {
            "id" => json!(format!("act_{AD_ACCOUNT_ID}")),
            "account_id" => json!(AD_ACCOUNT_ID),
            "name" => json!(ACCOUNT_NAME),
            "currency" => json!("USD"),
            "timezone_name" => json!("America/Los_Angeles"),
            "account_status" => json!(1),
            "amount_spent" => {
                let total: u64 = campaigns.iter().map(|c| c.daily_spend_cents * 30).sum();
                json!(total.to_string())
            }
            other => {
                return Err(param_error(&format!(
                    "(#100) Tried accessing nonexisting field ({other}) on node type (AdAccount)"
                )));
            }
        };
        out.insert(f.to_owned(), v);
    }
    Ok(Value::Object(out))
}

/// What a path's node id names.
enum Node {
    Account,
    Campaign(Campaign),
}

fn resolve(s: &MetaState, node: &str) -> Option<Node> {
    match node.strip_prefix("act_") {
        Some(id) if id == AD_ACCOUNT_ID => Some(Node::Account),
        Some(_) => None,
        None => s.campaign(node).map(Node::Campaign),
    }
}

async fn read_node(
    State(s): State<MetaState>,
    Path((version, node)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    if !version_ok(&version) {
        return param_error_code(2500, &format!("Unknown path components: /{version}/{node}"));
    }
    let p = parse_urlencoded(query.as_deref().unwrap_or(""));
    let rendered = match resolve(&s, &node) {
        None => return unsupported("get", &node),
        Some(Node::Account) => render_account(&fields(&p), &s.campaigns()),
        Some(Node::Campaign(c)) => render_campaign(&c, &fields(&p)),
    };
    match rendered {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn read_edge(
    State(s): State<MetaState>,
    Path((version, node, edge)): Path<(String, String, String)>,
    uri: Uri,
) -> Response {
    if !version_ok(&version) {
        return param_error_code(2500, &format!("Unknown path components: {}", uri.path()));
    }
    let p = parse_urlencoded(uri.query().unwrap_or(""));
    let (node_type, found) = match resolve(&s, &node) {
        None => return unsupported("get", &node),
        Some(Node::Account) => ("AdAccount", None),
        Some(Node::Campaign(c)) => ("Campaign", Some(c)),
    };
    match (edge.as_str(), found) {
        ("campaigns", None) => list_campaigns(&s, &uri, &p),
        ("insights", None) => insights::account_insights(&s, &uri, &p),
        ("insights", Some(c)) => insights::campaign_insights(&s, &uri, &p, &c),
        (other, _) => {
            param_error(&format!("(#100) Tried accessing nonexisting field ({other}) on node type ({node_type})"))
        }
    }
}

fn list_campaigns(s: &MetaState, uri: &Uri, p: &[(String, String)]) -> Response {
    let statuses: Vec<String> = match param(p, "effective_status") {
        None => vec!["ACTIVE".into(), "PAUSED".into()],
        Some(raw) => serde_json::from_str::<Vec<String>>(raw)
            .unwrap_or_else(|_| raw.split(',').map(|v| v.trim().trim_matches('"').to_owned()).collect()),
    };
    const KNOWN: &[&str] = &["ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"];
    if let Some(bad) = statuses.iter().find(|v| !KNOWN.contains(&v.as_str())) {
        return param_error(&format!(
            "(#100) Param effective_status[0] must be one of {{{}}}, got {bad}",
            KNOWN.join(", ")
        ));
    }
    let wanted = fields(p);
    let mut rows = Vec::new();
    for c in s.campaigns().iter().filter(|c| statuses.contains(&c.status)) {
        match render_campaign(c, &wanted) {
            Ok(v) => rows.push(v),
            Err(r) => return r,
        }
    }
    page(s, uri, p, rows)
}

async fn update_node(
    State(s): State<MetaState>,
    Path((version, node)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Extension(RawBody(body)): Extension<RawBody>,
) -> Response {
    if !version_ok(&version) {
        return param_error_code(2500, &format!("Unknown path components: /{version}/{node}"));
    }
    let Some(Node::Campaign(_)) = resolve(&s, &node) else {
        return unsupported("post", &node);
    };
    let p = params(query.as_deref(), &headers, &body);
    let status = param(&p, "status");
    if let Some(st) = status
        && !["ACTIVE", "PAUSED", "DELETED", "ARCHIVED"].contains(&st)
    {
        return param_error("(#100) Param status must be one of {ACTIVE, PAUSED, DELETED, ARCHIVED}");
    }
    let budget = match param(&p, "daily_budget") {
        None => None,
        Some(raw) => match raw.trim().parse::<u64>() {
            Err(_) => return param_error("(#100) Param daily_budget must be an integer"),
            Ok(b) if b < 100 => {
                return graph_error(
                    100,
                    "OAuthException",
                    "Invalid parameter",
                    &[
                        ("error_subcode", json!(1_885_272)),
                        ("is_transient", json!(false)),
                        ("error_user_title", json!("Budget Too Low")),
                        (
                            "error_user_msg",
                            json!("Your budget is too low. The minimum budget for this campaign is $1.00."),
                        ),
                    ],
                );
            }
            Ok(b) => Some(b),
        },
    };
    let name = param(&p, "name").map(str::to_owned);
    let mut campaigns = lock(&s.campaigns);
    let Some(c) = campaigns.iter_mut().find(|c| c.id == node) else {
        return unsupported("post", &node);
    };
    if c.status == "DELETED" && (status.is_some() || budget.is_some() || name.is_some()) {
        return param_error("(#100) Cannot update a campaign that has been deleted");
    }
    let mut changed = false;
    if let Some(st) = status {
        c.status = st.to_owned();
        changed = true;
    }
    if let Some(b) = budget {
        c.daily_budget = Some(b);
        changed = true;
    }
    if let Some(n) = name {
        c.name = n;
        changed = true;
    }
    if changed {
        c.updated_ms = now_ms();
        drop(campaigns);
        s.recorder.applied();
    }
    Json(json!({ "success": true })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_ok("v21.0"));
        assert!(!version_ok("v21"));
        assert!(!version_ok("21.0"));
    }
}
