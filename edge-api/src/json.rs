//! The JSON body extractor: 64 KiB limit (413), `application/json` only
//! (415), and decoding errors as 422 problem+json naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use contracts::commands::FieldError;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decodes a body, turning serde's error into a field error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return invalid(
                "",
                format!("the body is not valid JSON: {}", clean(&inner.to_string())),
            );
        }
        let field = if path == "." { String::new() } else { path };
        invalid(&field, clean(&inner.to_string()))
    })?;
    de.end().map_err(|e| {
        invalid(
            "",
            format!(
                "unexpected data after the JSON body: {}",
                clean(&e.to_string())
            ),
        )
    })?;
    Ok(value)
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.to_owned(),
        message,
    }])
}

/// serde's messages end with " at line 1 column 12"; that is noise here.
fn clean(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
