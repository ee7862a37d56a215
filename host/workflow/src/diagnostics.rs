//! Diagnostics: what is wrong with a workflow file, where (`path:line:column`), and how to fix
//! it. This module owns the public [`Diagnostic`] type, its text and JSON renderings, and the
//! collector every check writes into.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::spans::SourceMap;

/// How bad a finding is. Only errors make a workflow invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, at a 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A diagnostic that is about a file as a whole (it could not be read, say): line 1, column 1.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            severity: Severity::Error,
            message: message.into(),
            help: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {level}: {}", self.file.display(), self.line, self.column, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// Every finding of one check, in file order. `Display` prints one diagnostic per line (each
/// possibly followed by an indented `help:` line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Sorts by position (stable: findings at one place keep the order they were found in).
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects findings against one source file; spans are byte ranges of that file.
pub(crate) struct Reporter<'a> {
    map: &'a SourceMap,
    found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(map: &'a SourceMap) -> Reporter<'a> {
        Reporter { map, found: Vec::new() }
    }

    pub fn map(&self) -> &'a SourceMap {
        self.map
    }

    fn push(&mut self, severity: Severity, at: usize, message: String, help: Option<String>) {
        let (line, column) = self.map.line_col(at);
        self.found.push(Diagnostic { file: self.map.path().to_path_buf(), line, column, severity, message, help });
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Severity::Error, span.start, message.into(), None);
    }

    pub fn error_help(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Error, span.start, message.into(), Some(help.into()));
    }

    /// An error at an exact byte offset (inside a string value, for CEL positions).
    pub fn error_at(&mut self, offset: usize, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Error, offset, message.into(), help);
    }

    pub fn warning(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Warning, span.start, message.into(), help);
    }

    pub fn finish(self) -> Diagnostics {
        let mut d = Diagnostics(self.found);
        d.sort();
        d
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let n = word.chars().count();
    let limit = if n <= 2 { 0 } else { (n / 3).max(1) };
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A help line: "did you mean `x`?" for a near miss, else the list of what is allowed.
pub(crate) fn suggestion(word: &str, candidates: &[&str], what: &str) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if candidates.is_empty() => format!("there are no {what}"),
        None => format!("{what}: {}", candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")),
    }
}

/// Edit distance over characters, a swap of two neighbours counting as one edit (optimal
/// string alignment): `inptu` is one edit from `input`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        assert_eq!(edit_distance("sourc", "source"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("inptu", "input"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("sourc", ["sha256", "source", "grants"]), Some("source"));
        assert_eq!(did_you_mean("max_step", ["max_steps", "max_tool_calls"]), Some("max_steps"));
        assert_eq!(did_you_mean("zzzzzz", ["source", "grants"]), None);
        assert_eq!(suggestion("q", &["a", "b"], "known keys"), "known keys: `a`, `b`");
    }

    #[test]
    fn display_is_one_line_per_finding_with_help_indented() {
        let d = Diagnostics(vec![
            Diagnostic {
                file: "w.toml".into(),
                line: 3,
                column: 7,
                severity: Severity::Error,
                message: "bad".into(),
                help: Some("fix it".into()),
            },
            Diagnostic {
                file: "w.toml".into(),
                line: 9,
                column: 1,
                severity: Severity::Warning,
                message: "odd".into(),
                help: None,
            },
        ]);
        assert_eq!(d.to_string(), "w.toml:3:7: error: bad\n    help: fix it\nw.toml:9:1: warning: odd\n");
        assert!(d.has_errors());
        assert_eq!(d.warnings().count(), 1);
    }
}
