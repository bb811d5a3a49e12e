//! Events of the warehouse team: stock levels, reservations and shipments.
//! Every stock event carries the resulting `on_hand` and `available` of each
//! product it touches, so readers never add things up themselves.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::subjects::{evt, Team};

/// A product's stock level after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockLevelV1 {
    pub product_id: Uuid,
    /// The quantity this event moved for the product.
    pub quantity: i64,
    pub on_hand: i64,
    pub available: i64,
}

/// An operator set or corrected a product's stock on hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockAdjustedV1 {
    pub product_id: Uuid,
    /// The change to `on_hand` (positive: received).
    pub delta: i64,
    pub on_hand: i64,
    pub available: i64,
}

/// Stock for every line of an order is held for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockReservedV1 {
    pub order_id: Uuid,
    pub lines: Vec<StockLevelV1>,
}

/// A line the warehouse could not reserve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShortLineV1 {
    pub product_id: Uuid,
    pub requested: i64,
    pub available: i64,
}

/// The order cannot be reserved; nothing was held for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockReservationFailedV1 {
    pub order_id: Uuid,
    /// `out_of_stock` or `unknown_product`.
    pub reason: String,
    pub short: Vec<ShortLineV1>,
}

/// What was reserved for an order is available again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockReleasedV1 {
    pub order_id: Uuid,
    pub lines: Vec<StockLevelV1>,
}

/// The order left the warehouse; reserved stock is now gone from `on_hand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShipmentDispatchedV1 {
    pub order_id: Uuid,
    pub shipment_id: Uuid,
    pub lines: Vec<StockLevelV1>,
    pub dispatched_at: DateTime<Utc>,
}

event!(
    StockAdjustedV1,
    evt::STOCK_ADJUSTED_V1,
    Team::Warehouse,
    product_id
);
event!(
    StockReservedV1,
    evt::STOCK_RESERVED_V1,
    Team::Warehouse,
    order_id
);
event!(
    StockReservationFailedV1,
    evt::STOCK_RESERVATION_FAILED_V1,
    Team::Warehouse,
    order_id
);
event!(
    StockReleasedV1,
    evt::STOCK_RELEASED_V1,
    Team::Warehouse,
    order_id
);
event!(
    ShipmentDispatchedV1,
    evt::SHIPMENT_DISPATCHED_V1,
    Team::Warehouse,
    order_id
);
