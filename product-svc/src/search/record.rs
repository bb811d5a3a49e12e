//! What a search shard knows of one product, and how each event changes
//! it. Pure: no index, no I/O, so the rules are unit-tested here.
//!
//! Product and stock events arrive on two streams that are read
//! independently, so a stock level may arrive before its product: it is
//! kept in an `unlisted` record that the product's creation completes.

use contracts::product::{
    ProductCreatedV1, ProductDiscontinuedV1, ProductPriceChangedV1, ProductUpdatedV1,
};
use contracts::search::SearchHit;
use contracts::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether a product can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// On sale: the only status search finds.
    Active,
    /// No longer sold; kept so that later events cannot revive it.
    Discontinued,
    /// Stock was reported, the product itself has not arrived yet.
    Unlisted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Discontinued => "discontinued",
            Status::Unlisted => "unlisted",
        }
    }
}

/// One product as the index stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    pub status: Status,
    pub on_hand: i64,
    pub available: i64,
}

impl ProductRecord {
    fn placeholder(product_id: Uuid, status: Status) -> Self {
        ProductRecord {
            product_id,
            sku: String::new(),
            name: String::new(),
            description: String::new(),
            category: String::new(),
            price: Money::zero("EUR"),
            status,
            on_hand: 0,
            available: 0,
        }
    }

    /// The hit a search answer carries.
    pub fn hit(self, score: f32) -> SearchHit {
        SearchHit {
            product_id: self.product_id,
            sku: self.sku,
            name: self.name,
            description: self.description,
            category: self.category,
            price: self.price,
            status: self.status.as_str().to_owned(),
            on_hand: self.on_hand,
            available: self.available,
            score,
        }
    }
}

/// One product's change, decoded from an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Created(ProductCreatedV1),
    Updated(ProductUpdatedV1),
    PriceChanged(ProductPriceChangedV1),
    Discontinued(ProductDiscontinuedV1),
    /// The warehouse's resulting levels for the product.
    Stock {
        product_id: Uuid,
        on_hand: i64,
        available: i64,
    },
}

impl Fact {
    pub fn product_id(&self) -> Uuid {
        match self {
            Fact::Created(e) => e.product_id,
            Fact::Updated(e) => e.product_id,
            Fact::PriceChanged(e) => e.product_id,
            Fact::Discontinued(e) => e.product_id,
            Fact::Stock { product_id, .. } => *product_id,
        }
    }
}

/// The record after `fact`, or None when the fact changes nothing.
pub fn apply(current: Option<ProductRecord>, fact: Fact) -> Option<ProductRecord> {
    match fact {
        Fact::Created(e) => {
            let mut next = current
                .unwrap_or_else(|| ProductRecord::placeholder(e.product_id, Status::Unlisted));
            next.sku = e.sku;
            next.name = e.name;
            next.description = e.description;
            next.category = e.category;
            next.price = e.price;
            next.status = listed(next.status);
            Some(next)
        }
        // An update carries the whole product, so it also stands in for a
        // creation the stream no longer holds.
        Fact::Updated(e) => {
            let mut next = current
                .unwrap_or_else(|| ProductRecord::placeholder(e.product_id, Status::Unlisted));
            next.sku = e.sku;
            next.name = e.name;
            next.description = e.description;
            next.category = e.category;
            next.price = e.price;
            next.status = listed(next.status);
            Some(next)
        }
        Fact::PriceChanged(e) => match current {
            Some(mut next) if next.status != Status::Unlisted => {
                next.price = e.new_price;
                Some(next)
            }
            _ => None,
        },
        Fact::Discontinued(e) => {
            let mut next = current
                .unwrap_or_else(|| ProductRecord::placeholder(e.product_id, Status::Discontinued));
            next.status = Status::Discontinued;
            Some(next)
        }
        Fact::Stock {
            product_id,
            on_hand,
            available,
        } => {
            let mut next =
                current.unwrap_or_else(|| ProductRecord::placeholder(product_id, Status::Unlisted));
            next.on_hand = on_hand;
            next.available = available;
            Some(next)
        }
    }
}

/// A product's details make it listed, unless it was discontinued.
fn listed(status: Status) -> Status {
    match status {
        Status::Discontinued => Status::Discontinued,
        Status::Active | Status::Unlisted => Status::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(id: Uuid) -> Fact {
        Fact::Created(ProductCreatedV1 {
            product_id: id,
            sku: "KB-1".into(),
            name: "Keyboard".into(),
            description: "Brown switches".into(),
            category: "computers".into(),
            price: Money::eur(8999),
        })
    }

    fn stock(id: Uuid, on_hand: i64, available: i64) -> Fact {
        Fact::Stock {
            product_id: id,
            on_hand,
            available,
        }
    }

    #[test]
    fn stock_that_arrives_first_is_kept_for_the_product() {
        let id = Uuid::now_v7();
        let unlisted = apply(None, stock(id, 7, 5)).expect("record");
        assert_eq!(unlisted.status, Status::Unlisted);
        let product = apply(Some(unlisted), created(id)).expect("record");
        assert_eq!(
            (product.status, product.on_hand, product.available),
            (Status::Active, 7, 5)
        );
        assert_eq!(product.name, "Keyboard");
    }

    #[test]
    fn stock_changes_only_the_levels() {
        let id = Uuid::now_v7();
        let product = apply(None, created(id)).expect("record");
        let next = apply(Some(product.clone()), stock(id, 3, 1)).expect("record");
        assert_eq!((next.on_hand, next.available), (3, 1));
        assert_eq!(next.name, product.name);
    }

    #[test]
    fn a_discontinued_product_stays_discontinued() {
        let id = Uuid::now_v7();
        let product = apply(None, created(id)).expect("record");
        let gone = apply(
            Some(product),
            Fact::Discontinued(ProductDiscontinuedV1 {
                product_id: id,
                reason: None,
            }),
        )
        .expect("record");
        assert_eq!(gone.status, Status::Discontinued);
        let Fact::Created(c) = created(id) else {
            unreachable!()
        };
        let updated = Fact::Updated(ProductUpdatedV1 {
            product_id: id,
            sku: c.sku,
            name: "Renamed".into(),
            description: c.description,
            category: c.category,
            price: c.price,
            changed: vec!["name".into()],
        });
        let after = apply(Some(gone), updated).expect("record");
        assert_eq!(
            (after.status, after.name.as_str()),
            (Status::Discontinued, "Renamed")
        );
    }

    #[test]
    fn a_price_change_needs_a_known_product() {
        let id = Uuid::now_v7();
        let change = |price| {
            Fact::PriceChanged(ProductPriceChangedV1 {
                product_id: id,
                old_price: Money::eur(8999),
                new_price: Money::eur(price),
            })
        };
        assert_eq!(apply(None, change(100)), None);
        let product = apply(None, created(id)).expect("record");
        let cheaper = apply(Some(product), change(7999)).expect("record");
        assert_eq!(cheaper.price, Money::eur(7999));
    }
}
