//! Unit tests for HubSpot request building, decoding and error mapping (native, no network).

use super::*;
use crate::model::{Filter, Operator};

fn search_input(json: Value) -> SearchContactsInput {
    serde_json::from_value(json).unwrap()
}

fn body_json(request: &Request) -> Value {
    serde_json::from_slice(request.body_bytes()).unwrap()
}

#[test]
fn search_body_has_hubspot_shape() {
    let input = search_input(json!({
        "query": "northwind",
        "filters": [
            {"property": "lifecyclestage", "operator": "EQ", "value": "customer"},
            {"property": "phone", "operator": "HAS_PROPERTY"}
        ],
        "properties": ["email", "company"],
        "limit": 5,
        "after": "10"
    }));
    let body = search_contacts_body(&input).unwrap();
    assert_eq!(
        body,
        json!({
            "query": "northwind",
            "filterGroups": [{"filters": [
                {"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"},
                {"propertyName": "phone", "operator": "HAS_PROPERTY"}
            ]}],
            "properties": ["email", "company"],
            "limit": 5,
            "after": "10"
        })
    );
    let request = search_request(Object::Contacts, &body);
    assert_eq!(request.url().unwrap(), "https://api.hubapi.com/crm/v3/objects/contacts/search");
    // A search changes nothing: no idempotency key.
    assert_eq!(request.header_value("idempotency-key"), None);
}

#[test]
fn search_defaults_and_validation() {
    let body = search_contacts_body(&search_input(json!({}))).unwrap();
    assert_eq!(body, json!({"limit": 10}));

    let mut input = search_input(json!({}));
    input.limit = 101;
    assert_eq!(search_contacts_body(&input).unwrap_err().kind(), "invalid-input");

    input.limit = 10;
    input.filters = vec![Filter { property: "email".into(), operator: Operator::Eq, value: None }];
    let error = search_contacts_body(&input).unwrap_err();
    assert!(error.message().contains("needs a `value`"), "{error}");

    input.filters[0].operator = Operator::NotHasProperty;
    input.filters[0].value = Some("x".into());
    assert!(search_contacts_body(&input).unwrap_err().message().contains("takes no `value`"));
}

#[test]
fn get_builds_path_and_properties() {
    let request = get_contact_request("1001", &["email".into(), "phone".into()]).unwrap();
    assert_eq!(request.url().unwrap(), "https://api.hubapi.com/crm/v3/objects/contacts/1001?properties=email%2Cphone");
    assert_eq!(get_contact_request("10/../x", &[]).unwrap_err().kind(), "invalid-input");
}

#[test]
fn create_stamps_the_key_and_forwards_it() {
    let input: CreateContactInput = serde_json::from_value(json!({
        "email": "new@example.com", "firstname": "New", "properties": {"jobtitle": "CTO"}
    }))
    .unwrap();
    let properties = contact_properties(&input, "key-1").unwrap();
    assert_eq!(
        serde_json::to_value(&properties).unwrap(),
        json!({"email": "new@example.com", "firstname": "New", "jobtitle": "CTO",
               "tollgate_idempotency_key": "key-1"})
    );
    let request = create_request(Object::Contacts, &json!({"properties": properties}), "key-1");
    assert_eq!(request.url().unwrap(), "https://api.hubapi.com/crm/v3/objects/contacts");
    assert_eq!(request.header_value("idempotency-key"), Some("key-1"));
    assert_eq!(body_json(&request)["properties"]["email"], "new@example.com");

    let mut sneaky = input.clone();
    sneaky.properties.insert(KEY_PROPERTY.into(), "forged".into());
    assert_eq!(contact_properties(&sneaky, "k").unwrap_err().kind(), "invalid-input");

    let mut bad = input;
    bad.email = "not-an-email".into();
    assert_eq!(contact_properties(&bad, "k").unwrap_err().kind(), "invalid-input");
}

#[test]
fn find_by_key_searches_the_custom_property() {
    let body = find_by_key_body("key-9", &["email".into()]);
    assert_eq!(
        body["filterGroups"][0]["filters"][0],
        json!({"propertyName": "tollgate_idempotency_key", "operator": "EQ", "value": "key-9"})
    );
    assert_eq!(body["limit"], 1);
}

#[test]
fn update_is_a_patch_with_the_key() {
    let properties = BTreeMap::from([("phone".to_owned(), "+1 555".to_owned())]);
    let request = update_contact_request("1002", &properties, "key-2").unwrap();
    assert_eq!(request.method(), tollgate_sdk::http::Method::Patch);
    assert_eq!(request.url().unwrap(), "https://api.hubapi.com/crm/v3/objects/contacts/1002");
    assert_eq!(request.header_value("idempotency-key"), Some("key-2"));
    assert_eq!(body_json(&request), json!({"properties": {"phone": "+1 555"}}));
    assert!(update_contact_request("1002", &BTreeMap::new(), "k").is_err());
}

#[test]
fn note_is_associated_to_the_contact() {
    let input: AddNoteInput = serde_json::from_value(json!({
        "contact_id": "1001", "body": "Called, wants a demo."
    }))
    .unwrap();
    let body = note_body(&input, "key-3", 1_700_000_000_000).unwrap();
    assert_eq!(
        body,
        json!({
            "properties": {
                "hs_note_body": "Called, wants a demo.",
                "hs_timestamp": "1700000000000",
                "tollgate_idempotency_key": "key-3"
            },
            "associations": [{
                "to": {"id": "1001"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]
            }]
        })
    );
    let request = create_request(Object::Notes, &body, "key-3");
    assert_eq!(request.url().unwrap(), "https://api.hubapi.com/crm/v3/objects/notes");

    let mut dated = input.clone();
    dated.timestamp = Some("2025-01-31T09:30:00Z".into());
    assert_eq!(note_body(&dated, "k", 0).unwrap()["properties"]["hs_timestamp"], "2025-01-31T09:30:00Z");
    dated.timestamp = Some("yesterday".into());
    assert_eq!(note_body(&dated, "k", 0).unwrap_err().kind(), "invalid-input");
}

#[test]
fn decodes_objects_and_pages() {
    let response = Response::new(
        200,
        vec![],
        json!({
            "total": 2,
            "results": [{
                "id": "1001",
                "properties": {"email": "ana@x.example", "phone": null, "hs_object_id": "1001"},
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2024-02-01T00:00:00.000Z",
                "archived": false
            }],
            "paging": {"next": {"after": "1", "link": "ignored"}}
        })
        .to_string(),
    );
    let page = parse_search(&response).unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.next_after.as_deref(), Some("1"));
    let contact = &page.records[0];
    assert_eq!(contact.id, "1001");
    assert_eq!(contact.properties.get("email").map(String::as_str), Some("ana@x.example"));
    assert!(!contact.properties.contains_key("phone"), "nulls are dropped");
    assert_eq!(contact.created_at.as_deref(), Some("2024-01-01T00:00:00.000Z"));

    let last = Response::new(200, vec![], r#"{"total":0,"results":[]}"#);
    assert_eq!(parse_search(&last).unwrap().next_after, None);
}

#[test]
fn maps_hubspot_errors() {
    let envelope = |status: u16, category: &str, message: &str| {
        Response::new(
            status,
            vec![],
            json!({"status": "error", "message": message, "correlationId": "c", "category": category}).to_string(),
        )
    };
    let error = error_from_response(&envelope(401, "INVALID_AUTHENTICATION", "no token"));
    assert_eq!(error.kind(), "denied");
    assert!(error.message().contains("no token"));
    assert_eq!(error_from_response(&envelope(403, "MISSING_SCOPES", "scope")).kind(), "denied");
    assert_eq!(error_from_response(&envelope(404, "OBJECT_NOT_FOUND", "gone")).kind(), "not-found");
    let conflict = error_from_response(&envelope(409, "CONFLICT", "Contact already exists. Existing ID: 1001"));
    assert_eq!(conflict.kind(), "invalid-input");
    assert!(conflict.message().contains("Existing ID: 1001"));
    assert_eq!(error_from_response(&envelope(429, "RATE_LIMITS", "slow")).kind(), "retryable");
    assert_eq!(error_from_response(&envelope(502, "X", "bad")).kind(), "retryable");
    let validation = error_from_response(&envelope(400, "VALIDATION_ERROR", "Property x does not exist"));
    assert_eq!(
        validation,
        ToolError::upstream(Some(400), "HubSpot returned HTTP 400: Property x does not exist (VALIDATION_ERROR)")
    );
    let html = error_from_response(&Response::new(503, vec![], "<html>down</html>"));
    assert_eq!(html.kind(), "retryable");
    assert!(html.message().contains("<html>down</html>"));
}
