//! What one call of a test run did, kept for the report: the tool, why it was made, its
//! input, its outcome and the sandbox's call report.

use serde_json::Value;
use tollgate_sandbox::{CallError, CallOutcome, CallReport};

/// Why a call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Conformance: an input generated to satisfy the tool's schema.
    Generated,
    /// Conformance: an input generated to break the tool's schema.
    Invalid,
    /// A case of an author's test file.
    Test,
}

#[derive(Debug)]
pub(crate) struct Observation {
    pub tool: String,
    pub source: Source,
    pub input: Value,
    /// The output's size in bytes, or the error's kind and message.
    pub outcome: Result<usize, (String, String)>,
    pub report: CallReport,
    /// Where the call's idempotency key showed up besides a request header: `output`, `log`,
    /// `stdout` or `stderr`.
    pub key_leaked_to: Option<&'static str>,
}

impl Observation {
    pub fn new(tool: &str, source: Source, input: Value, key: &str, outcome: &CallOutcome) -> Observation {
        let output = outcome.result.as_ref().ok().map(|v| v.to_string());
        let result = match &outcome.result {
            Ok(_) => Ok(output.as_ref().map_or(0, String::len)),
            Err(e) => Err((e.kind().to_string(), e.to_string())),
        };
        let r = &outcome.report;
        // Logs first: they are the worse place (they reach the audit trail and operators).
        let key_leaked_to = if r.logs.iter().any(|l| l.message.contains(key) || l.fields.to_string().contains(key)) {
            Some("log")
        } else if r.stdout.contains(key) {
            Some("stdout")
        } else if r.stderr.contains(key) {
            Some("stderr")
        } else if output.as_deref().is_some_and(|o| o.contains(key)) {
            Some("output")
        } else {
            None
        };
        Observation { tool: tool.to_string(), source, input, outcome: result, report: r.clone(), key_leaked_to }
    }
}

/// Error kinds that say the plugin broke, not that it answered: a trap or a limit.
pub(crate) fn is_breakage(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Trap { .. }
            | CallError::StackOverflow
            | CallError::FuelExhausted { .. }
            | CallError::Timeout { .. }
            | CallError::MemoryLimit { .. }
            | CallError::OutputTooLarge { .. }
            | CallError::InvalidOutput { .. }
            | CallError::ValueTooLarge { .. }
    )
}

/// The kind names [`is_breakage`] covers, for outcomes already turned into text.
pub(crate) fn is_breakage_kind(kind: &str) -> bool {
    matches!(
        kind,
        "trap"
            | "stack-overflow"
            | "fuel-exhausted"
            | "timeout"
            | "memory-limit"
            | "output-too-large"
            | "invalid-output"
            | "value-too-large"
    )
}

/// Methods that change state on a server, by HTTP's definition of safe methods.
pub(crate) fn is_mutating(method: &str) -> bool {
    !matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD" | "OPTIONS")
}

/// The value at quantile `q` (0..=1) of `values`, nearest rank; 0 for none.
pub(crate) fn quantile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// A path with its variable-looking segments (numbers, ids with digits, long tokens) as `*`:
/// the shape a request scope would allow.
pub(crate) fn path_pattern(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let digits = seg.chars().filter(char::is_ascii_digit).count();
            // API versions (`v3`, `v19.0`) are part of the shape.
            let version =
                seg.len() > 1 && seg.starts_with('v') && seg[1..].chars().all(|c| c.is_ascii_digit() || c == '.');
            let variable = digits > 0 && digits * 2 >= seg.len().min(8) || seg.len() > 40;
            if !seg.is_empty() && !version && variable { "*" } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Strings anywhere in `input` long enough that seeing one in a log is not a coincidence.
pub(crate) fn input_strings(input: &Value, out: &mut Vec<String>) {
    match input {
        Value::String(s) if s.chars().count() >= 8 => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| input_strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| input_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(quantile(&mut v, 0.5), 3);
        assert_eq!(quantile(&mut v, 0.99), 5);
        assert_eq!(quantile(&mut [], 0.5), 0);
        let mut hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&mut hundred, 0.99), 99);
    }

    #[test]
    fn paths_become_scope_patterns() {
        assert_eq!(path_pattern("/crm/v3/objects/contacts/search"), "/crm/v3/objects/contacts/search");
        assert_eq!(path_pattern("/crm/v3/objects/contacts/12345"), "/crm/v3/objects/contacts/*");
        assert_eq!(path_pattern("/v19.0/act_123456/campaigns"), "/v19.0/*/campaigns");
        assert_eq!(path_pattern("/v3/mail/send"), "/v3/mail/send");
    }
}
