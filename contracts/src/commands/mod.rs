//! Commands and queries: request/reply messages between the edge (or the
//! CLI) and a team's service. Every command carries an id; repeating a
//! command returns the first outcome and changes nothing.

mod checkout;
mod product;
mod warehouse;

pub use checkout::*;
pub use product::*;
pub use warehouse::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

/// A command (or query) with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Request<T> {
    /// Idempotency: the HTTP `Idempotency-Key` when the client gave one.
    pub command_id: String,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub body: T,
}

/// What kind of failure a command met; the edge maps it to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input breaks a rule (422).
    Invalid,
    /// The thing does not exist, or is not the caller's (404).
    NotFound,
    /// The state forbids it, e.g. a duplicate SKU (409).
    Conflict,
    /// The caller may not do this (403).
    Forbidden,
    /// Something broke inside; retrying may help (503).
    Unavailable,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        CommandError {
            kind: ErrorKind::Invalid,
            message: "the request is invalid".into(),
            errors,
        }
    }
}

/// The answer to a command or query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply<T> {
    Ok {
        value: T,
        /// Stream sequence of the last event the command published, so the
        /// caller can wait until its views have caught up (read-your-writes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_seq: Option<u64>,
    },
    Error {
        error: CommandError,
    },
}
