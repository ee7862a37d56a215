//! `crm`: a Tollgate plugin for HubSpot CRM v3 contacts and notes.
//!
//! This module owns the manifest and the tool functions, which orchestrate calls; request
//! shapes and error mapping live in [`api`], input and output types in [`model`].
//!
//! Retried creates: HubSpot does not deduplicate on `Idempotency-Key`, so `create_contact` and
//! `add_note` stamp each new record with the call's idempotency key in the custom property
//! `tollgate_idempotency_key`, and search for that key before creating. A retry of a call whose
//! first attempt succeeded (but whose answer was lost) then returns the existing record with
//! `replayed: true` instead of making a second one.

mod api;
mod model;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tollgate_sdk::prelude::*;

use api::Object;
use model::{
    AddNoteInput, Contact, CreateContactInput, CreatedContact, GetContactInput, Note, SearchContactsInput,
    SearchContactsOutput, UpdateContactInput,
};

tollgate_sdk::plugin! {
    name: "crm",
    version: env!("CARGO_PKG_VERSION"),
    description: "HubSpot CRM v3: search, read, create and update contacts, and add notes to them.",
    hosts: ["https://api.hubapi.com"],
    credentials: [Credential::bearer(
        "hubspot",
        "api.hubapi.com",
        "HubSpot private app token with crm.objects.contacts.read and crm.objects.contacts.write",
    )],
    tools: [
        Tool::new(
            "search_contacts",
            "Search HubSpot contacts by free text (email, name, phone, company) and/or property \
             filters. Returns up to `limit` contacts and a `next_after` cursor for the next page.",
            search_contacts,
        )
        // A search is a POST that only reads.
        .request("POST api.hubapi.com/crm/v3/objects/contacts/search")
        .effects(Effects::READ)
        .idempotent(),
        Tool::new(
            "get_contact",
            "Get one HubSpot contact by its numeric id.",
            get_contact,
        )
        .request("GET api.hubapi.com/crm/v3/objects/contacts/*")
        .effects(Effects::READ)
        .idempotent(),
        Tool::new(
            "create_contact",
            "Create a HubSpot contact. Fails with invalid-input if a contact with that email \
             already exists (search for it instead). Safe to retry: a retry of the same call \
             returns the contact the first attempt created (`replayed: true`).",
            create_contact,
        )
        .request("POST api.hubapi.com/crm/v3/objects/contacts/search")
        .request("POST api.hubapi.com/crm/v3/objects/contacts")
        .effects(Effects::WRITE)
        .idempotent(),
        Tool::new(
            "update_contact",
            "Set properties on an existing HubSpot contact; returns the updated contact.",
            update_contact,
        )
        .request("PATCH api.hubapi.com/crm/v3/objects/contacts/*")
        .effects(Effects::WRITE)
        .idempotent(),
        Tool::new(
            "add_note",
            "Add a note to a HubSpot contact's timeline. Safe to retry: a retry of the same \
             call returns the note the first attempt created (`replayed: true`).",
            add_note,
        )
        .request("POST api.hubapi.com/crm/v3/objects/notes/search")
        .request("POST api.hubapi.com/crm/v3/objects/notes")
        .effects(Effects::WRITE)
        .idempotent(),
    ],
}

fn search_contacts(_ctx: &Context, input: SearchContactsInput) -> Result<SearchContactsOutput, ToolError> {
    let body = api::search_contacts_body(&input)?;
    let page = api::parse_search(&api::send(api::search_request(Object::Contacts, &body))?)?;
    Ok(SearchContactsOutput { total: page.total, contacts: page.records, next_after: page.next_after })
}

fn get_contact(_ctx: &Context, input: GetContactInput) -> Result<Contact, ToolError> {
    let request = api::get_contact_request(&input.id, &input.properties)?;
    api::parse_object(&api::send(request)?)
}

fn create_contact(ctx: &Context, input: CreateContactInput) -> Result<CreatedContact, ToolError> {
    let key = ctx.idempotency_key();
    let properties = api::contact_properties(&input, key)?;
    let names: Vec<String> = properties.keys().cloned().collect();
    if let Some(contact) = find_created(Object::Contacts, key, &names)? {
        return Ok(CreatedContact { contact, replayed: true });
    }
    let body = json!({ "properties": properties });
    let contact = api::parse_object(&api::send(api::create_request(Object::Contacts, &body, key))?)?;
    Ok(CreatedContact { contact, replayed: false })
}

fn update_contact(ctx: &Context, input: UpdateContactInput) -> Result<Contact, ToolError> {
    let request = api::update_contact_request(&input.id, &input.properties, ctx.idempotency_key())?;
    api::parse_object(&api::send(request)?)
}

fn add_note(ctx: &Context, input: AddNoteInput) -> Result<Note, ToolError> {
    let key = ctx.idempotency_key();
    let body = api::note_body(&input, key, now_ms())?;
    let names = ["hs_note_body".to_owned(), "hs_timestamp".to_owned()];
    let (record, replayed) = match find_created(Object::Notes, key, &names)? {
        Some(existing) => (existing, true),
        None => (api::parse_object(&api::send(api::create_request(Object::Notes, &body, key))?)?, false),
    };
    Ok(Note {
        id: record.id,
        contact_id: input.contact_id,
        properties: record.properties,
        created_at: record.created_at,
        updated_at: record.updated_at,
        replayed,
    })
}

/// The record an earlier attempt of this call created, if any (see the module docs). HubSpot's
/// search index lags writes by a few seconds, so a retry within that window can miss it: for
/// contacts the unique email then stops a duplicate (409); for notes it cannot.
fn find_created(object: Object, key: &str, properties: &[String]) -> Result<Option<Contact>, ToolError> {
    if key.is_empty() {
        return Ok(None);
    }
    let body = api::find_by_key_body(key, properties);
    let page = api::parse_search(&api::send(api::search_request(object, &body))?)?;
    Ok(page.records.into_iter().next())
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis())
}
