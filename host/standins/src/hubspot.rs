//! HubSpot CRM v3 stand-in: contacts and notes under `/crm/v3/objects/{contacts|notes}`.
//!
//! Owns the in-memory CRM ([`HubSpotState`], seeded with six contacts and one note), bearer
//! auth, object rendering, HubSpot's error envelopes and the routing table. Create / read /
//! update and their property validation live in `objects`, the search endpoint in `search`.

mod objects;
mod search;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::recorder::{self, Recorder, lock};
use crate::support::{bearer_token, format_rfc3339_ms, uuid_like};

/// An association from one CRM object to another, as created through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Association {
    /// The target object's id.
    pub to_id: String,
    /// `HUBSPOT_DEFINED` or `USER_DEFINED`.
    pub association_category: String,
    /// e.g. 202 (note → contact).
    pub association_type_id: u32,
}

/// A contact or note as stored (properties include `hs_object_id` and the date properties).
#[derive(Clone, Debug, Serialize)]
pub struct CrmObject {
    /// Numeric string id.
    pub id: String,
    /// Every set property, as strings.
    pub properties: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 last modification time.
    pub updated_at: String,
    /// Associations created from this object.
    pub associations: Vec<Association>,
}

/// The object types this stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectType {
    Contacts,
    Notes,
}

impl ObjectType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "contacts" | "contact" | "0-1" => Some(Self::Contacts),
            "notes" | "note" | "0-46" => Some(Self::Notes),
            _ => None,
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Contacts => "contact",
            Self::Notes => "note",
        }
    }

    fn created_prop(self) -> &'static str {
        match self {
            Self::Contacts => "createdate",
            Self::Notes => "hs_createdate",
        }
    }

    fn modified_prop(self) -> &'static str {
        match self {
            Self::Contacts => "lastmodifieddate",
            Self::Notes => "hs_lastmodifieddate",
        }
    }

    /// Properties returned when the caller names none.
    fn default_props(self) -> &'static [&'static str] {
        match self {
            Self::Contacts => &["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
            Self::Notes => &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
        }
    }

    /// Properties the free-text `query` of a search looks at.
    pub(crate) fn searchable_props(self) -> &'static [&'static str] {
        match self {
            Self::Contacts => &["email", "firstname", "lastname", "company", "phone"],
            Self::Notes => &["hs_note_body"],
        }
    }
}

/// One stored object.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) props: BTreeMap<String, String>,
    created_ms: i64,
    updated_ms: i64,
    associations: Vec<Association>,
}

#[derive(Debug, Default)]
pub(crate) struct Crm {
    contacts: BTreeMap<u64, Record>,
    notes: BTreeMap<u64, Record>,
    next_id: u64,
}

impl Crm {
    pub(crate) fn table(&self, t: ObjectType) -> &BTreeMap<u64, Record> {
        match t {
            ObjectType::Contacts => &self.contacts,
            ObjectType::Notes => &self.notes,
        }
    }

    fn table_mut(&mut self, t: ObjectType) -> &mut BTreeMap<u64, Record> {
        match t {
            ObjectType::Contacts => &mut self.contacts,
            ObjectType::Notes => &mut self.notes,
        }
    }

    fn contact_by_email(&self, email: &str) -> Option<u64> {
        self.contacts
            .values()
            .find(|r| r.props.get("email").is_some_and(|e| e.eq_ignore_ascii_case(email)))
            .map(|r| r.id)
    }

    fn insert(
        &mut self,
        t: ObjectType,
        mut props: BTreeMap<String, String>,
        associations: Vec<Association>,
        at_ms: i64,
    ) -> Record {
        let id = self.next_id;
        self.next_id += 1;
        props.insert("hs_object_id".into(), id.to_string());
        props.insert(t.created_prop().into(), format_rfc3339_ms(at_ms));
        props.insert(t.modified_prop().into(), format_rfc3339_ms(at_ms));
        let record = Record { id, props, created_ms: at_ms, updated_ms: at_ms, associations };
        self.table_mut(t).insert(id, record.clone());
        record
    }
}

/// Handle on the HubSpot stand-in's in-memory CRM (cheap to clone).
#[derive(Clone)]
pub struct HubSpotState {
    crm: Arc<Mutex<Crm>>,
    token: Arc<str>,
    recorder: Recorder,
}

fn is_mutating(method: &Method, path: &str) -> bool {
    match *method {
        Method::POST => !path.ends_with("/search"),
        Method::PATCH | Method::PUT | Method::DELETE => true,
        _ => false,
    }
}

/// Seed contacts, one per line: id|email|firstname|lastname|company|lifecyclestage|phone|jobtitle.
const SEED_CONTACTS: &str = "\
1001|ana.souza@northwind.example|Ana|Souza|Northwind Traders|customer|+1 415 555 0101|Head of Operations
1002|ben.okafor@brightlabs.example|Ben|Okafor|Bright Labs|salesqualifiedlead|+1 212 555 0147|CTO
1003|carla.mendes@globex.example|Carla|Mendes|Globex|lead|+44 20 7946 0958|Marketing Manager
1004|dmitri.ivanov@initech.example|Dmitri|Ivanov|Initech|opportunity|+1 512 555 0199|VP Sales
1005|emma.li@northwind.example|Emma|Li|Northwind Traders|marketingqualifiedlead|+1 415 555 0135|Procurement Lead
1006|farah.haddad@umbrella.example|Farah|Haddad|Umbrella Health|subscriber|+971 4 555 0110|Founder";

const SEED_COLUMNS: [&str; 7] = ["email", "firstname", "lastname", "company", "lifecyclestage", "phone", "jobtitle"];

impl HubSpotState {
    /// A CRM holding the seed contacts (ids 1001–1006) and one note (id 1501, on contact 1001).
    pub(crate) fn seeded(token: String) -> Self {
        let mut crm = Crm { next_id: 1001, ..Crm::default() };
        // 2026-09-01T09:00:00Z, then one contact a day.
        let base_ms = 1_788_253_200_000;
        for (day, line) in (0i64..).zip(SEED_CONTACTS.lines()) {
            let mut cols = line.split('|');
            crm.next_id = cols.next().and_then(|id| id.parse().ok()).unwrap_or(crm.next_id);
            let props = SEED_COLUMNS.iter().zip(cols).map(|(k, v)| ((*k).to_owned(), v.to_owned())).collect();
            let at = base_ms + day * 86_400_000;
            crm.insert(ObjectType::Contacts, props, Vec::new(), at);
        }
        crm.next_id = 1501;
        let note_at = base_ms + 10 * 86_400_000;
        let note_props = [
            ("hs_note_body", "Intro call: interested in the annual plan, wants a security review first."),
            ("hs_timestamp", &format_rfc3339_ms(note_at)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let assoc = vec![Association {
            to_id: "1001".into(),
            association_category: "HUBSPOT_DEFINED".into(),
            association_type_id: 202,
        }];
        crm.insert(ObjectType::Notes, note_props, assoc, note_at);
        crm.next_id = 2001;
        Self { crm: Arc::new(Mutex::new(crm)), token: token.into(), recorder: Recorder::new("hubspot", is_mutating) }
    }

    pub(crate) fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    fn objects(&self, t: ObjectType) -> Vec<CrmObject> {
        lock(&self.crm).table(t).values().map(to_public).collect()
    }

    /// All contacts, by id.
    pub fn contacts(&self) -> Vec<CrmObject> {
        self.objects(ObjectType::Contacts)
    }

    /// All notes, by id.
    pub fn notes(&self) -> Vec<CrmObject> {
        self.objects(ObjectType::Notes)
    }

    /// One contact by id.
    pub fn contact(&self, id: &str) -> Option<CrmObject> {
        let id: u64 = id.parse().ok()?;
        lock(&self.crm).contacts.get(&id).map(to_public)
    }
}

fn to_public(r: &Record) -> CrmObject {
    CrmObject {
        id: r.id.to_string(),
        properties: r.props.clone(),
        created_at: format_rfc3339_ms(r.created_ms),
        updated_at: format_rfc3339_ms(r.updated_ms),
        associations: r.associations.clone(),
    }
}

/// Which properties an object response carries.
pub(crate) enum View<'a> {
    /// The type's default set.
    Default,
    /// Every property that has a value (create / update responses).
    All,
    /// The named ones (null when unset) plus id and dates.
    Named(&'a [String]),
}

pub(crate) fn render(t: ObjectType, r: &Record, view: &View<'_>) -> Value {
    let mut props = Map::new();
    let mut put = |name: &str| {
        let v = r.props.get(name).map_or(Value::Null, |v| json!(v));
        props.insert(name.to_owned(), v);
    };
    match view {
        View::Default => t.default_props().iter().for_each(|p| put(p)),
        View::All => r.props.keys().for_each(|p| put(p)),
        View::Named(names) => {
            for p in [t.created_prop(), t.modified_prop(), "hs_object_id"] {
                put(p);
            }
            names.iter().for_each(|p| put(p));
        }
    }
    json!({
        "id": r.id.to_string(),
        "properties": props,
        "createdAt": format_rfc3339_ms(r.created_ms),
        "updatedAt": format_rfc3339_ms(r.updated_ms),
        "archived": false,
    })
}

/// HubSpot's error envelope.
pub(crate) fn error(status: StatusCode, category: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "status": "error",
        "message": message.into(),
        "correlationId": uuid_like(),
        "category": category,
    });
    (status, Json(body)).into_response()
}

pub(crate) fn validation(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// Parses a JSON request body the way HubSpot reports problems with it.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(validation("Invalid JSON input: a request body was expected, but none found"));
    }
    serde_json::from_slice(body)
        .map_err(|e| validation(format!("Invalid input JSON on line {}, column {}: {e}", e.line(), e.column())))
}

fn unknown_type(s: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "OBJECT_NOT_FOUND", format!("Unable to infer object type from: {s}"))
}

fn not_found(id: &str) -> Response {
    let body = json!({
        "status": "error",
        "message": "Object not found.  objectId are usually numeric.",
        "correlationId": uuid_like(),
        "context": { "id": [id] },
        "category": "OBJECT_NOT_FOUND",
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn auth(State(s): State<HubSpotState>, req: Request, next: Next) -> Response {
    if bearer_token(req.headers()).is_some_and(|t| *t == *s.token) {
        return next.run(req).await;
    }
    error(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and \
         you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

pub(crate) fn router(state: HubSpotState) -> Router {
    let rec = state.recorder();
    Router::new()
        .route("/crm/v3/objects/{object_type}", post(objects::create))
        .route("/crm/v3/objects/{object_type}/search", post(search::search))
        .route("/crm/v3/objects/{object_type}/{id}", get(objects::read).patch(objects::update))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(from_fn_with_state(rec.clone(), recorder::idempotency))
        .layer(from_fn_with_state(state.clone(), auth))
        .layer(from_fn_with_state(rec, recorder::record))
        .with_state(state)
}
