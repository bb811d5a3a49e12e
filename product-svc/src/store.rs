//! The catalog's tables (sqlx, SQLite or PostgreSQL).

use contracts::commands::ProductRecord;
use contracts::Money;
use platform::db::now_text;
use platform::Tx;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, sku, name, description, category, price_minor, currency, status";

pub async fn insert(tx: &mut Tx, p: &ProductRecord) -> Result<(), sqlx::Error> {
    let now = now_text();
    sqlx::query(
        "INSERT INTO products (id, sku, name, description, category, price_minor, currency, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(p.id.to_string())
    .bind(&p.sku)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.category)
    .bind(p.price.amount_minor)
    .bind(&p.price.currency)
    .bind(&p.status)
    .bind(&now)
    .bind(&now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn update(tx: &mut Tx, p: &ProductRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE products SET name = $1, description = $2, category = $3, price_minor = $4,
             currency = $5, status = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.category)
    .bind(p.price.amount_minor)
    .bind(&p.price.currency)
    .bind(&p.status)
    .bind(now_text())
    .bind(p.id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn find(tx: &mut Tx, id: Uuid) -> Result<Option<ProductRecord>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| from_row(&r)).transpose()
}

pub async fn sku_taken(tx: &mut Tx, sku: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE sku = $1")
        .bind(sku)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

fn from_row(row: &AnyRow) -> Result<ProductRecord, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(ProductRecord {
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
    })
}
