//! HubSpot CRM v3 stand-in over real HTTP: auth, search, read, create, update, notes,
//! validation errors, idempotent replay and request recording.

use crate::common;

use common::{get, json, send};
use serde_json::{Value, json as j};
use tollgate_standins::{StandIns, Tokens};

const AUTH: (&str, &str) = ("Authorization", "Bearer hubspot-test-token");

async fn start() -> StandIns {
    StandIns::start(Tokens::default()).await.expect("start")
}

fn ids(v: &Value) -> Vec<String> {
    v["results"].as_array().expect("results").iter().map(|r| r["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn rejects_missing_or_wrong_token_and_records_it() {
    let s = start().await;
    let addr = s.hubspot.addr();
    let none = get(addr, "/crm/v3/objects/contacts/1001", &[]).await;
    assert_eq!(none.status, 401);
    let body = none.json();
    assert_eq!(body["status"], "error");
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    assert!(body["message"].as_str().unwrap().starts_with("Authentication credentials not found"));
    assert_eq!(body["correlationId"].as_str().unwrap().len(), 36);

    let wrong = [("Authorization", "Bearer nope")];
    let r = json(addr, "POST", "/crm/v3/objects/contacts", &wrong, &j!({"properties": {}})).await;
    assert_eq!(r.status, 401);

    let log = s.hubspot.requests();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].status, log[1].status), (401, 401));
    assert_eq!(log[1].header("authorization"), Some("Bearer nope"));
    assert_eq!(s.hubspot.side_effects(), 0);
    assert_eq!(s.hubspot_state().contacts().len(), 6);
}

#[tokio::test]
async fn search_filters_query_sorting_and_paging() {
    let s = start().await;
    let addr = s.hubspot.addr();
    let path = "/crm/v3/objects/contacts/search";
    let search = |body: Value| async move { json(addr, "POST", path, &[AUTH], &body).await };

    let r = search(j!({"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "Ana.Souza@northwind.example"}]}],
        "properties": ["email", "company"]}))
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["total"], 1);
    assert_eq!(ids(&v), ["1001"]);
    let props = &v["results"][0]["properties"];
    assert_eq!(props["company"], "Northwind Traders");
    assert_eq!(props["hs_object_id"], "1001");
    assert!(props["createdate"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("paging").is_none());

    let v = search(j!({"query": "NORTHWIND"})).await.json();
    assert_eq!(ids(&v), ["1001", "1005"]);
    // Default properties when none are named.
    let keys: Vec<&String> = v["results"][0]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]);

    // Groups are OR, filters inside a group are AND.
    let v = search(j!({"filterGroups": [
        {"filters": [{"propertyName": "company", "operator": "CONTAINS_TOKEN", "value": "northwind"},
                     {"propertyName": "lifecyclestage", "operator": "NEQ", "value": "customer"}]},
        {"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "ivanov"}]}]}))
    .await
    .json();
    assert_eq!(ids(&v), ["1004", "1005"]);

    let v = search(j!({"filterGroups": [{"filters": [
        {"propertyName": "hs_object_id", "operator": "GT", "value": 1002},
        {"propertyName": "hs_object_id", "operator": "LT", "value": "1005"}]}]}))
    .await
    .json();
    assert_eq!(ids(&v), ["1003", "1004"]);

    let v = search(j!({"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@northwind.example"}]}]}))
    .await
    .json();
    assert_eq!(v["total"], 2);

    let v = search(j!({"filterGroups": [{"filters": [
        {"propertyName": "fax", "operator": "NOT_HAS_PROPERTY"},
        {"propertyName": "phone", "operator": "HAS_PROPERTY"}]}]}))
    .await
    .json();
    assert_eq!(v["total"], 6);

    let page1 =
        search(j!({"limit": 4, "sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}]})).await.json();
    assert_eq!(ids(&page1), ["1006", "1005", "1004", "1003"]);
    assert_eq!(page1["total"], 6);
    assert_eq!(page1["paging"]["next"]["after"], "4");
    let page2 = search(j!({"limit": 4, "after": "4",
        "sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}]}))
    .await
    .json();
    assert_eq!(ids(&page2), ["1002", "1001"]);
    assert!(page2.get("paging").is_none());

    let bad = search(j!({"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "LIKE", "value": "x"}]}]}))
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["category"], "VALIDATION_ERROR");
    let bad = search(j!({"limit": 500})).await;
    assert_eq!(bad.status, 400);
    let bad = send(addr, "POST", path, &[AUTH], b"{not json").await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().starts_with("Invalid input JSON"));
    // Searches are reads.
    assert_eq!(s.hubspot.side_effects(), 0);
}

#[tokio::test]
async fn read_by_id_or_email_and_not_found() {
    let s = start().await;
    let addr = s.hubspot.addr();
    let r = get(addr, "/crm/v3/objects/contacts/1003?properties=email,company,phone", &[AUTH]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], "1003");
    assert_eq!(v["archived"], false);
    assert_eq!(v["properties"]["company"], "Globex");
    assert!(v["properties"].get("firstname").is_none());
    assert!(v["createdAt"].as_str().unwrap().starts_with("2026-09-03T"));

    let r = get(
        addr,
        "/crm/v3/objects/contacts/emma.li%40northwind.example?idProperty=email&properties=firstname&properties=nickname",
        &[AUTH],
    )
    .await;
    let v = r.json();
    assert_eq!(v["id"], "1005");
    assert_eq!(v["properties"]["firstname"], "Emma");
    assert_eq!(v["properties"]["nickname"], Value::Null);

    let r = get(addr, "/crm/v3/objects/contacts/1001?associations=notes", &[AUTH]).await;
    assert_eq!(r.json()["associations"]["notes"]["results"][0]["id"], "1501");

    let r = get(addr, "/crm/v3/objects/contacts/999", &[AUTH]).await;
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(v["category"], "OBJECT_NOT_FOUND");
    assert_eq!(v["message"], "Object not found.  objectId are usually numeric.");
    let r = get(addr, "/crm/v3/objects/widgets/1", &[AUTH]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn create_update_conflict_and_validation() {
    let s = start().await;
    let addr = s.hubspot.addr();
    let create = |body: Value| async move { json(addr, "POST", "/crm/v3/objects/contacts", &[AUTH], &body).await };
    let r = create(j!({"properties": {"email": "Gil@Acme.example", "firstname": "Gil",
        "lastname": "Moreau", "company": "Acme", "lifecyclestage": "lead", "employees": 40}}))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.parse::<u64>().is_ok());
    assert_eq!(v["properties"]["email"], "gil@acme.example");
    assert_eq!(v["properties"]["employees"], "40");
    assert_eq!(v["properties"]["hs_object_id"], id.as_str());

    let r = create(j!({"properties": {"email": "gil@acme.example"}})).await;
    assert_eq!(r.status, 409);
    let v = r.json();
    assert_eq!(v["category"], "CONFLICT");
    assert_eq!(v["message"], format!("Contact already exists. Existing ID: {id}"));

    let r = create(j!({"properties": {"email": "not-an-email", "lifecyclestage": "prospect"}})).await;
    assert_eq!(r.status, 400);
    let msg = r.json()["message"].as_str().unwrap().to_owned();
    assert!(msg.starts_with("Property values were not valid"), "{msg}");
    assert!(msg.contains("INVALID_EMAIL") && msg.contains("INVALID_OPTION"), "{msg}");
    assert_eq!(create(j!({"firstname": "x"})).await.status, 400);
    assert_eq!(create(j!({"properties": {"hs_object_id": "1"}})).await.status, 400);

    let target = format!("/crm/v3/objects/contacts/{id}");
    let r = json(addr, "PATCH", &target, &[AUTH], &j!({"properties": {"lifecyclestage": "customer", "company": null}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["properties"]["lifecyclestage"], "customer");
    assert!(v["properties"].get("company").is_none());
    let r = json(addr, "PATCH", &target, &[AUTH], &j!({"properties": {"email": "ana.souza@northwind.example"}})).await;
    assert_eq!(r.status, 409);
    let r =
        json(addr, "PATCH", "/crm/v3/objects/contacts/424242", &[AUTH], &j!({"properties": {"firstname": "X"}})).await;
    assert_eq!(r.status, 404);
    let by_email = "/crm/v3/objects/contacts/ben.okafor@brightlabs.example?idProperty=email";
    let r = json(addr, "PATCH", by_email, &[AUTH], &j!({"properties": {"jobtitle": "CEO"}})).await;
    assert_eq!(r.json()["id"], "1002");

    // One create and two updates applied; rejected writes are not side effects.
    assert_eq!(s.hubspot.side_effects(), 3);
    let stored = s.hubspot_state().contact(&id).unwrap();
    assert_eq!(stored.properties["lifecyclestage"], "customer");
    assert_eq!(s.hubspot_state().contact("1002").unwrap().properties["jobtitle"], "CEO");
}

#[tokio::test]
async fn notes_with_associations_search_and_idempotent_replay() {
    let s = start().await;
    let addr = s.hubspot.addr();
    let note = |contact: &str, key: &str| {
        j!({"properties": {"hs_note_body": "Sent the Q4 proposal.", "hs_timestamp": "2026-11-21T10:00:00Z",
                           "tollgate_idempotency_key": key},
            "associations": [{"to": {"id": contact},
                              "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]})
    };
    let headers = [AUTH, ("Idempotency-Key", "note-1")];
    let first = json(addr, "POST", "/crm/v3/objects/notes", &headers, &note("1002", "k-1")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let v = first.json();
    assert_eq!(v["properties"]["hs_timestamp"], "2026-11-21T10:00:00.000Z");
    assert!(v["properties"]["hs_createdate"].is_string());

    let again = json(addr, "POST", "/crm/v3/objects/notes", &headers, &note("1002", "k-1")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(s.hubspot.side_effects(), 1);
    assert_eq!(s.hubspot_state().notes().len(), 2);
    let log = s.hubspot.requests();
    let last = log.last().unwrap();
    assert!(last.deduplicated);
    assert_eq!(last.idempotency_key.as_deref(), Some("note-1"));
    assert!(!log[log.len() - 2].deduplicated);
    assert_eq!(last.header("authorization"), Some("Bearer hubspot-test-token"));

    let stored = s.hubspot_state().notes().pop().unwrap();
    assert_eq!(stored.associations[0].to_id, "1002");
    assert_eq!(stored.associations[0].association_type_id, 202);

    let r = json(
        addr,
        "POST",
        "/crm/v3/objects/notes/search",
        &[AUTH],
        &j!({"filterGroups": [{"filters": [
        {"propertyName": "tollgate_idempotency_key", "operator": "EQ", "value": "k-1"}]}],
        "properties": ["hs_note_body", "tollgate_idempotency_key"]}),
    )
    .await;
    let v = r.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["results"][0]["id"], stored.id.as_str());
    assert_eq!(v["results"][0]["properties"]["hs_note_body"], "Sent the Q4 proposal.");

    let r = json(addr, "POST", "/crm/v3/objects/notes", &[AUTH], &note("999999", "k-2")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["category"], "VALIDATION_ERROR");
    let mut missing_ts = note("1002", "k-3");
    missing_ts["properties"].as_object_mut().unwrap().remove("hs_timestamp");
    let r = json(addr, "POST", "/crm/v3/objects/notes", &[AUTH], &missing_ts).await;
    assert_eq!(r.status, 400);
    assert_eq!(s.hubspot.side_effects(), 1);
}

#[tokio::test]
async fn idempotency_key_is_scoped_and_survives_an_auth_failure() {
    let s = start().await;
    let addr = s.hubspot.addr();
    let body = j!({"properties": {"email": "hana@kite.example"}});
    let key = ("Idempotency-Key", "create-hana");
    let rejected = json(addr, "POST", "/crm/v3/objects/contacts", &[key], &body).await;
    assert_eq!(rejected.status, 401);
    let ok = json(addr, "POST", "/crm/v3/objects/contacts", &[AUTH, key], &body).await;
    assert_eq!(ok.status, 201);
    let id = ok.json()["id"].as_str().unwrap().to_owned();
    // Same key on another route is a different operation.
    let patch = json(
        addr,
        "PATCH",
        &format!("/crm/v3/objects/contacts/{id}"),
        &[AUTH, key],
        &j!({"properties": {"firstname": "Hana"}}),
    )
    .await;
    assert_eq!(patch.status, 200);
    assert!(!s.hubspot.requests().iter().any(|r| r.deduplicated));
    assert_eq!(s.hubspot.side_effects(), 2);
}
