//! The JSON body extractor: 64 KiB limit (413), `application/json` only
//! (415), and decoding errors as 422 problem+json naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use contracts::commands::FieldError;
use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use crate::problem::{ApiError, MAX_FIELD_ERRORS};

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

/// Decodes a body, turning serde's error into a field error. Every request
/// body is a JSON object: serde would also take a struct's fields from an
/// array, in order, which no client means.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b == b'[') {
        return Err(invalid(
            "",
            "the body must be a JSON object, not an array".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => value,
        Err(error) => {
            let first = field_error(error)?;
            // Valid JSON with a field missing or of the wrong type: serde
            // stops at the first; the client is told of every one.
            let errors = match serde_json::from_slice::<Value>(bytes) {
                Ok(body) => every_field_error::<T>(body, first),
                Err(_) => vec![first],
            };
            return Err(ApiError::Validation(errors));
        }
    };
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

/// One decoding error as a field error; a body that is not JSON at all is
/// the whole answer (`Err`).
fn field_error(
    error: serde_path_to_error::Error<serde_json::Error>,
) -> Result<FieldError, ApiError> {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return Err(invalid(
            "",
            format!("the body is not valid JSON: {}", clean(&inner.to_string())),
        ));
    }
    let message = clean(&inner.to_string());
    // A missing or repeated field is named by the message; the path is the
    // object that lacks or repeats it.
    let named = missing_field(&message).or_else(|| duplicate_field(&message));
    let field = match (path.as_str(), named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => String::new(),
        (_, Some(name)) => format!("{path}.{name}"),
        (_, None) => path,
    };
    Ok(FieldError { field, message })
}

/// Decoding attempts spent finding a body's errors (at most
/// [`MAX_FIELD_ERRORS`] of them): each attempt decodes at most the whole
/// body (64 KiB), so a bad request costs at most 64 decodes of it, whatever
/// it holds.
const MAX_ATTEMPTS: usize = 64;

/// Stand-ins tried, in turn, for a missing or ill-typed value, so that
/// decoding goes on to the next field: one of them suits each field type
/// a request body has (text, UUID, number, flag, object, list).
fn stand_ins() -> [Value; 6] {
    [
        Value::from("00000000-0000-4000-8000-000000000000"),
        Value::from(1),
        Value::from(true),
        Value::Object(Map::new()),
        Value::Array(Vec::new()),
        Value::from(1.5),
    ]
}

/// Every missing or ill-typed field of `body` (a JSON value that did not
/// decode as `T`), starting with `first`: each one found is replaced by a
/// stand-in of the type that decodes (an unknown field is removed) and
/// decoding tried again. What is inside a stand-in is not the client's,
/// so errors there are not reported. Bounded by [`MAX_FIELD_ERRORS`] and
/// [`MAX_ATTEMPTS`]; a field no stand-in suits ends the search.
fn every_field_error<T: DeserializeOwned>(mut body: Value, first: FieldError) -> Vec<FieldError> {
    let mut errors = vec![first];
    let mut stood_in: Vec<Vec<Step>> = Vec::new();
    let mut attempts = 0;
    let mut current = match attempt::<T>(&body, &mut attempts) {
        Some(error) => error,
        None => return errors,
    };
    while errors.len() < MAX_FIELD_ERRORS && attempts < MAX_ATTEMPTS {
        let (steps, error) = current;
        let inside_stand_in = stood_in.iter().any(|s| steps.starts_with(s));
        if !inside_stand_in && !errors.iter().any(|e| e.field == error.field) {
            errors.push(error.clone());
        }
        let next = if let Some(unknown) = unknown_field(&error.message) {
            let mut parent = steps.clone();
            if parent.last() == Some(&Step::Key(unknown.to_owned())) {
                parent.pop();
            }
            let removed = match at(&mut body, &parent) {
                Some(Value::Object(map)) => map.remove(unknown).is_some(),
                _ => false,
            };
            if !removed {
                return errors;
            }
            attempt::<T>(&body, &mut attempts)
        } else {
            let mut found = None;
            for stand_in in stand_ins() {
                let Some(slot) = at(&mut body, &steps) else {
                    return errors;
                };
                *slot = stand_in;
                match attempt::<T>(&body, &mut attempts) {
                    None => return errors,
                    Some((next, _)) if next == steps => continue,
                    Some(other) => {
                        found = Some(other);
                        break;
                    }
                }
            }
            match found {
                Some(other) => {
                    stood_in.push(steps);
                    Some(other)
                }
                None => return errors,
            }
        };
        match next {
            Some(next) => current = next,
            None => break,
        }
    }
    errors
}

/// One step of the way into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Decodes `body` as `T`; the error's place (for a missing field, the
/// field itself) and its field error, or `None` when it decodes.
fn attempt<T: DeserializeOwned>(
    body: &Value,
    attempts: &mut usize,
) -> Option<(Vec<Step>, FieldError)> {
    *attempts += 1;
    let error = serde_path_to_error::deserialize::<_, T>(body).err()?;
    let mut steps: Vec<Step> = error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect();
    let field = field_error(error).ok()?;
    if let Some(missing) = missing_field(&field.message) {
        steps.push(Step::Key(missing.to_owned()));
    }
    Some((steps, field))
}

/// The value at `steps` in `body`, made if its object lacks the last key.
fn at<'a>(body: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut value = body;
    for step in steps {
        value = match (step, value) {
            (Step::Key(key), Value::Object(map)) => map.entry(key.clone()).or_insert(Value::Null),
            (Step::Index(index), Value::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The field serde names in "unknown field `colour`, expected one of …".
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

/// `#[serde(deserialize_with = "crate::json::object")]` for a field that
/// holds a struct: it must be a JSON object. serde's derived `Deserialize`
/// would also take the struct's fields from an array, in order
/// (`"shipping_address": ["Ada", "1 St", …]`), which no client means.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(ObjectOnly(d))
}

/// [`object`] for an optional struct (`#[serde(default, deserialize_with = …)]`):
/// it may be left out, but `null` is refused like any other non-object.
pub fn optional_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    object(d).map(Some)
}

/// [`object`] for each element of an optional list of structs: the list
/// may be left out, but `null` is refused (an order's `"items": null` is
/// more likely a client's bug than a wish to order the whole basket).
pub fn optional_objects<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Vec::<Object<T>>::deserialize(d)
        .map(|items| Some(items.into_iter().map(|Object(t)| t).collect()))
}

/// `#[serde(default, deserialize_with = "crate::json::optional_present")]`
/// for an optional field that, when given, must hold a value: left out
/// means "unchanged", `null` is refused naming the field.
pub fn optional_present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A struct that only a JSON object decodes to.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Object)
    }
}

/// Asks the wrapped deserializer for a map where a struct is wanted, so an
/// array is refused ("invalid type: sequence, expected struct Address").
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        enum identifier ignored_any
    }
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.to_owned(),
        message,
    }])
}

/// Checks the body of a request that takes none: nothing, or an empty
/// JSON object; any field in it is unknown (422), so a client that thinks
/// it is sending something learns that it is not.
pub fn no_body(bytes: &[u8]) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    decode::<Nothing>(bytes).map(|_| ())
}

/// The field serde names in "missing field `price`": the error's path is
/// the object that lacks it.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// The field serde names in "duplicate field `items`" (a key given twice).
fn duplicate_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// serde's messages end with " at line 1 column 12"; that is noise here.
/// Its type errors name Rust types ("invalid type: floating point `1.5`,
/// expected i64"); a client is told what JSON to send instead.
fn clean(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    humane(message).unwrap_or_else(|| message.to_owned())
}

fn humane(message: &str) -> Option<String> {
    if message.starts_with("UUID parsing failed") {
        return Some("must be a UUID (e.g. 01890f5e-5c4b-7cc4-9a3e-1f2b3c4d5e6f)".into());
    }
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    let (got, expected) = rest.split_once(", expected ")?;
    let wanted = match expected {
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "a string" | "a borrowed string" => "a string",
        "a boolean" => "true or false",
        "a UUID" | "UUID" => "a UUID",
        "a map" => "a JSON object",
        "a sequence" => "a list",
        _ if expected.starts_with("struct ") => "a JSON object",
        _ => return None,
    };
    let got = match got {
        "sequence" => "a list",
        "map" => "an object",
        other => other,
    };
    Some(format!("must be {wanted}, not {got}"))
}

#[cfg(test)]
mod tests;
