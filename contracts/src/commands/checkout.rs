//! Commands of the checkout team: baskets and orders. The customer is the
//! request's actor, never a field of the body.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checkout::{AddressV1, OrderLineV1};
use crate::money::Money;

/// `cmd.checkout.put-basket-item`: sets a line's quantity (0 removes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PutBasketItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// A basket line as checkout prices it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BasketLine {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// A customer's basket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Basket {
    pub customer_id: String,
    pub lines: Vec<BasketLine>,
    pub total: Money,
}

/// One requested order line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// `cmd.checkout.place-order`: without `items` the basket is ordered (and emptied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaceOrder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<OrderItem>>,
    pub shipping_address: AddressV1,
    pub payment_method: String,
    /// Where mail about the order goes (checked by checkout: at most 254
    /// characters, one '@', no whitespace); carried in `order.placed.v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
}

/// `cmd.checkout.cancel-order`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CancelOrder {
    pub order_id: Uuid,
}

/// An order as checkout holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRecord {
    pub order_id: Uuid,
    pub customer_id: String,
    /// `pending`, `confirmed`, `rejected`, `cancelled` or `shipped`.
    pub status: String,
    pub lines: Vec<OrderLineV1>,
    pub net: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}
