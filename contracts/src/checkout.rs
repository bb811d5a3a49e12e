//! Events of the checkout team: baskets, orders and the order saga's outcome.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::subjects::{evt, Team};

/// One line of a basket, priced from checkout's price replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BasketLineV1 {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price: Money,
}

/// A customer's basket changed; carries the whole basket as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BasketChangedV1 {
    pub customer_id: String,
    pub lines: Vec<BasketLineV1>,
}

/// Where an order is shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddressV1 {
    pub name: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// One line of an order, at the price it was placed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLineV1 {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// An order was placed and awaits stock and payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    pub lines: Vec<OrderLineV1>,
    /// Sum of the line totals, before tax.
    pub net: Money,
    pub shipping_address: AddressV1,
    /// The card provider's token (`tok_visa`, `tok_declined`, …).
    pub payment_token: String,
    pub placed_at: DateTime<Utc>,
}

/// Stock was reserved and payment authorised: the order will ship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderConfirmedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
}

/// The order cannot be fulfilled; `reason` is e.g. `out_of_stock`, `payment_declined`, `timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRejectedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The customer cancelled the order before it shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelledV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    /// Whether the order had been confirmed (payment captured) when cancelled.
    pub was_confirmed: bool,
}

event!(
    BasketChangedV1,
    evt::BASKET_CHANGED_V1,
    Team::Checkout,
    customer_id
);
event!(
    OrderPlacedV1,
    evt::ORDER_PLACED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderConfirmedV1,
    evt::ORDER_CONFIRMED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderRejectedV1,
    evt::ORDER_REJECTED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderCancelledV1,
    evt::ORDER_CANCELLED_V1,
    Team::Checkout,
    order_id
);
