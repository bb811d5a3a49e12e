//! Why a request to the shop did not succeed: no answer, an error answer
//! (problem+json, RFC 9457, as the edge renders every error), or an answer
//! this client cannot read.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the shop: {0}")]
    Transport(#[source] reqwest::Error),
    /// The shop answered with an error (problem+json, or anything else).
    #[error("{status} {kind}: {detail}{}", FieldList(.errors))]
    Problem {
        status: u16,
        /// The last segment of the problem `type`, e.g. `conflict`.
        kind: String,
        detail: String,
        errors: Vec<FieldProblem>,
        /// The answer's `Retry-After`, in seconds, when it had one.
        retry_after_s: Option<u64>,
    },
    #[error("the shop answered {status} with a body this client cannot read: {message}")]
    Decode { status: u16, message: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldProblem {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
}

struct FieldList<'a>(&'a [FieldProblem]);

impl fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.0 {
            write!(f, "; {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl CallError {
    pub(super) fn from_problem(
        status: StatusCode,
        retry_after_s: Option<u64>,
        bytes: &[u8],
    ) -> CallError {
        #[derive(Deserialize)]
        struct Problem {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            detail: String,
            #[serde(default)]
            errors: Vec<FieldProblem>,
        }
        let problem = serde_json::from_slice::<Problem>(bytes).unwrap_or_else(|_| Problem {
            kind: String::new(),
            detail: String::from_utf8_lossy(bytes).chars().take(200).collect(),
            errors: Vec::new(),
        });
        let kind = problem.kind.rsplit(':').next().unwrap_or_default();
        CallError::Problem {
            status: status.as_u16(),
            kind: if kind.is_empty() {
                status.canonical_reason().unwrap_or("error").to_lowercase()
            } else {
                kind.to_owned()
            },
            detail: problem.detail,
            errors: problem.errors,
            retry_after_s,
        }
    }

    /// For a 429 (over the edge's rate limit): how long to wait before
    /// asking again, its `Retry-After` (1 s without one). The edge turns a
    /// request away before doing anything with it, so any request may be
    /// repeated after the wait.
    pub fn throttled_for(&self) -> Option<Duration> {
        match self {
            CallError::Problem {
                status: 429,
                retry_after_s,
                ..
            } => Some(Duration::from_secs(retry_after_s.unwrap_or(1).max(1))),
            _ => None,
        }
    }

    /// The HTTP status, when the shop answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Problem { status, .. } | CallError::Decode { status, .. } => Some(*status),
            CallError::Transport(_) => None,
        }
    }

    /// Worth repeating: the request may not have arrived, or the shop was
    /// briefly unable to serve it.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            CallError::Problem { status, .. } => *status == 503,
            CallError::Decode { .. } => false,
        }
    }

    /// A short label to count errors by, e.g. `409 conflict` or `timeout`.
    pub fn label(&self) -> String {
        match self {
            CallError::Transport(e) if e.is_timeout() => "timeout".to_owned(),
            CallError::Transport(e) if e.is_connect() => "connection refused".to_owned(),
            CallError::Transport(_) => "connection error".to_owned(),
            CallError::Problem { status, kind, .. } => format!("{status} {kind}"),
            CallError::Decode { status, .. } => format!("{status} unreadable answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_answer_becomes_a_labelled_error_with_its_fields() {
        let body = br#"{"type":"urn:bazaar:problem:validation","title":"Validation failed","status":422,
            "detail":"the request body is invalid; see errors","errors":[{"field":"sku","message":"too long"}]}"#;

        let error = CallError::from_problem(StatusCode::UNPROCESSABLE_ENTITY, None, body);

        assert_eq!(error.label(), "422 validation");
        assert_eq!(
            error.to_string(),
            "422 validation: the request body is invalid; see errors; sku: too long"
        );
        assert!(!error.is_transient());
        assert_eq!(error.throttled_for(), None);
    }

    #[test]
    fn a_429_says_to_wait_its_retry_after_and_at_least_a_second() {
        let body = br#"{"type":"urn:bazaar:problem:too-many-requests","status":429,"detail":"too many requests; retry after 3 s"}"#;

        let with = CallError::from_problem(StatusCode::TOO_MANY_REQUESTS, Some(3), body);
        let without = CallError::from_problem(StatusCode::TOO_MANY_REQUESTS, None, body);
        let zero = CallError::from_problem(StatusCode::TOO_MANY_REQUESTS, Some(0), body);

        assert_eq!(with.throttled_for(), Some(Duration::from_secs(3)));
        assert_eq!(without.throttled_for(), Some(Duration::from_secs(1)));
        assert_eq!(zero.throttled_for(), Some(Duration::from_secs(1)));
    }
}
