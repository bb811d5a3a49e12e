//! Query-string errors as 422 field errors a client can act on: the
//! parameter named in `field`, without serde's and axum's wording.

use axum::extract::rejection::QueryRejection;
use contracts::commands::FieldError;

use crate::problem::ApiError;

/// The 422 for a query string that did not decode.
pub fn rejected(rejection: QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let message = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    ApiError::Validation(vec![field_error(message)])
}

/// serde's "name: unknown field `name`, expected one of `a`, `b`" and
/// "duplicate field `name`" as a field error naming the parameter.
fn field_error(message: &str) -> FieldError {
    let quoted = |s: &str| s.split('`').nth(1).map(str::to_owned);
    if let Some((_, rest)) = message.split_once("unknown field ") {
        let expected = rest
            .split_once("expected one of ")
            .or_else(|| rest.split_once("expected "))
            .map(|(_, list)| list.to_owned())
            .unwrap_or_default();
        return FieldError {
            field: quoted(rest).unwrap_or_default(),
            message: format!("unknown query parameter; the parameters are {expected}"),
        };
    }
    if let Some((_, rest)) = message.split_once("duplicate field ") {
        return FieldError {
            field: quoted(rest).unwrap_or_default(),
            message: "given more than once".into(),
        };
    }
    FieldError {
        field: "query".into(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_parameter_is_named_with_the_known_ones() {
        let error = field_error("_: unknown field `_`, expected one of `q`, `limit`");
        assert_eq!(error.field, "_");
        assert_eq!(
            error.message,
            "unknown query parameter; the parameters are `q`, `limit`"
        );
    }

    #[test]
    fn a_parameter_given_twice_is_named() {
        let error = field_error("duplicate field `limit`");
        assert_eq!(error.field, "limit");
        assert_eq!(error.message, "given more than once");
    }

    #[test]
    fn anything_else_is_passed_on() {
        let error = field_error("invalid type: map");
        assert_eq!(
            (error.field.as_str(), error.message.as_str()),
            ("query", "invalid type: map")
        );
    }
}
