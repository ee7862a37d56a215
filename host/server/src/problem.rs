//! Errors as RFC 9457 problem details (`application/problem+json`). Each [`Kind`] has a stable
//! `type` URI (`urn:tollgate:problem:<slug>`) clients may match on; `detail` is for people and
//! may change. No problem ever carries a token, a secret or a store path.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What went wrong, with its status and stable slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No token, or one that is malformed, unknown, expired or revoked (all alike: which one is
    /// not told to someone who is not authenticated).
    Unauthenticated,
    /// The token's role may not call this endpoint.
    Forbidden,
    /// The caller may not decide this approval: not among its rule's approvers, or the
    /// identity that started the run.
    NotAnApprover,
    NotFound,
    /// The body is not the JSON the endpoint takes.
    BadRequest,
    /// The body is larger than `max_body`.
    TooLarge,
    /// The token's requests-per-minute are spent; `Retry-After` says when to come back.
    RateLimited,
    /// The request conflicts with the resource's state (an approval already decided).
    Conflict,
    /// The workflow file (or a file it names) is invalid; `errors` lists every finding.
    InvalidWorkflow,
    /// This version of the workflow is deployed already, with other content.
    VersionExists,
    /// The workflow's kill switch is off: nothing of it starts.
    WorkflowDisabled,
    /// The `Idempotency-Key` started another request before.
    KeyReused,
    /// The store failed.
    Internal,
}

impl Kind {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Kind::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated"),
            Kind::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Kind::NotAnApprover => (StatusCode::FORBIDDEN, "not-an-approver", "Not an approver of this approval"),
            Kind::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Kind::BadRequest => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Kind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Request body too large"),
            Kind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            Kind::Conflict => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Kind::InvalidWorkflow => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-workflow", "Invalid workflow"),
            Kind::VersionExists => (StatusCode::CONFLICT, "version-exists", "Version already deployed"),
            Kind::WorkflowDisabled => (StatusCode::CONFLICT, "workflow-disabled", "Workflow disabled"),
            Kind::KeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency key used for another request")
            }
            Kind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    /// The stable `type` URI.
    pub fn type_uri(self) -> String {
        format!("urn:tollgate:problem:{}", self.parts().1)
    }
}

/// One problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: Kind,
    pub detail: String,
    /// Seconds, for [`Kind::RateLimited`].
    pub retry_after: Option<u64>,
    /// Findings, for [`Kind::InvalidWorkflow`]: the `errors` member.
    pub errors: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Problem {
        Problem { kind, detail: detail.into(), retry_after: None, errors: None }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, _, title) = self.kind.parts();
        let mut body =
            json!({"type": self.kind.type_uri(), "title": title, "status": status.as_u16(), "detail": self.detail});
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == Kind::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<tollgate_store::StoreError> for Problem {
    fn from(e: tollgate_store::StoreError) -> Problem {
        // Logged for the operator; the client learns only that the store failed.
        tracing::error!(error = %e, "store error");
        Problem::new(Kind::Internal, "the store failed; the server log has the reason")
    }
}
