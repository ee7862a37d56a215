//! `email`: a Tollgate plugin that sends email through SendGrid v3 Mail Send.
//!
//! This module owns the manifest and the tool function; validation, request shape and error
//! mapping live in [`api`], input and output types in [`model`].

mod api;
mod model;

use tollgate_sdk::prelude::*;

use model::{SendEmailInput, SendEmailOutput};

tollgate_sdk::plugin! {
    name: "email",
    version: env!("CARGO_PKG_VERSION"),
    description: "SendGrid v3 Mail Send: send an email to up to 50 recipients.",
    hosts: ["https://api.sendgrid.com"],
    credentials: [Credential::bearer(
        "sendgrid",
        "api.sendgrid.com",
        "SendGrid API key with the mail.send scope",
    )],
    tools: [
        Tool::new(
            "send_email",
            "Send one email (plain text, optionally HTML) from a verified sender to 1-50 \
             recipients, who all see each other on the To line. Sending is not undoable, and \
             SendGrid does not deduplicate: the call's idempotency key is forwarded as an \
             Idempotency-Key header and in custom_args.tollgate_idempotency_key.",
            send_email,
        )
        .request("POST api.sendgrid.com/v3/mail/send")
        .effects(Effects::SEND_MESSAGE),
    ],
}

fn send_email(ctx: &Context, input: SendEmailInput) -> Result<SendEmailOutput, ToolError> {
    let response = api::send(api::send_request(&input, ctx.idempotency_key())?)?;
    Ok(api::output(&input, &response))
}
