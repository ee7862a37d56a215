//! Approval expressions: the text as the `when` of an approval rule (and as a spend cap's
//! `cost`), compiled under the cost bound, then evaluated against a call whose input is the
//! rest of the data. Whatever the expression, loading refuses it or evaluation returns.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tollgate_workflow::{CallFacts, RunFacts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (expr, input) = text.split_once('\n').unwrap_or((text, "{}"));
    let quoted = toml::Value::String(expr.to_string()).to_string();
    let source = format!(
        "name = \"f\"\nversion = \"1.0.0\"\nentry = \"a\"\n\
         [[policy.approvals]]\ntool = \"*\"\nwhen = {quoted}\naction = \"require_approval\"\n\
         [agents.a]\ninstructions = \"x\"\n"
    );
    let Ok(loaded) = tollgate_workflow::parse(&source, Path::new("fuzz.toml")) else { return };
    let input: serde_json::Value = serde_json::from_str(input).unwrap_or(serde_json::Value::Null);
    let facts = CallFacts {
        plugin: "p",
        tool: "t",
        agent: "a",
        effects: &["write"],
        input: &input,
        run: RunFacts { spend: i64::MAX, steps: u64::MAX, tool_calls: 3 },
    };
    let _ = loaded.policy().approval(&facts);
});
