//! The REST API's request and response bodies (DESIGN §7). These are the
//! edge's own contract with HTTP clients, separate from the event contracts.
//! Request bodies reject unknown fields.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An amount of money in minor units, e.g. `{"amount_minor": 1999, "currency": "EUR"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    #[schema(example = 1999)]
    pub amount_minor: i64,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

impl From<contracts::Money> for Money {
    fn from(m: contracts::Money) -> Self {
        Money {
            amount_minor: m.amount_minor,
            currency: m.currency,
        }
    }
}

impl From<Money> for contracts::Money {
    fn from(m: Money) -> Self {
        contracts::Money {
            amount_minor: m.amount_minor,
            currency: m.currency,
        }
    }
}

/// `POST /api/v1/products`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    #[schema(example = "KB-001", max_length = 64)]
    pub sku: String,
    #[schema(example = "Mechanical keyboard", max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(example = "Brown switches, full size", max_length = 5000)]
    pub description: String,
    #[schema(example = "computers", max_length = 100)]
    pub category: String,
    pub price: Money,
}

/// `PATCH /api/v1/products/{id}`: any of the fields; absent ones stay.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub price: Option<Money>,
}

/// A product as customers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    /// Units that can be ordered now.
    pub available: i64,
    /// `active` or `discontinued`.
    pub status: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation errors: each invalid field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}
