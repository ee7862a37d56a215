//! The email connector's tool input and output: what the model sees (as JSON Schema) and gets
//! back. SendGrid's wire shapes live in `api`.

use tollgate_sdk::prelude::*;

/// An email address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[schemars(email)]
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Input of `send_email`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEmailInput {
    /// Recipients, 1 to 50, each address once. They all receive one message and see each other
    /// on the To line.
    #[schemars(length(min = 1, max = 50))]
    pub to: Vec<Address>,
    #[schemars(length(min = 1))]
    pub subject: String,
    /// The plain-text body (always sent, also as the fallback for `html`).
    #[schemars(length(min = 1))]
    pub text: String,
    /// An HTML body, sent alongside the text.
    #[serde(default)]
    pub html: Option<String>,
    /// The sender; must be a verified sender of the SendGrid account.
    pub from: Address,
    /// Where replies go, if not to `from`.
    #[serde(default)]
    pub reply_to: Option<Address>,
    /// SendGrid categories for statistics, at most 10.
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub categories: Vec<String>,
}

/// Output of `send_email`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SendEmailOutput {
    /// SendGrid accepted the message for delivery (delivery itself happens later).
    pub accepted: bool,
    /// SendGrid's `X-Message-Id`, to find the message in its activity feed.
    pub message_id: Option<String>,
    /// How many recipients the message was addressed to.
    pub recipients: u32,
}
