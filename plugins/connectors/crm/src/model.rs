//! The CRM connector's tool inputs and outputs: what the model sees (as JSON Schema) and gets
//! back. HubSpot's own wire shapes live in `api`.

use std::collections::BTreeMap;

use tollgate_sdk::prelude::*;

fn default_limit() -> u32 {
    10
}

/// Input of `search_contacts`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchContactsInput {
    /// Free text matched against email, first and last name, phone and company.
    #[serde(default)]
    pub query: Option<String>,
    /// Property filters that must all match.
    #[serde(default)]
    #[schemars(length(max = 6))]
    pub filters: Vec<Filter>,
    /// Properties to return (internal names such as `email`, `lifecyclestage`). HubSpot's
    /// default set when omitted.
    #[serde(default)]
    pub properties: Vec<String>,
    /// How many contacts to return, 1 to 100.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    /// Paging cursor: `next_after` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
}

/// One property filter.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Internal property name, for example `email` or `company`.
    pub property: String,
    pub operator: Operator,
    /// The value to compare with; required except for HAS_PROPERTY and NOT_HAS_PROPERTY.
    #[serde(default)]
    pub value: Option<String>,
}

/// A HubSpot search operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operator {
    /// Equal to `value`.
    Eq,
    /// Not equal to `value`.
    Neq,
    /// Contains the whole word `value` (use `*` as a wildcard).
    ContainsToken,
    /// Greater than `value`.
    Gt,
    /// Less than `value`.
    Lt,
    /// The property has any value.
    HasProperty,
    /// The property has no value.
    NotHasProperty,
}

impl Operator {
    pub fn takes_value(self) -> bool {
        !matches!(self, Self::HasProperty | Self::NotHasProperty)
    }
}

/// Input of `get_contact`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetContactInput {
    /// The contact's numeric id.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub id: String,
    /// Properties to return. HubSpot's default set when omitted.
    #[serde(default)]
    pub properties: Vec<String>,
}

/// Input of `create_contact`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContactInput {
    /// Email address; HubSpot keeps it unique across contacts.
    #[schemars(email)]
    pub email: String,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    /// Any other properties, by internal name (values as strings).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Input of `update_contact`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContactInput {
    /// The contact's numeric id.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub id: String,
    /// Properties to set, by internal name (values as strings; an empty string clears).
    #[schemars(extend("minProperties" = 1))]
    pub properties: BTreeMap<String, String>,
}

/// Input of `add_note`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNoteInput {
    /// The numeric id of the contact the note is about.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub contact_id: String,
    /// The note text (HTML allowed).
    #[schemars(length(min = 1))]
    pub body: String,
    /// When the activity happened: RFC 3339 (`2025-01-31T09:30:00Z`) or Unix milliseconds.
    /// Defaults to now.
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Contact {
    pub id: String,
    /// Property values by internal name; unset properties are left out.
    pub properties: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub updated_at: Option<String>,
}

/// Output of `search_contacts`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchContactsOutput {
    /// How many contacts match in total (across pages).
    pub total: u64,
    pub contacts: Vec<Contact>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Output of `create_contact`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedContact {
    #[serde(flatten)]
    pub contact: Contact,
    /// True when this call had already created the contact (a retry) and nothing new was
    /// created.
    pub replayed: bool,
}

/// A note on a contact.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Note {
    pub id: String,
    /// The contact the note is attached to.
    pub contact_id: String,
    /// Property values by internal name (`hs_note_body`, `hs_timestamp`, …).
    pub properties: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub updated_at: Option<String>,
    /// True when this call had already created the note (a retry) and nothing new was created.
    pub replayed: bool,
}
