//! Events of the finance team: payments through the card provider, and invoices.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::subjects::{evt, Team};

/// The provider authorised `total` (= `net` + `tax`) for the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentAuthorizedV1 {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
}

/// The provider declined, or the payment could not be attempted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentFailedV1 {
    pub order_id: Uuid,
    /// e.g. `declined`, `invalid_token`.
    pub reason: String,
}

/// An authorisation was released without taking money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentVoidedV1 {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
}

/// Authorised money was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentCapturedV1 {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
}

/// Captured money was given back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRefundedV1 {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceLineV1 {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// An invoice with a gap-free number per year, e.g. `2026-000042`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceIssuedV1 {
    pub order_id: Uuid,
    pub number: String,
    pub lines: Vec<InvoiceLineV1>,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
    pub issued_at: DateTime<Utc>,
}

event!(
    PaymentAuthorizedV1,
    evt::PAYMENT_AUTHORIZED_V1,
    Team::Finance,
    order_id
);
event!(
    PaymentFailedV1,
    evt::PAYMENT_FAILED_V1,
    Team::Finance,
    order_id
);
event!(
    PaymentVoidedV1,
    evt::PAYMENT_VOIDED_V1,
    Team::Finance,
    order_id
);
event!(
    PaymentCapturedV1,
    evt::PAYMENT_CAPTURED_V1,
    Team::Finance,
    order_id
);
event!(
    PaymentRefundedV1,
    evt::PAYMENT_REFUNDED_V1,
    Team::Finance,
    order_id
);
event!(
    InvoiceIssuedV1,
    evt::INVOICE_ISSUED_V1,
    Team::Finance,
    order_id
);
