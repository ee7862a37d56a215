//! Where a secret's value comes from: [`SecretSource`], spelled `env:VAR` or `file:PATH` in
//! workflow files and CLI flags, and reading it. Values are read when a call starts, never
//! stored in grants, and never printed: every error names the source, not the value.

use std::path::PathBuf;

/// Where a secret's value comes from. Values are read at call time, never stored in the
/// grants, and never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the host process.
    Env(String),
    /// A file; surrounding whitespace is trimmed.
    File(PathBuf),
}

/// Why a secret source did not parse, or its value could not be read. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret source `{0}` must be env:VAR or file:PATH")]
    Spelling(String),
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    #[error("cannot read {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
}

impl SecretSource {
    /// Parses `env:VAR` or `file:PATH`.
    pub fn parse(s: &str) -> Result<SecretSource, SecretError> {
        match s.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(SecretSource::Env(var.to_string())),
            Some(("file", path)) if !path.is_empty() => Ok(SecretSource::File(PathBuf::from(path))),
            _ => Err(SecretError::Spelling(s.to_string())),
        }
    }

    /// Reads the value. The error names the source, never the value.
    pub fn read(&self) -> Result<String, SecretError> {
        match self {
            SecretSource::Env(var) => std::env::var(var).map_err(|_| SecretError::EnvUnset(var.clone())),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|source| SecretError::Unreadable { path: path.clone(), source }),
        }
    }
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "env:{v}"),
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(SecretSource::parse("env:TOKEN").unwrap(), SecretSource::Env("TOKEN".into()));
        assert_eq!(SecretSource::parse("file:/run/t").unwrap(), SecretSource::File("/run/t".into()));
        assert!(SecretSource::parse("TOKEN").is_err());
        assert!(SecretSource::parse("env:").is_err());
        assert_eq!(SecretSource::parse("file:x").unwrap().to_string(), "file:x");
    }

    #[test]
    fn secret_read_errors_name_the_source_only() {
        let e = SecretSource::Env("TOLLGATE_TEST_SURELY_UNSET".into()).read().unwrap_err();
        assert!(e.to_string().contains("TOLLGATE_TEST_SURELY_UNSET"));
        let e = SecretSource::File("/nonexistent/tollgate-secret".into()).read().unwrap_err();
        assert!(e.to_string().starts_with("cannot read /nonexistent/tollgate-secret: "), "{e}");
    }
}
