//! [`ToolError`]: the typed failure a tool returns, and its mapping to the WIT `tool-error`.

use std::fmt;

use crate::bindings::tollgate::plugin::types::{ToolError as WitToolError, UpstreamError as WitUpstreamError};

/// A tool's own, typed failure. Each variant maps to the same-named case of the WIT
/// `tool-error`; the host reports traps, limit hits and gate denials separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The input was well-formed and matched the schema, but is not acceptable.
    InvalidInput(String),
    /// The upstream system or the host refused (permissions, policy).
    Denied(String),
    /// The thing asked for does not exist.
    NotFound(String),
    /// The upstream system failed; `status` is its HTTP status if a response arrived.
    Upstream { status: Option<u16>, message: String },
    /// A transient failure; calling again with the same idempotency key is safe.
    Retryable(String),
    /// A bug in the plugin.
    Internal(String),
}

impl ToolError {
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn upstream(status: Option<u16>, message: impl Into<String>) -> Self {
        Self::Upstream { status, message: message.into() }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The conventional mapping of an unsuccessful HTTP status from an upstream API:
    /// 401/403 → `denied`, 404 → `not_found`, 409 → `invalid_input` (a conflict the model can
    /// act on), 408/429/5xx → `retryable`, any other status → `upstream` with the status.
    ///
    /// `message` should be the vendor's own error message, so the model sees why.
    pub fn from_http_status(status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        match status {
            401 | 403 => Self::Denied(message),
            404 => Self::NotFound(message),
            409 => Self::InvalidInput(message),
            408 | 429 | 500..=599 => Self::Retryable(message),
            _ => Self::upstream(Some(status), message),
        }
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m) | Self::Denied(m) | Self::NotFound(m) | Self::Retryable(m) | Self::Internal(m) => m,
            Self::Upstream { message, .. } => message,
        }
    }

    /// The WIT case name, for example `invalid-input`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid-input",
            Self::Denied(_) => "denied",
            Self::NotFound(_) => "not-found",
            Self::Upstream { .. } => "upstream",
            Self::Retryable(_) => "retryable",
            Self::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upstream { status: Some(status), message } => write!(f, "upstream (HTTP {status}): {message}"),
            other => write!(f, "{}: {}", other.kind(), other.message()),
        }
    }
}

impl std::error::Error for ToolError {}

impl From<ToolError> for WitToolError {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::InvalidInput(m) => Self::InvalidInput(m),
            ToolError::Denied(m) => Self::Denied(m),
            ToolError::NotFound(m) => Self::NotFound(m),
            ToolError::Upstream { status, message } => Self::Upstream(WitUpstreamError { status, message }),
            ToolError::Retryable(m) => Self::Retryable(m),
            ToolError::Internal(m) => Self::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_map_to_the_same_wit_case() {
        let cases = [
            (ToolError::invalid_input("a"), "invalid-input"),
            (ToolError::denied("b"), "denied"),
            (ToolError::not_found("c"), "not-found"),
            (ToolError::upstream(Some(502), "d"), "upstream"),
            (ToolError::retryable("e"), "retryable"),
            (ToolError::internal("f"), "internal"),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind);
            let message = error.message().to_owned();
            let wit = WitToolError::from(error);
            let (wit_kind, wit_message) = match wit {
                WitToolError::InvalidInput(m) => ("invalid-input", m),
                WitToolError::Denied(m) => ("denied", m),
                WitToolError::NotFound(m) => ("not-found", m),
                WitToolError::Upstream(u) => {
                    assert_eq!(u.status, Some(502));
                    ("upstream", u.message)
                }
                WitToolError::Retryable(m) => ("retryable", m),
                WitToolError::Internal(m) => ("internal", m),
            };
            assert_eq!((wit_kind, wit_message.as_str()), (kind, message.as_str()));
        }
    }

    #[test]
    fn http_status_mapping() {
        let kind = |s| ToolError::from_http_status(s, "m").kind();
        assert_eq!(kind(401), "denied");
        assert_eq!(kind(403), "denied");
        assert_eq!(kind(404), "not-found");
        assert_eq!(kind(409), "invalid-input");
        assert_eq!(kind(429), "retryable");
        assert_eq!(kind(500), "retryable");
        assert_eq!(kind(503), "retryable");
        assert_eq!(ToolError::from_http_status(400, "bad"), ToolError::upstream(Some(400), "bad"));
        assert_eq!(ToolError::from_http_status(302, "moved"), ToolError::upstream(Some(302), "moved"));
    }

    #[test]
    fn display_names_the_kind() {
        assert_eq!(ToolError::denied("no").to_string(), "denied: no");
        assert_eq!(ToolError::upstream(Some(400), "bad").to_string(), "upstream (HTTP 400): bad");
        assert_eq!(ToolError::upstream(None, "eof").to_string(), "upstream: eof");
    }
}
