//! HubSpot CRM search (`POST /crm/v3/objects/{type}/search`): filter groups (OR of ANDs),
//! free-text `query`, sorting and offset paging, with HubSpot's limits and error messages.

use std::cmp::Ordering;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{HubSpotState, ObjectType, Record, View, parse_body, render, unknown_type, validation};
use crate::recorder::{RawBody, lock};
use crate::support::parse_timestamp_ms;

const OPERATORS: &str = "[EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, \
                         NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN]";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    #[serde(default)]
    filter_groups: Vec<FilterGroup>,
    query: Option<String>,
    #[serde(default)]
    properties: Vec<String>,
    limit: Option<i64>,
    after: Option<Value>,
    #[serde(default)]
    sorts: Vec<Value>,
}

#[derive(Deserialize)]
struct FilterGroup {
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    property_name: String,
    operator: String,
    value: Option<Value>,
    high_value: Option<Value>,
    values: Option<Vec<Value>>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Orders a stored value against a filter value: numerically, then as timestamps (ISO or
/// epoch milliseconds), then as case-insensitive text.
fn compare(stored: &str, given: &str) -> Ordering {
    if let (Ok(a), Ok(b)) = (stored.trim().parse::<f64>(), given.trim().parse::<f64>()) {
        return a.partial_cmp(&b).unwrap_or(Ordering::Equal);
    }
    if let (Some(a), Some(b)) = (parse_timestamp_ms(stored), parse_timestamp_ms(given)) {
        return a.cmp(&b);
    }
    stored.to_lowercase().cmp(&given.to_lowercase())
}

/// Glob match (`*` only), case already folded by the caller.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// HubSpot tokenises on whitespace and punctuation; the whole value also counts as a token.
fn contains_token(stored: &str, token: &str) -> bool {
    let (stored, token) = (stored.to_lowercase(), token.to_lowercase());
    glob(&token, &stored)
        || stored.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).any(|t| glob(&token, t))
}

impl Filter {
    fn check(&self) -> Result<(), String> {
        let needs_value = matches!(
            self.operator.as_str(),
            "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "BETWEEN" | "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN"
        );
        match self.operator.as_str() {
            "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => {}
            "IN" | "NOT_IN" if self.values.as_ref().is_none_or(Vec::is_empty) => {
                return Err(format!(
                    "values is required for operator {} on property {}",
                    self.operator, self.property_name
                ));
            }
            "IN" | "NOT_IN" => {}
            _ if needs_value && self.value.as_ref().and_then(scalar).is_none() => {
                return Err(format!(
                    "value is required for operator {} on property {}",
                    self.operator, self.property_name
                ));
            }
            "BETWEEN" if self.high_value.as_ref().and_then(scalar).is_none() => {
                return Err(format!("highValue is required for operator BETWEEN on property {}", self.property_name));
            }
            _ if needs_value => {}
            other => {
                return Err(format!(
                    "Invalid input JSON on line 1, column 1: Cannot deserialize value of type \
                     `com.hubspot.inbounddb.publicobject.core.v2.FilterOperator` from String \
                     \"{other}\": not one of the values accepted for Enum class: {OPERATORS}"
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, r: &Record) -> bool {
        let stored = r.props.get(&self.property_name).map(String::as_str).filter(|v| !v.is_empty());
        let value = self.value.as_ref().and_then(scalar).unwrap_or_default();
        let values = || self.values.iter().flatten().filter_map(scalar);
        match (self.operator.as_str(), stored) {
            ("HAS_PROPERTY", s) => s.is_some(),
            ("NOT_HAS_PROPERTY", s) => s.is_none(),
            ("NEQ", None) | ("NOT_IN", None) | ("NOT_CONTAINS_TOKEN", None) => true,
            (_, None) => false,
            ("EQ", Some(s)) => compare(s, &value).is_eq(),
            ("NEQ", Some(s)) => compare(s, &value).is_ne(),
            ("LT", Some(s)) => compare(s, &value).is_lt(),
            ("LTE", Some(s)) => compare(s, &value).is_le(),
            ("GT", Some(s)) => compare(s, &value).is_gt(),
            ("GTE", Some(s)) => compare(s, &value).is_ge(),
            ("BETWEEN", Some(s)) => {
                let high = self.high_value.as_ref().and_then(scalar).unwrap_or_default();
                compare(s, &value).is_ge() && compare(s, &high).is_le()
            }
            ("IN", Some(s)) => values().any(|v| compare(s, &v).is_eq()),
            ("NOT_IN", Some(s)) => !values().any(|v| compare(s, &v).is_eq()),
            ("CONTAINS_TOKEN", Some(s)) => contains_token(s, &value),
            ("NOT_CONTAINS_TOKEN", Some(s)) => !contains_token(s, &value),
            _ => false,
        }
    }
}

/// `(property, descending)` from `{"propertyName":..,"direction":..}` or `"prop"` / `"-prop"`.
fn parse_sort(v: &Value) -> Result<(String, bool), String> {
    match v {
        Value::String(s) => Ok(match s.strip_prefix('-') {
            Some(p) => (p.to_owned(), true),
            None => (s.clone(), false),
        }),
        Value::Object(o) => {
            let name = o
                .get("propertyName")
                .and_then(Value::as_str)
                .ok_or("Some required fields were not set: [propertyName]")?;
            let desc = match o.get("direction").and_then(Value::as_str) {
                None | Some("ASCENDING") => false,
                Some("DESCENDING") => true,
                Some(other) => return Err(format!("Invalid sort direction {other}")),
            };
            Ok((name.to_owned(), desc))
        }
        _ => Err("Invalid sort".to_owned()),
    }
}

pub(super) async fn search(
    State(s): State<HubSpotState>,
    Path(object_type): Path<String>,
    Extension(RawBody(body)): Extension<RawBody>,
) -> Response {
    let Some(t) = ObjectType::parse(&object_type) else {
        return unknown_type(&object_type);
    };
    let req: SearchRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SearchRequest::default()
    } else {
        match parse_body(&body) {
            Ok(r) => r,
            Err(resp) => return resp,
        }
    };
    let limit = req.limit.unwrap_or(10);
    if !(0..=200).contains(&limit) {
        return validation(format!("limit must be between 0 and 200, got {limit}"));
    }
    let after = match req.after.as_ref().map(scalar) {
        None => 0,
        Some(Some(a)) if a.parse::<usize>().is_ok() => a.parse().unwrap_or(0),
        Some(_) => return validation("after must be a numeric paging cursor"),
    };
    if req.filter_groups.len() > 5 {
        return validation(format!("Number of filterGroups ({}) exceeds the maximum of 5", req.filter_groups.len()));
    }
    let total_filters: usize = req.filter_groups.iter().map(|g| g.filters.len()).sum();
    if total_filters > 18 || req.filter_groups.iter().any(|g| g.filters.len() > 6) {
        return validation("Too many filters: at most 6 per group and 18 in total are allowed");
    }
    if let Err(msg) = req.filter_groups.iter().flat_map(|g| &g.filters).try_for_each(Filter::check) {
        return validation(msg);
    }
    if req.sorts.len() > 1 {
        return validation("Only one sort is supported");
    }
    let sort = match req.sorts.first().map(parse_sort).transpose() {
        Ok(sort) => sort,
        Err(msg) => return validation(msg),
    };
    let needle = req.query.as_deref().map(str::to_lowercase);

    let crm = lock(&s.crm);
    let mut hits: Vec<&Record> = crm
        .table(t)
        .values()
        .filter(|r| {
            req.filter_groups.is_empty() || req.filter_groups.iter().any(|g| g.filters.iter().all(|f| f.matches(r)))
        })
        .filter(|r| match &needle {
            None => true,
            Some(q) => t
                .searchable_props()
                .iter()
                .any(|p| r.props.get(*p).is_some_and(|v| v.to_lowercase().contains(q.as_str()))),
        })
        .collect();
    if let Some((prop, desc)) = &sort {
        hits.sort_by(|a, b| {
            let ord = match (a.props.get(prop), b.props.get(prop)) {
                (Some(x), Some(y)) => compare(x, y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if *desc { ord.reverse() } else { ord }.then(a.id.cmp(&b.id))
        });
    }
    let total = hits.len();
    let limit = usize::try_from(limit).unwrap_or(10);
    let view = if req.properties.is_empty() { View::Default } else { View::Named(&req.properties) };
    let results: Vec<Value> = hits.iter().skip(after).take(limit).map(|r| render(t, r, &view)).collect();
    let mut out = json!({ "total": total, "results": results });
    if after + limit < total && limit > 0 {
        out["paging"] = json!({ "next": { "after": (after + limit).to_string() } });
    }
    Json(out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing_and_tokens() {
        assert!(contains_token("ana.souza@northwind.example", "northwind"));
        assert!(contains_token("ana.souza@northwind.example", "*@northwind.example"));
        assert!(!contains_token("ana.souza@northwind.example", "globex"));
        assert!(contains_token("Head of Operations", "oper*"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abde"));
    }

    #[test]
    fn comparisons() {
        assert!(compare("10", "9").is_gt());
        assert!(compare("Ana", "ana").is_eq());
        assert!(compare("2026-09-01T09:00:00.000Z", "1788253200000").is_eq());
    }
}
