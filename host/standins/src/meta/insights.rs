//! Meta insights (`GET /{campaign_id}/insights`, `GET /act_{id}/insights?level=...`): scales
//! each campaign's seeded daily delivery over the requested `date_preset` / `time_range`
//! window and renders Graph's string-typed metric rows.

use axum::response::Response;
use http::Uri;
use serde_json::{Map, Value, json};

use super::{ACCOUNT_NAME, AD_ACCOUNT_ID, Campaign, MetaState, fields, page, param_error};
use crate::support::{format_date, now_ms, param, parse_timestamp_ms};

const INSIGHT_FIELDS: &[&str] = &[
    "account_id",
    "account_name",
    "campaign_id",
    "campaign_name",
    "objective",
    "spend",
    "impressions",
    "clicks",
    "ctr",
    "cpc",
    "cpm",
    "reach",
    "frequency",
    "date_start",
    "date_stop",
];

const PRESETS: &[(&str, i64, i64)] = &[
    // (name, first day offset from today, last day offset from today)
    ("today", 0, 0),
    ("yesterday", 1, 1),
    ("last_3d", 3, 1),
    ("last_7d", 7, 1),
    ("last_14d", 14, 1),
    ("last_28d", 28, 1),
    ("last_30d", 30, 1),
    ("last_90d", 90, 1),
];

/// Inclusive day range (days since the epoch, UTC).
#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    stop: i64,
}

impl Window {
    fn days(self) -> u64 {
        u64::try_from(self.stop - self.start + 1).unwrap_or(0)
    }
}

fn window(p: &[(String, String)]) -> Result<Window, Response> {
    let today = now_ms().div_euclid(86_400_000);
    if let Some(raw) = param(p, "time_range") {
        let parsed: Option<(i64, i64)> = serde_json::from_str::<Value>(raw).ok().and_then(|v| {
            let day = |k: &str| {
                let s = v.get(k)?.as_str()?;
                (s.len() == 10).then_some(())?;
                Some(parse_timestamp_ms(s)?.div_euclid(86_400_000))
            };
            Some((day("since")?, day("until")?))
        });
        return match parsed {
            Some((start, stop)) if start <= stop => Ok(Window { start, stop }),
            _ => Err(param_error(
                "(#100) Param time_range must be a JSON object {\"since\":\"YYYY-MM-DD\",\
                 \"until\":\"YYYY-MM-DD\"} with since <= until",
            )),
        };
    }
    let preset = param(p, "date_preset").unwrap_or("last_30d");
    match PRESETS.iter().find(|(name, _, _)| *name == preset) {
        Some((_, first, last)) => Ok(Window { start: today - first, stop: today - last }),
        None => {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _, _)| *n).collect();
            Err(param_error(&format!("(#100) date_preset must be one of the following values: {}", names.join(", "))))
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Totals {
    spend_cents: u64,
    impressions: u64,
    clicks: u64,
    reach: u64,
}

impl Totals {
    fn of(c: &Campaign, days: u64) -> Self {
        Self {
            spend_cents: c.daily_spend_cents * days,
            impressions: c.daily_impressions * days,
            clicks: c.daily_clicks * days,
            reach: c.daily_reach * days,
        }
    }

    fn add(self, o: Self) -> Self {
        Self {
            spend_cents: self.spend_cents + o.spend_cents,
            impressions: self.impressions + o.impressions,
            clicks: self.clicks + o.clicks,
            reach: self.reach + o.reach,
        }
    }
}

/// Up to six decimals, trailing zeros trimmed, as Graph prints ratios.
fn decimal(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn cents_to_units(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn row(campaign: Option<&Campaign>, t: Totals, w: Window, wanted: &[String]) -> Result<Value, Response> {
    let mut out = Map::new();
    let spend = t.spend_cents as f64 / 100.0;
    for f in wanted {
        let v = match f.as_str() {
            "account_id" => json!(AD_ACCOUNT_ID),
            "account_name" => json!(ACCOUNT_NAME),
            "campaign_id" => match campaign {
                Some(c) => json!(c.id),
                None => continue,
            },
            "campaign_name" => match campaign {
                Some(c) => json!(c.name),
                None => continue,
            },
            "objective" => match campaign {
                Some(c) => json!(c.objective),
                None => continue,
            },
            "spend" => json!(cents_to_units(t.spend_cents)),
            "impressions" => json!(t.impressions.to_string()),
            "clicks" => json!(t.clicks.to_string()),
            "reach" => json!(t.reach.to_string()),
            "ctr" if t.impressions > 0 => {
                json!(decimal(t.clicks as f64 * 100.0 / t.impressions as f64))
            }
            "cpc" if t.clicks > 0 => json!(decimal(spend / t.clicks as f64)),
            "cpm" if t.impressions > 0 => json!(decimal(spend * 1000.0 / t.impressions as f64)),
            "frequency" if t.reach > 0 => json!(decimal(t.impressions as f64 / t.reach as f64)),
            "ctr" | "cpc" | "cpm" | "frequency" | "date_start" | "date_stop" => continue,
            other => {
                return Err(param_error(&format!(
                    "(#100) {other} is not valid for fields param. please check \
                     https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ \
                     for all valid values"
                )));
            }
        };
        out.insert(f.clone(), v);
    }
    out.insert("date_start".into(), json!(format_date(w.start)));
    out.insert("date_stop".into(), json!(format_date(w.stop)));
    Ok(Value::Object(out))
}

fn wanted_fields(p: &[(String, String)]) -> Result<Vec<String>, Response> {
    let f = fields(p);
    if let Some(bad) = f.iter().find(|f| !INSIGHT_FIELDS.contains(&f.as_str())) {
        return Err(param_error(&format!(
            "(#100) {bad} is not valid for fields param. please check \
             https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all \
             valid values"
        )));
    }
    Ok(if f.is_empty() { vec!["impressions".into(), "spend".into()] } else { f })
}

/// Insights of one campaign: one row, or no rows when it did not deliver.
pub(super) fn campaign_insights(s: &MetaState, uri: &Uri, p: &[(String, String)], c: &Campaign) -> Response {
    let (w, wanted) = match (window(p), wanted_fields(p)) {
        (Ok(w), Ok(f)) => (w, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let totals = Totals::of(c, w.days());
    let rows = if totals.impressions == 0 {
        Vec::new()
    } else {
        match row(Some(c), totals, w, &wanted) {
            Ok(r) => vec![r],
            Err(r) => return r,
        }
    };
    page(s, uri, p, rows)
}

/// Account insights at `level=account` (one summed row, the default) or `level=campaign`
/// (one row per delivering campaign).
pub(super) fn account_insights(s: &MetaState, uri: &Uri, p: &[(String, String)]) -> Response {
    let (w, wanted) = match (window(p), wanted_fields(p)) {
        (Ok(w), Ok(f)) => (w, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let campaigns = s.campaigns();
    let mut rows = Vec::new();
    match param(p, "level").unwrap_or("account") {
        "account" => {
            let totals = campaigns.iter().map(|c| Totals::of(c, w.days())).fold(Totals::default(), Totals::add);
            if totals.impressions > 0 {
                match row(None, totals, w, &wanted) {
                    Ok(r) => rows.push(r),
                    Err(r) => return r,
                }
            }
        }
        "campaign" => {
            for c in &campaigns {
                let totals = Totals::of(c, w.days());
                if totals.impressions == 0 {
                    continue;
                }
                match row(Some(c), totals, w, &wanted) {
                    Ok(r) => rows.push(r),
                    Err(r) => return r,
                }
            }
        }
        "adset" | "ad" => {
            return param_error("(#100) This stand-in only reports insights at level account or campaign");
        }
        _ => {
            return param_error("(#100) Param level must be one of {ad, adset, campaign, account}");
        }
    }
    page(s, uri, p, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(decimal(1.6), "1.6");
        assert_eq!(decimal(1.0 / 3.0), "0.333333");
        assert_eq!(decimal(2.0), "2");
        assert_eq!(cents_to_units(1_295_000), "12950.00");
        assert_eq!(cents_to_units(5), "0.05");
    }
}
