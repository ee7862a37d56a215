//! HubSpot CRM v3 on the wire: building requests, decoding objects, and mapping HubSpot's error
//! envelope to [`ToolError`]. Pure functions, so they are unit-tested natively; sending is
//! [`send`], the only function here that touches the network.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_sdk::http::{Request, Response};
use tollgate_sdk::prelude::*;

use crate::model::{AddNoteInput, Contact, CreateContactInput, SearchContactsInput};

/// Always the real API: the Tollgate host remaps it to a stand-in in tests.
pub const BASE: &str = "https://api.hubapi.com";

/// Custom property (on contacts and notes) holding the idempotency key of the call that
/// created the record. HubSpot ignores `Idempotency-Key`, so this is how a retried create
/// finds the record its first attempt made.
pub const KEY_PROPERTY: &str = "tollgate_idempotency_key";

/// HubSpot-defined association type "note to contact".
pub const NOTE_TO_CONTACT: u32 = 202;

/// Object types this connector touches.
#[derive(Debug, Clone, Copy)]
pub enum Object {
    Contacts,
    Notes,
}

impl Object {
    fn path(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Notes => "notes",
        }
    }
}

fn objects_url(object: Object) -> String {
    format!("{BASE}/crm/v3/objects/{}", object.path())
}

/// HubSpot ids are numeric; checking here keeps a stray `/` or `?` out of the path.
pub fn check_id(field: &str, id: &str) -> Result<(), ToolError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ToolError::invalid_input(format!("`{field}` must be a numeric HubSpot id, got `{id}`")))
    }
}

/// The body of `POST /crm/v3/objects/contacts/search`.
pub fn search_contacts_body(input: &SearchContactsInput) -> Result<Value, ToolError> {
    if !(1..=100).contains(&input.limit) {
        return Err(ToolError::invalid_input("`limit` must be between 1 and 100"));
    }
    let mut filters = Vec::with_capacity(input.filters.len());
    for (index, filter) in input.filters.iter().enumerate() {
        let mut wire = json!({"propertyName": filter.property, "operator": filter.operator});
        match (&filter.value, filter.operator.takes_value()) {
            (Some(value), true) => wire["value"] = json!(value),
            (None, true) => {
                return Err(ToolError::invalid_input(format!(
                    "filters[{index}]: operator {:?} needs a `value`",
                    filter.operator
                )));
            }
            (Some(_), false) => {
                return Err(ToolError::invalid_input(format!(
                    "filters[{index}]: operator {:?} takes no `value`",
                    filter.operator
                )));
            }
            (None, false) => {}
        }
        filters.push(wire);
    }
    let mut body = json!({"limit": input.limit});
    if let Some(query) = input.query.as_deref().filter(|q| !q.is_empty()) {
        body["query"] = json!(query);
    }
    if !filters.is_empty() {
        body["filterGroups"] = json!([{ "filters": filters }]);
    }
    if !input.properties.is_empty() {
        body["properties"] = json!(input.properties);
    }
    if let Some(after) = &input.after {
        body["after"] = json!(after);
    }
    Ok(body)
}

/// `POST /crm/v3/objects/{object}/search`. Searches change nothing, so they carry no
/// idempotency key.
pub fn search_request(object: Object, body: &Value) -> Request {
    Request::post(format!("{}/search", objects_url(object))).json(body)
}

/// The search that finds a record an earlier attempt of this call created.
pub fn find_by_key_body(key: &str, properties: &[String]) -> Value {
    json!({
        "filterGroups": [{"filters": [{"propertyName": KEY_PROPERTY, "operator": "EQ", "value": key}]}],
        "properties": properties,
        "limit": 1,
    })
}

/// `GET /crm/v3/objects/contacts/{id}`.
pub fn get_contact_request(id: &str, properties: &[String]) -> Result<Request, ToolError> {
    check_id("id", id)?;
    let mut request = Request::get(format!("{}/{id}", objects_url(Object::Contacts)));
    if !properties.is_empty() {
        request = request.query("properties", properties.join(","));
    }
    Ok(request)
}

/// The properties `create_contact` sets, including the idempotency key.
pub fn contact_properties(input: &CreateContactInput, key: &str) -> Result<BTreeMap<String, String>, ToolError> {
    if !input.email.contains('@') {
        return Err(ToolError::invalid_input(format!("`email` is not an email address: `{}`", input.email)));
    }
    let mut properties = input.properties.clone();
    for (name, value) in [
        ("email", Some(&input.email)),
        ("firstname", input.firstname.as_ref()),
        ("lastname", input.lastname.as_ref()),
        ("company", input.company.as_ref()),
    ] {
        if let Some(value) = value {
            properties.insert(name.to_owned(), value.clone());
        }
    }
    reserve_key_property(&mut properties, key)?;
    Ok(properties)
}

/// The `POST /crm/v3/objects/notes` body: the note, stamped with the key, associated to the
/// contact. `now_ms` is used when the input gives no timestamp.
pub fn note_body(input: &AddNoteInput, key: &str, now_ms: u128) -> Result<Value, ToolError> {
    check_id("contact_id", &input.contact_id)?;
    if input.body.trim().is_empty() {
        return Err(ToolError::invalid_input("`body` is empty"));
    }
    let timestamp = match &input.timestamp {
        Some(t) if looks_like_timestamp(t) => t.clone(),
        Some(t) => {
            return Err(ToolError::invalid_input(format!(
                "`timestamp` must be RFC 3339 (2025-01-31T09:30:00Z) or Unix milliseconds, got `{t}`"
            )));
        }
        None => now_ms.to_string(),
    };
    let mut properties =
        BTreeMap::from([("hs_note_body".to_owned(), input.body.clone()), ("hs_timestamp".to_owned(), timestamp)]);
    reserve_key_property(&mut properties, key)?;
    Ok(json!({
        "properties": properties,
        "associations": [{
            "to": {"id": input.contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}],
        }],
    }))
}

/// Sets the key property; a caller-supplied value would defeat retry detection.
fn reserve_key_property(properties: &mut BTreeMap<String, String>, key: &str) -> Result<(), ToolError> {
    if properties.contains_key(KEY_PROPERTY) {
        return Err(ToolError::invalid_input(format!("`{KEY_PROPERTY}` is set by the connector, not by the caller")));
    }
    if !key.is_empty() {
        properties.insert(KEY_PROPERTY.to_owned(), key.to_owned());
    }
    Ok(())
}

/// Unix milliseconds, or something shaped like an RFC 3339 date-time; HubSpot checks the rest.
fn looks_like_timestamp(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    (!b.is_empty() && b.len() <= 16 && b.iter().all(u8::is_ascii_digit))
        || (b.len() >= 20
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T')
}

/// `POST` to create an object. Forwards the call's idempotency key as `Idempotency-Key`;
/// HubSpot itself ignores it (the stand-ins and proxies honour it), hence [`KEY_PROPERTY`].
pub fn create_request(object: Object, body: &Value, key: &str) -> Request {
    Request::post(objects_url(object)).header("idempotency-key", key).json(body)
}

/// `PATCH /crm/v3/objects/contacts/{id}` with the properties to set.
pub fn update_contact_request(
    id: &str,
    properties: &BTreeMap<String, String>,
    key: &str,
) -> Result<Request, ToolError> {
    check_id("id", id)?;
    if properties.is_empty() {
        return Err(ToolError::invalid_input("`properties` is empty: nothing to update"));
    }
    if properties.contains_key(KEY_PROPERTY) {
        return Err(ToolError::invalid_input(format!("`{KEY_PROPERTY}` is managed by the connector")));
    }
    Ok(Request::patch(format!("{}/{id}", objects_url(Object::Contacts)))
        .header("idempotency-key", key)
        .json(&json!({ "properties": properties })))
}

/// Sends `request`; any non-2xx status becomes a [`ToolError`] via [`error_from_response`].
pub fn send(request: Request) -> Result<Response, ToolError> {
    let response = request.send()?;
    if response.is_success() { Ok(response) } else { Err(error_from_response(&response)) }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    message: Option<String>,
    category: Option<String>,
}

/// HubSpot's `{"status":"error","message":…,"category":…}` to a [`ToolError`]: 401/403 →
/// `denied`, 404 → `not_found`, 409 (for example a duplicate email) → `invalid_input`,
/// 429/5xx → `retryable`, other statuses → `upstream`, each with HubSpot's message.
pub fn error_from_response(response: &Response) -> ToolError {
    let status = response.status();
    let detail = match serde_json::from_slice::<ErrorEnvelope>(response.bytes()) {
        Ok(ErrorEnvelope { message: Some(message), category }) => match category {
            Some(category) => format!("{message} ({category})"),
            None => message,
        },
        _ => {
            let text: String = response.text().chars().take(300).collect();
            if text.trim().is_empty() { "no error details".to_owned() } else { text }
        }
    };
    ToolError::from_http_status(status, format!("HubSpot returned HTTP {status}: {detail}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireObject {
    id: String,
    #[serde(default)]
    properties: BTreeMap<String, Value>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<WireObject> for Contact {
    fn from(object: WireObject) -> Self {
        let properties = object
            .properties
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::Null => None,
                Value::String(s) => Some((name, s)),
                other => Some((name, other.to_string())),
            })
            .collect();
        Self { id: object.id, properties, created_at: object.created_at, updated_at: object.updated_at }
    }
}

#[derive(Deserialize)]
struct WireSearch {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    results: Vec<WireObject>,
    paging: Option<WirePaging>,
}

#[derive(Deserialize)]
struct WirePaging {
    next: Option<WireNext>,
}

#[derive(Deserialize)]
struct WireNext {
    after: String,
}

/// A search result page.
pub struct Page {
    pub total: u64,
    pub records: Vec<Contact>,
    pub next_after: Option<String>,
}

/// Decodes one CRM object (contact or note) into the connector's record shape.
pub fn parse_object(response: &Response) -> Result<Contact, ToolError> {
    Ok(response.json::<WireObject>()?.into())
}

pub fn parse_search(response: &Response) -> Result<Page, ToolError> {
    let page: WireSearch = response.json()?;
    Ok(Page {
        total: page.total,
        records: page.results.into_iter().map(Contact::from).collect(),
        next_after: page.paging.and_then(|p| p.next).map(|n| n.after),
    })
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
