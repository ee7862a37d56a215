//! The stand-ins' integration tests, one binary: HubSpot, Meta, SendGrid and starting/stopping.

mod common;
mod hubspot;
mod lifecycle;
mod meta;
mod sendgrid;
