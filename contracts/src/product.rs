//! Events of the product team: the catalog and its prices.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::subjects::{evt, Team};

/// A product was added to the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductCreatedV1 {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
}

/// A product's details changed; carries the whole product as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductUpdatedV1 {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    /// The fields this update changed (`name`, `description`, `category`, `price`).
    pub changed: Vec<String>,
}

/// A product's price changed (also announced by `product.updated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductPriceChangedV1 {
    pub product_id: Uuid,
    pub old_price: Money,
    pub new_price: Money,
}

/// A product is no longer sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductDiscontinuedV1 {
    pub product_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

event!(
    ProductCreatedV1,
    evt::PRODUCT_CREATED_V1,
    Team::Product,
    product_id
);
event!(
    ProductUpdatedV1,
    evt::PRODUCT_UPDATED_V1,
    Team::Product,
    product_id
);
event!(
    ProductPriceChangedV1,
    evt::PRODUCT_PRICE_CHANGED_V1,
    Team::Product,
    product_id
);
event!(
    ProductDiscontinuedV1,
    evt::PRODUCT_DISCONTINUED_V1,
    Team::Product,
    product_id
);
