//! Baskets, from `basket.changed` (each event carries the whole basket).

use contracts::checkout::BasketChangedV1;
use contracts::subjects::evt;
use contracts::Money;
use platform::delivery::{Delivery, HandlerError};
use platform::{Db, Tx};
use sqlx::Row;
use uuid::Uuid;

/// Applies a basket event; false for other subjects.
pub async fn apply(tx: &mut Tx, d: &Delivery) -> Result<bool, HandlerError> {
    if d.subject != evt::BASKET_CHANGED_V1 {
        return Ok(false);
    }
    let e = d.decode::<BasketChangedV1>()?.data;
    sqlx::query("DELETE FROM basket_view WHERE customer_id = $1")
        .bind(&e.customer_id)
        .execute(&mut **tx)
        .await?;
    for (position, line) in e.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO basket_view (customer_id, position, product_id, quantity, unit_price_minor, currency)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.customer_id)
        .bind(position as i64)
        .bind(line.product_id.to_string())
        .bind(line.quantity)
        .bind(line.unit_price.amount_minor)
        .bind(&line.unit_price.currency)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// One basket line with the product's current name and price: checkout
/// prices an order at the price it knows when the order is placed, not the
/// one the line was added at, so the basket shows that one.
#[derive(Debug, Clone)]
pub struct BasketLineRow {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    /// Units on sale now, from the edge's availability view.
    pub available: i64,
}

pub async fn find(db: &Db, customer: &str) -> Result<Vec<BasketLineRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.product_id, COALESCE(p.name, '') AS name, b.quantity,
                COALESCE(p.price_minor, b.unit_price_minor) AS unit_price_minor,
                COALESCE(p.currency, b.currency) AS currency,
                COALESCE(a.available, 0) AS available
         FROM basket_view b LEFT JOIN product_view p ON p.id = b.product_id
         LEFT JOIN availability_view a ON a.product_id = b.product_id
         WHERE b.customer_id = $1 ORDER BY b.position",
    )
    .bind(customer)
    .fetch_all(&mut *db.conn().await?)
    .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("product_id")?;
            Ok(BasketLineRow {
                product_id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                name: r.try_get("name")?,
                quantity: r.try_get("quantity")?,
                unit_price: Money {
                    amount_minor: r.try_get("unit_price_minor")?,
                    currency: r.try_get("currency")?,
                },
                available: r.try_get("available")?,
            })
        })
        .collect()
}

/// Units on sale now of each of `products` (0 for one the view does not
/// know), in their order: one statement for the whole basket.
pub async fn available(db: &Db, products: &[Uuid]) -> Result<Vec<i64>, sqlx::Error> {
    if products.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=products.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT product_id, available FROM availability_view WHERE product_id IN ({})",
        marks.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in products {
        query = query.bind(id.to_string());
    }
    let rows = query.fetch_all(&mut *db.conn().await?).await?;
    let mut levels = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("product_id")?;
        levels.insert(id, row.try_get::<i64, _>("available")?);
    }
    Ok(products
        .iter()
        .map(|id| levels.get(&id.to_string()).copied().unwrap_or(0))
        .collect())
}
