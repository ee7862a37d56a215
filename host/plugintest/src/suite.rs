//! Authors' test files: `NAME.test.toml` (or `NAME.test.json`) in a plugin project's `tests/`
//! folder, each a list of cases run in order against one fresh kv namespace (so state a case
//! writes is there for the next), with their HTTP exchanges in `NAME.cassette.json` beside it.
//!
//! ```toml
//! [kv]                      # optional: the namespace's state before the first case
//! "seen:42" = "yes"
//!
//! [[case]]
//! name = "finds a contact by email"
//! tool = "search_contacts"
//! input = { email = "ada@example.com" }
//! expect.output_includes = { total = 1 }   # or `output` (exact), or `error` (a kind)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::TestError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub tool: String,
    #[serde(default = "empty_object")]
    pub input: Value,
    #[serde(default)]
    pub expect: Expect,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// What a case expects. With none of these set, any typed outcome passes (a smoke test) but a
/// trap or a limit still fails.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The output, exactly (as JSON values).
    pub output: Option<Value>,
    /// Every key and value given appears in the output (objects recursively; arrays exactly).
    pub output_includes: Option<Value>,
    /// The error kind, as `tollgate plugin call` prints it (`tool-not-found`, `invalid-input`, …).
    pub error: Option<String>,
    /// Text the error message contains.
    pub message_includes: Option<String>,
}

/// A test file, read and checked; `cassette` is where its exchanges live.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub cassette: PathBuf,
    pub file: TestFile,
}

/// The test files in `dir`, sorted by name, or `path` itself when it is a file.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, TestError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| TestError::io(path, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.toml") || n.ends_with(".test.json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub fn load(path: &Path) -> Result<Loaded, TestError> {
    let text = std::fs::read_to_string(path).map_err(|e| TestError::io(path, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let file: TestFile = if name.ends_with(".json") {
        serde_json::from_str(&text).map_err(|e| TestError::Format {
            file: path.display().to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?
    } else {
        toml::from_str(&text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
            TestError::Format { file: path.display().to_string(), line, column, message: e.message().to_string() }
        })?
    };
    let format = |message: String| TestError::Format { file: path.display().to_string(), line: 1, column: 1, message };
    if file.cases.is_empty() {
        return Err(format("no `[[case]]`: a test file has at least one case".to_string()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for case in &file.cases {
        if !seen.insert(case.name.as_str()) {
            return Err(format(format!("two cases are named `{}`: names label cassette exchanges", case.name)));
        }
        let e = &case.expect;
        if e.error.is_some() && (e.output.is_some() || e.output_includes.is_some()) {
            return Err(format(format!("case `{}` expects both an output and an error", case.name)));
        }
    }
    let stem = name.trim_end_matches(".toml").trim_end_matches(".json").trim_end_matches(".test");
    let cassette = path.with_file_name(format!("{stem}.cassette.json"));
    Ok(Loaded { path: path.to_path_buf(), cassette, file })
}

/// Why `got` (the output, or the error kind and message) does not meet `expect`; `None` when it does.
pub fn check(expect: &Expect, got: &Result<Value, (String, String)>) -> Option<String> {
    match (got, &expect.error) {
        (Ok(output), Some(kind)) => Some(format!("expected error `{kind}`, got output {output}")),
        (Err((kind, message)), None) if expect.output.is_some() || expect.output_includes.is_some() => {
            Some(format!("expected an output, got error `{kind}`: {message}"))
        }
        (Err((kind, message)), expected) => {
            if let Some(want) = expected
                && want != kind
            {
                return Some(format!("expected error `{want}`, got `{kind}`: {message}"));
            }
            match &expect.message_includes {
                Some(text) if !message.contains(text.as_str()) => {
                    Some(format!("error message does not contain {text:?}: {message}"))
                }
                _ => None,
            }
        }
        (Ok(output), None) => {
            if let Some(want) = &expect.output
                && want != output
            {
                return Some(format!("output differs:\n  expected {want}\n  got      {output}"));
            }
            if let Some(want) = &expect.output_includes
                && let Some(path) = missing(want, output, String::new())
            {
                return Some(format!("output does not include {path}: got {output}"));
            }
            None
        }
    }
}

/// The first place where `want` is not included in `got`, as a JSON pointer with the value.
fn missing(want: &Value, got: &Value, at: String) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| match g.get(k) {
            None => Some(format!("{at}/{k} (absent)")),
            Some(gv) => missing(wv, gv, format!("{at}/{k}")),
        }),
        _ if want == got => None,
        _ => Some(format!("{} = {want}", if at.is_empty() { "/" } else { &at })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expectations() {
        let exp = |v: Value| serde_json::from_value::<Expect>(v).unwrap();
        let ok = |v: Value| Ok::<Value, (String, String)>(v);
        let err = |k: &str, m: &str| Err::<Value, _>((k.to_string(), m.to_string()));
        assert_eq!(check(&exp(json!({"output": {"a": 1}})), &ok(json!({"a": 1}))), None);
        assert!(check(&exp(json!({"output": {"a": 1}})), &ok(json!({"a": 1, "b": 2}))).is_some());
        let inc = exp(json!({"output_includes": {"a": {"b": 1}}}));
        assert_eq!(check(&inc, &ok(json!({"a": {"b": 1, "c": 2}, "d": 3}))), None);
        assert!(check(&inc, &ok(json!({"a": {"b": 2}}))).unwrap().contains("/a/b = 1"));
        assert!(check(&inc, &ok(json!({"x": 1}))).unwrap().contains("/a (absent)"));
        let e = exp(json!({"error": "tool-not-found", "message_includes": "no contact"}));
        assert_eq!(check(&e, &err("tool-not-found", "no contact with id 7")), None);
        assert!(check(&e, &err("tool-upstream", "no contact")).unwrap().contains("expected error `tool-not-found`"));
        assert!(check(&e, &err("tool-not-found", "gone")).unwrap().contains("does not contain"));
        assert!(check(&e, &ok(json!({}))).unwrap().contains("got output"));
        // A smoke case: any typed outcome.
        assert_eq!(check(&Expect::default(), &err("tool-upstream", "x")), None);
        assert!(check(&exp(json!({"output_includes": {}})), &err("trap", "x")).is_some());
    }

    #[test]
    fn files_are_checked_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("search.test.toml");
        std::fs::write(
            &path,
            "[[case]]\nname = \"a\"\ntool = \"t\"\ninput = { q = 1 }\nexpect.output_includes = { n = 1 }\n",
        )
        .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.cassette, dir.path().join("search.cassette.json"));
        assert_eq!(loaded.file.cases[0].input, json!({"q": 1}));
        std::fs::write(&path, "[[case]]\nname = \"a\"\ntool = \"t\"\nexpected = 1\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("search.test.toml:4:1"), "{e}");
        std::fs::write(&path, "[[case]]\nname = \"a\"\ntool = \"t\"\n[[case]]\nname = \"a\"\ntool = \"u\"\n").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("two cases are named `a`"));
        std::fs::write(&path, "").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("at least one case"));
        std::fs::write(dir.path().join("other.toml"), "").unwrap();
        assert_eq!(discover(dir.path()).unwrap(), [path]);
    }
}
