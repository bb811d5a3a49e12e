//! The catalog as customers see it, projected from product events.

mod batch;

use std::collections::BTreeMap;

pub use batch::apply_batch;

use contracts::product::{
    ProductCreatedV1, ProductDiscontinuedV1, ProductPriceChangedV1, ProductUpdatedV1,
};
use contracts::subjects::evt;
use contracts::Money;
use platform::delivery::{Delivery, HandlerError};
use platform::{Db, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

/// A product row of the view.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    pub status: String,
    pub available: i64,
}

/// Applies a product event; false when the subject is not one it projects.
pub async fn apply(tx: &mut Tx, d: &Delivery) -> Result<bool, HandlerError> {
    let seq = i64::try_from(d.stream_seq).unwrap_or(i64::MAX);
    match d.subject.as_str() {
        evt::PRODUCT_CREATED_V1 => {
            let e = d.decode::<ProductCreatedV1>()?.data;
            upsert(
                tx,
                e.product_id,
                &e.sku,
                &e.name,
                &e.description,
                &e.category,
                &e.price,
                seq,
            )
            .await?;
        }
        evt::PRODUCT_UPDATED_V1 => {
            let e = d.decode::<ProductUpdatedV1>()?.data;
            upsert(
                tx,
                e.product_id,
                &e.sku,
                &e.name,
                &e.description,
                &e.category,
                &e.price,
                seq,
            )
            .await?;
        }
        evt::PRODUCT_PRICE_CHANGED_V1 => {
            let e = d.decode::<ProductPriceChangedV1>()?.data;
            sqlx::query("UPDATE product_view SET price_minor = $1, currency = $2, updated_seq = $3 WHERE id = $4")
                    .bind(e.new_price.amount_minor)
                    .bind(&e.new_price.currency)
                    .bind(seq)
                    .bind(e.product_id.to_string())
                    .execute(&mut **tx)
                    .await?;
        }
        evt::PRODUCT_DISCONTINUED_V1 => {
            let e = d.decode::<ProductDiscontinuedV1>()?.data;
            sqlx::query(
                "UPDATE product_view SET status = 'discontinued', updated_seq = $1 WHERE id = $2",
            )
            .bind(seq)
            .bind(e.product_id.to_string())
            .execute(&mut **tx)
            .await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn upsert(
    tx: &mut Tx,
    id: Uuid,
    sku: &str,
    name: &str,
    description: &str,
    category: &str,
    price: &Money,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO product_view (id, sku, name, description, category, price_minor, currency, status, updated_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8)
         ON CONFLICT (id) DO UPDATE SET sku = $2, name = $3, description = $4, category = $5,
             price_minor = $6, currency = $7, updated_seq = $8",
    )
    .bind(id.to_string())
    .bind(sku)
    .bind(name)
    .bind(description)
    .bind(category)
    .bind(price.amount_minor)
    .bind(&price.currency)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Categories a customer can filter by ([`MAX_CATEGORIES`] at most):
/// those of products still sold, one per name as the search's filter
/// compares them (trimmed, any case: [`category_key`]), spelled as most of
/// its products spell it, in key order, each with how many products it
/// holds. Grouped here rather than in SQL, whose `LOWER` folds only ASCII
/// on SQLite.
pub async fn categories(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT category, COUNT(*) AS products FROM product_view
         WHERE status = 'active' GROUP BY category LIMIT $1",
    )
    .bind(MAX_SPELLINGS)
    .fetch_all(&mut *db.conn().await?)
    .await?;
    // key → products per trimmed spelling
    let mut by_key: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in &rows {
        let spelling: String = row.try_get("category")?;
        let products: i64 = row.try_get("products")?;
        *by_key
            .entry(category_key(&spelling))
            .or_default()
            .entry(spelling.trim().to_owned())
            .or_default() += products;
    }
    Ok(by_key
        .into_values()
        .filter_map(|spellings| {
            let total = spellings.values().sum();
            // The most products, then the first in byte order.
            let (name, _) = spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))?;
            Some((name, total))
        })
        .take(MAX_CATEGORIES)
        .collect())
}

/// A category as the search's filter compares it (product-svc's
/// `category_key`): trimmed, lower-cased.
pub fn category_key(category: &str) -> String {
    category.trim().to_lowercase()
}

/// Categories listed at most: a shop with more wants a search, not a menu.
pub const MAX_CATEGORIES: usize = 500;
/// Distinct spellings read at most, so the list costs bounded memory.
const MAX_SPELLINGS: i64 = 10_000;

pub async fn find(db: &Db, id: Uuid) -> Result<Option<ProductRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT p.id, p.sku, p.name, p.description, p.category, p.price_minor, p.currency, p.status,
                COALESCE(a.available, 0) AS available
         FROM product_view p LEFT JOIN availability_view a ON a.product_id = p.id WHERE p.id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *db.conn().await?)
    .await?;
    row.map(|r| from_row(&r)).transpose()
}

fn from_row(row: &AnyRow) -> Result<ProductRow, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(ProductRow {
        id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        price: Money {
            amount_minor: row.try_get("price_minor")?,
            currency: row.try_get("currency")?,
        },
        status: row.try_get("status")?,
        available: row.try_get("available")?,
    })
}
