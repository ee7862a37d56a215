//! Which language a project is written in, and valid plugin names.

use std::path::Path;

use crate::error::BuildError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    /// Detects the language from the project's manifest file.
    pub fn detect(dir: &Path) -> Result<Lang, BuildError> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Lang::Rust)
        } else if dir.join("pyproject.toml").is_file() {
            Ok(Lang::Python)
        } else if dir.join("package.json").is_file() {
            Ok(Lang::Js)
        } else {
            Err(BuildError::UnknownProject(dir.display().to_string()))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!("unknown language `{other}` (expected rust, python or js)")),
        }
    }
}

/// Plugin names follow the manifest rule `[a-z][a-z0-9_-]*`, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), BuildError> {
    let bad = |reason: &str| Err(BuildError::InvalidName { name: name.to_owned(), reason: reason.to_owned() });
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("empty"),
        Some(c) if !c.is_ascii_lowercase() => return bad("must start with a lowercase letter"),
        _ => {}
    }
    if name.len() > 64 {
        return bad("longer than 64 characters");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return bad("only lowercase letters, digits, `_` and `-` are allowed");
    }
    Ok(())
}
