//! The bodies of the edge's REST API (DESIGN §7) as the kit reads and
//! writes them: request bodies serialise, answers deserialise.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An amount of money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}

impl Money {
    pub fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".to_owned(),
        }
    }
}

/// `POST /api/v1/products`
#[derive(Debug, Clone, Serialize)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
}

impl NewProduct {
    /// A valid product with a unique-enough SKU built from `sku`.
    pub fn sample(sku: &str, price_minor: i64) -> NewProduct {
        NewProduct {
            sku: sku.to_owned(),
            name: format!("Product {sku}"),
            description: format!("The product called {sku}"),
            category: "tests".to_owned(),
            price: Money::eur(price_minor),
        }
    }
}

/// A product as the edge shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    pub available: i64,
    pub status: String,
}

/// `PUT /api/v1/products/{id}/stock` answers this.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StockLevel {
    pub product_id: Uuid,
    pub on_hand: i64,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BasketLine {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Basket {
    pub items: Vec<BasketLine>,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

impl Address {
    /// An address in `country` (ISO 3166-1 alpha-2).
    pub fn in_country(country: &str) -> Address {
        Address {
            name: "Ada Lovelace".to_owned(),
            line1: "12 Analytical St".to_owned(),
            city: "Berlin".to_owned(),
            postal_code: "10115".to_owned(),
            country: country.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// `POST /api/v1/orders`; without `items` the basket is ordered.
#[derive(Debug, Clone, Serialize)]
pub struct NewOrder {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<OrderItem>>,
    pub shipping_address: Address,
    pub payment_method: String,
}

impl NewOrder {
    /// `quantity` of one product, shipped to Germany, paid with `token`.
    pub fn of(product_id: Uuid, quantity: i64, token: &str) -> NewOrder {
        NewOrder {
            items: Some(vec![OrderItem {
                product_id,
                quantity,
            }]),
            shipping_address: Address::in_country("DE"),
            payment_method: token.to_owned(),
        }
    }

    /// The caller's basket, shipped to Germany, paid with `token`.
    pub fn from_basket(token: &str) -> NewOrder {
        NewOrder {
            items: None,
            shipping_address: Address::in_country("DE"),
            payment_method: token.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TimelineEntry {
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: String,
}

/// An order as the customer sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub status: String,
    pub lines: Vec<OrderLine>,
    pub net: Money,
    pub tax: Option<Money>,
    pub total: Option<Money>,
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub timeline: Vec<TimelineEntry>,
}

impl Order {
    /// Whether the timeline shows an event of this CloudEvents type, e.g.
    /// `bazaar.warehouse.stock.reserved.v1`.
    pub fn has_step(&self, event_type: &str) -> bool {
        self.timeline.iter().any(|t| t.event_type == event_type)
    }

    /// Whether the timeline shows the event published on `subject`, e.g.
    /// `contracts::subjects::evt::STOCK_RESERVED_V1`.
    pub fn has_event(&self, subject: &str) -> bool {
        self.has_step(&contracts::envelope::type_of(subject))
    }

    /// The timeline's event types, in the timeline's order.
    pub fn steps(&self) -> Vec<&str> {
        self.timeline
            .iter()
            .map(|t| t.event_type.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderPage {
    pub items: Vec<Order>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InvoiceLine {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Invoice {
    pub number: String,
    pub order_id: Uuid,
    pub lines: Vec<InvoiceLine>,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
    pub issued_at: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default)]
    pub errors: Option<Vec<FieldProblem>>,
}
