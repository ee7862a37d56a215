//! The providers' integration tests, one binary: each provider against a local server speaking
//! the vendor's wire format, and scripted replay.

mod anthropic;
mod common;
mod openai;
mod scripted;
