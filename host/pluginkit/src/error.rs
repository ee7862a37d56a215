//! The one error type of plugin builds and templates.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}: not a plugin project (expected Cargo.toml, pyproject.toml with [tool.tollgate], or package.json)")]
    UnknownProject(String),
    #[error("invalid plugin name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("{0} already exists and is not empty")]
    NotEmpty(String),
    #[error("{what} not found: {hint}")]
    MissingTool { what: String, hint: String },
    #[error("installing {what} failed:\n{log}")]
    Install { what: String, log: String },
    /// The componentizer or compiler rejected the source; `log` is its output.
    #[error("{what} failed:\n{log}")]
    Build { what: String, log: String },
    #[error("{path}: {message}")]
    Project { path: String, message: String },
}

impl BuildError {
    pub fn io(path: &Path, source: std::io::Error) -> BuildError {
        BuildError::Io { path: path.display().to_string(), source }
    }
}
