//! Issue 13 §2: redaction runs before clipping. A secret whose value the cap cuts in half must
//! not escape: before, 23 of a 24-character secret appeared in a log line and the tool error.

use crate::common;

use serde_json::json;
use tollgate_sandbox::{CallError, Limits, SecretSource, ToolError};

const SECRET: &str = "abcdefghijklmnopqrstuvwx";

async fn leak(via: &str, secret: &str, limits: Limits) -> (String, tollgate_sandbox::CallOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s");
    std::fs::write(&file, secret).unwrap();
    let grants = common::misbehave_grants(&[]).secret("demo", SecretSource::File(file)).limits(limits);
    let p = common::load(&common::sandbox(), "misbehave", grants).await;
    let o = common::call(&p, "leak_secret", json!({"name": "demo", "via": via})).await;
    let everything = format!("{:?} {}", o.result, serde_json::to_string(&o.report).unwrap());
    (everything, o)
}

#[tokio::test]
async fn a_log_line_cut_inside_a_secret_is_redacted() {
    // "leaking secret demo: " is 21 bytes: a 44-byte cap cuts the secret after 23 characters.
    let limits = Limits { log_line_bytes: 21 + 23, ..Limits::default() };
    let (everything, o) = leak("log", SECRET, limits).await;
    assert!(!everything.contains(&SECRET[..8]), "secret leaked: {everything}");
    assert_eq!(o.report.logs[0].message, "leaking secret demo: [REDACTED:demo]");
}

#[tokio::test]
async fn stdio_cut_inside_a_secret_is_redacted() {
    // "secret demo=" is 12 bytes: a 35-byte pipe keeps 23 characters of the secret.
    let limits = Limits { stdio_bytes: 12 + 23, ..Limits::default() };
    let (everything, o) = leak("stdout", SECRET, limits).await;
    assert!(!everything.contains(&SECRET[..8]), "secret leaked: {everything}");
    assert_eq!(o.report.stdout, "secret demo=[REDACTED:demo]");
}

#[tokio::test]
async fn a_tool_error_cut_inside_a_secret_is_redacted() {
    // The tool-error cap is 8 KiB; "failed while holding secret demo: " is 34 bytes, so a
    // secret of 8,200 characters is cut after 8,158.
    let secret: String = (0..8_200).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let (everything, o) = leak("error", &secret, Limits::default()).await;
    assert!(!everything.contains(&secret[..64]), "secret leaked ({} bytes)", everything.len());
    match &o.result {
        Err(CallError::Tool(ToolError::Internal { message })) => {
            assert_eq!(message, "failed while holding secret demo: [REDACTED:demo]")
        }
        other => panic!("want the plugin's internal error, got {other:?}"),
    }
}
