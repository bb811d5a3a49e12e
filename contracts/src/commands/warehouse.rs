//! Commands of the warehouse team.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `cmd.warehouse.set-stock`: sets the units on hand (a stock count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetStock {
    pub product_id: Uuid,
    pub on_hand: i64,
}

/// A product's stock after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockLevel {
    pub product_id: Uuid,
    pub on_hand: i64,
    pub available: i64,
}
