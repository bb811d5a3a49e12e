//! The REST API's request and response bodies (DESIGN §7). These are the
//! edge's own contract with HTTP clients, separate from the event contracts.
//! Request bodies reject unknown fields.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An amount of money in minor units, e.g. `{"amount_minor": 1999, "currency": "EUR"}`.
/// The shop trades in euros only; a product's price is 0 to 100,000,000
/// (one million euros).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    #[schema(example = 1999)]
    pub amount_minor: i64,
    #[schema(example = "EUR", pattern = "^EUR$")]
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
    /// Unique, case-sensitive (KB-001 and kb-001 are two products).
    #[schema(
        example = "KB-001",
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]{1,64}$"
    )]
    pub sku: String,
    #[schema(example = "Mechanical keyboard", max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(example = "Brown switches, full size", max_length = 5000)]
    pub description: String,
    #[schema(example = "computers", max_length = 100)]
    pub category: String,
    #[serde(deserialize_with = "crate::json::object")]
    pub price: Money,
}

/// `PATCH /api/v1/products/{id}`: any of the fields; absent ones stay.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default, deserialize_with = "crate::json::optional_present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::optional_present")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::json::optional_present")]
    #[schema(nullable = false)]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "crate::json::optional_object")]
    #[schema(nullable = false)]
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

/// `PUT /api/v1/products/{id}/stock`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    /// Units physically on hand (a stock count).
    #[schema(example = 25, minimum = 0, maximum = 1_000_000_000)]
    pub on_hand: i64,
}

/// A product's stock levels.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockLevel {
    pub product_id: Uuid,
    pub on_hand: i64,
    /// On hand minus what is reserved for open orders.
    pub available: i64,
}

/// `PUT /api/v1/basket/items/{product_id}`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasketItemBody {
    /// 0 removes the line.
    #[schema(example = 2, minimum = 0, maximum = 100)]
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BasketLine {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
    /// Units on sale now. Fewer than `quantity` and an order of the basket
    /// will be rejected for want of stock (unless stock arrives first).
    pub available: i64,
}

/// The caller's basket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Basket {
    pub items: Vec<BasketLine>,
    pub total: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    #[schema(example = "12 Analytical St")]
    pub line1: String,
    #[schema(example = "Berlin")]
    pub city: String,
    #[schema(example = "10115")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(example = "DE")]
    pub country: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    pub product_id: Uuid,
    #[schema(example = 1, minimum = 1, maximum = 100)]
    pub quantity: i64,
}

/// `POST /api/v1/orders`: without `items` the basket is ordered (and emptied).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[serde(default, deserialize_with = "crate::json::optional_objects")]
    #[schema(nullable = false)]
    pub items: Option<Vec<OrderItem>>,
    #[serde(deserialize_with = "crate::json::object")]
    pub shipping_address: Address,
    /// A card token: `tok_visa`, `tok_mastercard`, `tok_declined`, `tok_slow`.
    #[schema(example = "tok_visa")]
    pub payment_method: String,
    /// Where mail about the order goes: at most 254 characters, one '@',
    /// no whitespace.
    #[serde(default)]
    #[schema(example = "jana@example.org", max_length = 254)]
    pub contact_email: Option<String>,
}

// Documentation only: the view keeps the status as text.
/// Where an order is in its life.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
    Shipped,
}

/// An order as the customer sees it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Order {
    pub id: Uuid,
    #[schema(value_type = OrderStatus)]
    pub status: String,
    pub lines: Vec<OrderLine>,
    pub net: Money,
    /// Known once finance has priced the order.
    pub tax: Option<Money>,
    pub total: Option<Money>,
    /// Why a rejected or cancelled order did not go through: `out_of_stock`,
    /// `unknown_product`, `payment_declined`, `payment_invalid_token`,
    /// `timeout` (not confirmed in time) or `cancelled_by_customer`; new
    /// reasons may be added.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "out_of_stock")]
    pub reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub timeline: Vec<TimelineEntry>,
}

/// One line of an order or an invoice.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// One step of an order's life, from any team.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct TimelineEntry {
    /// The CloudEvents type, e.g. `bazaar.warehouse.stock.reserved.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(format = DateTime)]
    pub at: String,
}

/// A page of orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An invoice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invoice {
    #[schema(example = "2026-000042")]
    pub number: String,
    pub order_id: Uuid,
    pub lines: Vec<InvoiceLine>,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// When the order's payment was refunded (it was cancelled after it
    /// was invoiced): nothing of this invoice is owed. Null otherwise.
    #[schema(format = DateTime)]
    pub refunded_at: Option<String>,
}

/// One line of an invoice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceLine {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// The categories of products on sale, for a filter menu.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryList {
    /// In name order, at most 500.
    pub items: Vec<Category>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Category {
    /// As the catalog spells it; the search's `category` filter takes it in
    /// any case.
    #[schema(example = "computers")]
    pub name: String,
    /// Products on sale in it.
    pub products: i64,
}

/// A product found by a search, with its relevance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchItem {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    /// Units that can be ordered now.
    pub available: i64,
    /// `active` (discontinued products are never found).
    pub status: String,
    /// Relevance to `q` (higher first); 0 when listing without `q`.
    #[schema(example = 27.6)]
    pub score: f32,
}

/// `GET /api/v1/products`: a page of search results.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchPage {
    pub items: Vec<SearchItem>,
    /// Matching products over the shards that answered.
    pub total: u64,
    /// True when a search shard did not answer in time: then `total` and
    /// `items` cover only the shards that did.
    pub partial: bool,
    /// The shards that did not answer (empty unless `partial`).
    pub missing_shards: Vec<u32>,
    /// How long the search took at the edge, in milliseconds.
    #[schema(example = 3.2)]
    pub took_ms: f64,
}
