//! One error type for the HTTP API, rendered as `application/problem+json`
//! (RFC 9457). 5xx answers never carry internals; the cause is logged.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use contracts::commands::{CommandError, ErrorKind, FieldError};
use serde::Serialize;

/// Field errors an answer names at most. Of a service's validation (200
/// bad order lines) the answer says how many there were; decoding stops
/// looking after this many (`json.rs`).
pub const MAX_FIELD_ERRORS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized(String),
    #[error("forbidden")]
    Forbidden(String),
    #[error("not found")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed request")]
    BadRequest(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A customer already holds as many order-update streams as allowed.
    #[error("too many open streams")]
    TooManyStreams { limit: usize },
    #[error("service unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// Another error status, set by the HTTP stack rather than a handler.
    #[error("{0}")]
    Other(StatusCode, String),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use ApiError::*;
        match self {
            Unauthorized(d) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
                d.clone(),
            ),
            Forbidden(d) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden", d.clone()),
            NotFound(d) => (StatusCode::NOT_FOUND, "not-found", "Not found", d.clone()),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this resource does not support that method".into(),
            ),
            Conflict(d) => (StatusCode::CONFLICT, "conflict", "Conflict", d.clone()),
            Validation(errors) if errors.len() > MAX_FIELD_ERRORS => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Validation failed",
                format!(
                    "the request is invalid; see errors (the first {MAX_FIELD_ERRORS} of {})",
                    errors.len()
                ),
            ),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Validation failed",
                "the request is invalid; see errors".into(),
            ),
            BadRequest(d) => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Bad request",
                d.clone(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!(
                    "request bodies are limited to {} bytes",
                    crate::MAX_BODY_BYTES
                ),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json".into(),
            ),
            TooManyRequests { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
                format!("too many requests; retry after {retry_after_secs} s"),
            ),
            TooManyStreams { limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
                format!(
                    "you hold {limit} order update streams open already, the most at \
                     once; close one of them, then retry"
                ),
            ),
            Unavailable(d) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                d.clone(),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
                "something went wrong on our side".into(),
            ),
            Other(status, d) => (
                *status,
                "http",
                status.canonical_reason().unwrap_or("Error"),
                d.clone(),
            ),
        }
    }

    /// The problem for an error answer the HTTP stack made itself (axum's
    /// extractors, the timeout) as plain text or nothing: its status and,
    /// as the detail, its text.
    pub fn from_plain(status: StatusCode, text: &str) -> ApiError {
        let text = text.trim();
        let detail = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            text.to_owned()
        };
        match status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(detail),
            StatusCode::NOT_FOUND => ApiError::NotFound(detail),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(detail),
            StatusCode::INTERNAL_SERVER_ERROR => {
                ApiError::Internal(anyhow::anyhow!("the HTTP stack answered 500: {detail}"))
            }
            status => ApiError::Other(status, detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %format!("{cause:#}"), "internal error");
        }
        let (status, slug, title, detail) = self.parts();
        let errors = match &self {
            ApiError::Validation(errors) => Some(&errors[..errors.len().min(MAX_FIELD_ERRORS)]),
            _ => None,
        };
        let body = Problem {
            kind: format!("urn:bazaar:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match &self {
            ApiError::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::TooManyStreams { .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::open_streams::RETRY_AFTER_S),
                );
            }
            // A service that did not answer (or is restarting) may well in a
            // second.
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e.kind {
            ErrorKind::Invalid if e.errors.is_empty() => ApiError::Validation(vec![FieldError {
                field: String::new(),
                message: e.message,
            }]),
            ErrorKind::Invalid => ApiError::Validation(e.errors),
            ErrorKind::NotFound => ApiError::NotFound(e.message),
            ErrorKind::Conflict => ApiError::Conflict(e.message),
            ErrorKind::Forbidden => ApiError::Forbidden(e.message),
            ErrorKind::Unavailable => ApiError::Unavailable(e.message),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_names_at_most_sixteen_field_errors_and_says_how_many_there_were() {
        let errors = (0..200)
            .map(|i| FieldError {
                field: format!("items[{i}].quantity"),
                message: "must be from 1 to 100".into(),
            })
            .collect();
        let response = ApiError::Validation(errors).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(16), "{body}");
        assert_eq!(body["errors"][15]["field"], "items[15].quantity");
        assert_eq!(
            body["detail"],
            "the request is invalid; see errors (the first 16 of 200)"
        );
    }
}
