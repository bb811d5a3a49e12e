//! Claims of the customer-facing bearer tokens (HS256 JWTs) that the edge
//! accepts and `bazaar token` mints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest `sub` (customer id) a token may carry, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 128;

/// Whether `sub` may name a customer: not blank and at most
/// [`MAX_SUBJECT_BYTES`]. The edge refuses tokens with any other, and
/// `bazaar token` will not mint them.
pub fn subject_is_valid(sub: &str) -> bool {
    !sub.trim().is_empty() && sub.len() <= MAX_SUBJECT_BYTES
}

/// What a token allows its bearer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
}

/// The JWT claims: `sub` is the customer id, `exp`/`iat`/`nbf` are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}
