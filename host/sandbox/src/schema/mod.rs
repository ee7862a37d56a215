//! JSON Schema checks for tool inputs and outputs. Schemas are compiled once at load; an
//! invalid schema is a manifest error, not a call error.
//!
//! Schemas come from untrusted plugins, so everything they can make the host do is bounded:
//! - at load, [`expansion`] refuses a schema one value location could cost more than
//!   [`MAX_EXPANSION`] subschema evaluations (`allOf`/`$ref` fan-out, recursion that
//!   multiplies per level, in-place `$ref` cycles);
//! - regexes use the linear-time engine, and one plugin's patterns share one compiled-size
//!   budget ([`RegexBudget`], [`REGEX_BUDGET`] in all, at most 1 MiB each);
//! - a check stops at the first violation unless listing more is cheap, and
//!   [`Schema::check_until`] keeps a call's deadline in force: a check that could be slow runs
//!   on a blocking thread the call stops waiting for at its deadline.

mod expansion;

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

/// A compiled JSON Schema, with regexes in the linear-time engine: safe for untrusted schemas.
#[derive(Debug, Clone)]
pub struct Schema {
    validator: Arc<jsonschema::Validator>,
    /// At most this many subschemas are evaluated against one location of a value.
    expansion: u64,
}

/// At most this many violations are listed in one error.
const MAX_LISTED: usize = 5;
/// The most subschema evaluations one location of a value may cost.
pub(crate) const MAX_EXPANSION: u64 = 10_000;
/// Compiled regex bytes all of one plugin's patterns may take together.
pub(crate) const REGEX_BUDGET: usize = 16 << 20;
/// Compiled regex bytes one pattern may take.
const MAX_PATTERN_BYTES: usize = 1 << 20;
/// Above this estimated work (subschema evaluations), a check lists only the first violation.
const LIST_BUDGET: u64 = 100_000;
/// Above this estimated work, [`Schema::check_until`] runs the check on a blocking thread.
const INLINE_BUDGET: u64 = 200_000;

/// How many compiled bytes each pattern of a plugin may take: the plugin's budget shared
/// among all its patterns, so many small patterns cannot add up to gigabytes.
#[derive(Debug, Clone, Copy)]
pub struct RegexBudget {
    per_pattern: usize,
    patterns: usize,
}

impl RegexBudget {
    /// The budget for a plugin whose schemas hold `patterns` patterns in all.
    pub fn shared_by(patterns: usize) -> RegexBudget {
        RegexBudget { per_pattern: (REGEX_BUDGET / patterns.max(1)).min(MAX_PATTERN_BYTES), patterns }
    }

    /// Patterns (`pattern` values and `patternProperties` keys) in a schema document.
    pub fn count_patterns(doc: &Value) -> usize {
        match doc {
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("pattern", Value::String(_)) => 1,
                    ("patternProperties", Value::Object(p)) => {
                        p.len() + p.values().map(Self::count_patterns).sum::<usize>()
                    }
                    _ => Self::count_patterns(v),
                })
                .sum(),
            Value::Array(a) => a.iter().map(Self::count_patterns).sum(),
            _ => 0,
        }
    }
}

/// Why [`Schema::check_until`] did not accept a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckError {
    /// The value violates the schema: each violation with its JSON pointer.
    Invalid(String),
    /// The call's deadline passed before the check finished.
    Deadline,
}

impl Schema {
    /// Compiles `text` (a JSON Schema document) on its own: its patterns share one budget.
    pub fn compile(text: &str) -> Result<Schema, String> {
        let doc = Self::parse(text)?;
        Self::from_doc(&doc, RegexBudget::shared_by(RegexBudget::count_patterns(&doc)))
    }

    /// Parses a schema document: JSON, and an object or a boolean.
    pub fn parse(text: &str) -> Result<Value, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if !(doc.is_object() || doc.is_boolean()) {
            return Err("a JSON Schema must be an object or a boolean".into());
        }
        Ok(doc)
    }

    /// Compiles a parsed schema document under `budget`. Refuses schemas whose validation
    /// could explode before compiling them.
    pub fn from_doc(doc: &Value, budget: RegexBudget) -> Result<Schema, String> {
        let expansion = expansion::analyse(doc, MAX_EXPANSION)?;
        let limit = budget.per_pattern;
        let patterns = jsonschema::PatternOptions::regex().size_limit(limit).dfa_size_limit(limit);
        let validator = jsonschema::options().with_pattern_options(patterns).build(doc).map_err(|e| {
            // jsonschema reports a pattern over its size limit as an invalid regex.
            let text = e.to_string();
            if text.contains("\"regex\"") {
                format!(
                    "not a valid JSON Schema: {text} (a pattern must be valid and within its share of the plugin's \
                     regex budget: {limit} compiled bytes each for {} patterns, {REGEX_BUDGET} in all)",
                    budget.patterns
                )
            } else {
                format!("not a valid JSON Schema: {text}")
            }
        })?;
        Ok(Schema { validator: Arc::new(validator), expansion })
    }

    /// Estimated subschema evaluations for checking `value` (saturating).
    fn cost(&self, value: &Value) -> u64 {
        let cap = u64::MAX / self.expansion.max(1);
        self.expansion.max(1).saturating_mul(count_nodes(value, cap))
    }

    /// Checks `value`, listing each violation with its JSON pointer (`/to/0/email: …`). Stops
    /// at the first violation when listing more could be expensive.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let Err(first) = self.validator.validate(value) else { return Ok(()) };
        if self.cost(value) > LIST_BUDGET {
            return Err(format!("{}; (further violations not listed)", describe(&first)));
        }
        let errors: Vec<String> =
            self.validator.iter_errors(value).take(MAX_LISTED + 1).map(|e| describe(&e)).collect();
        if errors.is_empty() {
            return Err(describe(&first));
        }
        let more = if errors.len() > MAX_LISTED { "; …" } else { "" };
        Err(format!("{}{more}", errors.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join("; ")))
    }

    /// [`Schema::check`] under a call's deadline. A check that could be slow runs on a blocking
    /// thread; at the deadline the call stops waiting for it. (The thread finishes on its own;
    /// the load-time expansion bound limits how long that can take.)
    pub(crate) async fn check_until(&self, value: Arc<Value>, deadline: Instant) -> Result<(), CheckError> {
        if Instant::now() >= deadline {
            return Err(CheckError::Deadline);
        }
        if self.cost(&value) <= INLINE_BUDGET {
            return self.check(&value).map_err(CheckError::Invalid);
        }
        let schema = self.clone();
        let task = tokio::task::spawn_blocking(move || schema.check(&value));
        match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), task).await {
            Ok(Ok(result)) => result.map_err(CheckError::Invalid),
            Ok(Err(join)) => Err(CheckError::Invalid(format!("the schema check failed: {join}"))),
            Err(_) => Err(CheckError::Deadline),
        }
    }
}

fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path().to_string();
    let at = if path.is_empty() { "(root)".to_string() } else { path };
    match const_candidates(e) {
        Some(candidates) => format!("{at}: {} is not one of {candidates}", e.instance()),
        None => format!("{at}: {e}"),
    }
}

/// For a `oneOf`/`anyOf` whose every branch is a `const` (how schemars writes a documented
/// Rust enum): the allowed values, so the error says what to write instead of naming keywords.
fn const_candidates(e: &jsonschema::ValidationError<'_>) -> Option<String> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let (Kind::OneOfNotValid { context } | Kind::AnyOf { context }) = e.kind() else { return None };
    let values: Vec<String> = context
        .iter()
        .map(|branch| match branch.as_slice() {
            [only] => match only.kind() {
                Kind::Constant { expected_value } => Some(expected_value.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!values.is_empty()).then(|| values.join(", "))
}

/// Nodes in `value`, counting up to `cap`.
fn count_nodes(value: &Value, cap: u64) -> u64 {
    let mut n = 0u64;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        n += 1;
        if n >= cap {
            return cap;
        }
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests;
