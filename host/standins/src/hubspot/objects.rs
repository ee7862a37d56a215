//! HubSpot object create (`POST /crm/v3/objects/{type}`), read and update
//! (`GET` / `PATCH /crm/v3/objects/{type}/{id}`): property validation (names, read-only
//! properties, e-mail syntax, lifecycle stage options, dates), association checks, the
//! duplicate-email conflict, `idProperty` lookups and `associations=` expansion on reads.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    Association, Crm, HubSpotState, ObjectType, Record, View, error, not_found, parse_body, render, unknown_type,
    validation,
};
use crate::recorder::{RawBody, lock};
use crate::support::{format_rfc3339_ms, is_valid_email, now_ms, param, parse_timestamp_ms, parse_urlencoded};

/// One problem in HubSpot's "Property values were not valid" list.
fn prop_error(name: &str, code: &str, message: String) -> Value {
    json!({
        "isValid": false,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    })
}

const LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

/// Validates and normalises input properties. `None` values clear a property (update only).
fn check_properties(
    t: ObjectType,
    input: &Map<String, Value>,
    creating: bool,
) -> Result<BTreeMap<String, Option<String>>, Response> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, value) in input {
        let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            let msg = format!("Property \"{name}\" does not exist");
            problems.push(prop_error(name, "PROPERTY_DOESNT_EXIST", msg));
            continue;
        }
        if ["hs_object_id", t.modified_prop()].contains(&name.as_str()) {
            let msg = format!("\"{name}\" is a read only property; its value cannot be set.");
            problems.push(prop_error(name, "READ_ONLY_VALUE", msg));
            continue;
        }
        let value = match value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                let msg = format!("{other} was not a valid value for property {name}");
                problems.push(prop_error(name, "INVALID_PROPERTY_VALUE", msg));
                continue;
            }
        };
        let value = match (name.as_str(), value) {
            (_, None) => None,
            ("email", Some(v)) if t == ObjectType::Contacts => {
                if !is_valid_email(v.trim()) {
                    let msg = format!("Email address {v} is invalid");
                    problems.push(prop_error(name, "INVALID_EMAIL", msg));
                    continue;
                }
                Some(v.trim().to_ascii_lowercase())
            }
            ("lifecyclestage", Some(v)) if t == ObjectType::Contacts => {
                if !v.is_empty() && !LIFECYCLE_STAGES.contains(&v.as_str()) {
                    let msg = format!("{v} was not one of the allowed options: [{}]", LIFECYCLE_STAGES.join(", "));
                    problems.push(prop_error(name, "INVALID_OPTION", msg));
                    continue;
                }
                Some(v)
            }
            ("hs_timestamp" | "createdate" | "hs_createdate", Some(v)) => match parse_timestamp_ms(&v) {
                Some(ms) => Some(format_rfc3339_ms(ms)),
                None => {
                    let msg = format!("{v} was not a valid long or ISO 8601 date.");
                    problems.push(prop_error(name, "INVALID_DATE", msg));
                    continue;
                }
            },
            (_, v) => v,
        };
        out.insert(name.clone(), value);
    }
    if creating && t == ObjectType::Notes && !matches!(out.get("hs_timestamp"), Some(Some(_))) {
        let msg = "hs_timestamp is required".to_owned();
        problems.push(prop_error("hs_timestamp", "REQUIRED_PROPERTY", msg));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        let list = serde_json::to_string(&problems).unwrap_or_default();
        Err(validation(format!("Property values were not valid: {list}")))
    }
}

fn properties_of(body: &Value) -> Result<&Map<String, Value>, Response> {
    match body.get("properties") {
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(validation(
            "Invalid input JSON on line 1, column 15: Cannot deserialize value of type \
             `java.util.HashMap<java.lang.String,java.lang.String>` from non-object value",
        )),
        None => {
            Err(validation("Invalid input JSON on line 1, column 2: Some required fields were not set: [properties]"))
        }
    }
}

/// Association type ids this stand-in knows: (from, type id) → target type.
fn association_target(from: ObjectType, type_id: u64) -> Option<ObjectType> {
    match (from, type_id) {
        (ObjectType::Notes, 202) => Some(ObjectType::Contacts),
        (ObjectType::Contacts, 201) => Some(ObjectType::Notes),
        _ => None,
    }
}

fn check_associations(crm: &Crm, t: ObjectType, body: &Value) -> Result<Vec<Association>, Response> {
    let Some(list) = body.get("associations") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(validation("Invalid input JSON: associations must be an array"));
    };
    let mut out = Vec::new();
    for a in list {
        let to_id = match a.pointer("/to/id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(validation("Invalid input JSON: Some required fields were not set: [to]"));
            }
        };
        let types = a.get("types").and_then(Value::as_array).filter(|v| !v.is_empty());
        let Some(types) = types else {
            return Err(validation("Invalid input JSON: Some required fields were not set: [types]"));
        };
        for ty in types {
            let category = ty.get("associationCategory").and_then(Value::as_str).unwrap_or_default();
            let type_id = ty.get("associationTypeId").and_then(Value::as_u64);
            let (Some(type_id), true) = (type_id, category == "HUBSPOT_DEFINED") else {
                return Err(validation(format!(
                    "Invalid association type: category {category:?} with id {}",
                    ty.get("associationTypeId").unwrap_or(&Value::Null)
                )));
            };
            let Some(target) = association_target(t, type_id) else {
                return Err(validation(format!(
                    "{type_id} is not a valid association type id for {} associations",
                    t.singular()
                )));
            };
            let exists = to_id.parse::<u64>().is_ok_and(|id| crm.table(target).contains_key(&id));
            if !exists {
                return Err(validation(format!(
                    "One or more associations are invalid: {} with ID {to_id} does not exist.",
                    target.singular()
                )));
            }
            out.push(Association {
                to_id: to_id.clone(),
                association_category: category.to_owned(),
                association_type_id: u32::try_from(type_id).unwrap_or(u32::MAX),
            });
        }
    }
    Ok(out)
}

fn conflict(existing: u64) -> Response {
    error(StatusCode::CONFLICT, "CONFLICT", format!("Contact already exists. Existing ID: {existing}"))
}

pub(super) async fn create(
    State(s): State<HubSpotState>,
    Path(object_type): Path<String>,
    Extension(RawBody(body)): Extension<RawBody>,
) -> Response {
    let Some(t) = ObjectType::parse(&object_type) else {
        return unknown_type(&object_type);
    };
    let body: Value = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let props = match properties_of(&body).and_then(|p| check_properties(t, p, true)) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut crm = lock(&s.crm);
    let associations = match check_associations(&crm, t, &body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if t == ObjectType::Contacts
        && let Some(Some(email)) = props.get("email")
        && let Some(existing) = crm.contact_by_email(email)
    {
        return conflict(existing);
    }
    let props = props.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    let record = crm.insert(t, props, associations, now_ms());
    drop(crm);
    s.recorder.applied();
    (StatusCode::CREATED, Json(render(t, &record, &View::All))).into_response()
}

/// Resolves `{id}` (or the `idProperty` value) to a stored id.
fn resolve(crm: &Crm, t: ObjectType, id: &str, query: &[(String, String)]) -> Option<u64> {
    match param(query, "idProperty") {
        Some("email") if t == ObjectType::Contacts => crm.contact_by_email(id),
        Some("hs_object_id") | None => id.parse().ok().filter(|n| crm.table(t).contains_key(n)),
        Some(other) => crm.table(t).values().find(|r| r.props.get(other).is_some_and(|v| v == id)).map(|r| r.id),
    }
}

/// `properties=a,b` and/or repeated `properties=a&properties=b`.
fn requested_properties(query: &[(String, String)]) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn read(
    State(s): State<HubSpotState>,
    Path((object_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(t) = ObjectType::parse(&object_type) else {
        return unknown_type(&object_type);
    };
    let query = parse_urlencoded(query.as_deref().unwrap_or(""));
    let crm = lock(&s.crm);
    let Some(record) = resolve(&crm, t, &id, &query).and_then(|n| crm.table(t).get(&n)) else {
        return not_found(&id);
    };
    let names = requested_properties(&query);
    let view = if names.is_empty() { View::Default } else { View::Named(&names) };
    let mut out = render(t, record, &view);
    if let Some(wanted) = param(&query, "associations") {
        out["associations"] = associations_of(&crm, t, record, wanted);
    }
    Json(out).into_response()
}

/// The `associations` block of a read, for `associations=contacts` / `associations=notes`.
fn associations_of(crm: &Crm, t: ObjectType, record: &Record, wanted: &str) -> Value {
    let mut out = Map::new();
    for other in wanted.split(',').filter_map(ObjectType::parse) {
        let mut ids: Vec<String> = record
            .associations
            .iter()
            .filter(|a| association_target(t, u64::from(a.association_type_id)) == Some(other))
            .map(|a| a.to_id.clone())
            .collect();
        let me = record.id.to_string();
        for r in crm.table(other).values() {
            let back = r
                .associations
                .iter()
                .any(|a| a.to_id == me && association_target(other, u64::from(a.association_type_id)) == Some(t));
            if back {
                ids.push(r.id.to_string());
            }
        }
        ids.sort();
        ids.dedup();
        let kind = format!("{}_to_{}", t.singular(), other.singular());
        let results: Vec<Value> = ids.iter().map(|id| json!({ "id": id, "type": kind })).collect();
        let key = match other {
            ObjectType::Contacts => "contacts",
            ObjectType::Notes => "notes",
        };
        out.insert(key.into(), json!({ "results": results }));
    }
    Value::Object(out)
}

pub(super) async fn update(
    State(s): State<HubSpotState>,
    Path((object_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Extension(RawBody(body)): Extension<RawBody>,
) -> Response {
    let Some(t) = ObjectType::parse(&object_type) else {
        return unknown_type(&object_type);
    };
    let query = parse_urlencoded(query.as_deref().unwrap_or(""));
    let body: Value = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let changes = match properties_of(&body).and_then(|p| check_properties(t, p, false)) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut crm = lock(&s.crm);
    let Some(n) = resolve(&crm, t, &id, &query) else {
        return not_found(&id);
    };
    if t == ObjectType::Contacts
        && let Some(Some(email)) = changes.get("email")
        && let Some(existing) = crm.contact_by_email(email).filter(|e| *e != n)
    {
        return conflict(existing);
    }
    let at = now_ms();
    let Some(record) = crm.table_mut(t).get_mut(&n) else {
        return not_found(&id);
    };
    for (k, v) in changes {
        match v {
            Some(v) => record.props.insert(k, v),
            None => record.props.remove(&k),
        };
    }
    record.updated_ms = at;
    record.props.insert(t.modified_prop().into(), format_rfc3339_ms(at));
    let out = render(t, record, &View::All);
    drop(crm);
    s.recorder.applied();
    Json(out).into_response()
}
