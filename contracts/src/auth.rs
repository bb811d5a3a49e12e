//! Claims of the customer-facing bearer tokens (HS256 JWTs) that the edge
//! accepts and `bazaar token` mints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
