//! Checkout's tables: the price replica (read here, written by prices.rs),
//! baskets and orders (sqlx, SQLite or PostgreSQL).

use chrono::{DateTime, Utc};
use contracts::checkout::OrderLineV1;
use contracts::Money;
use platform::db::now_text;
use platform::Tx;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{PricedProduct, SagaState, Status, Verdict};

fn decode_err(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

fn uuid(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(decode_err)
}

pub async fn priced_product(tx: &mut Tx, id: Uuid) -> Result<Option<PricedProduct>, sqlx::Error> {
    Ok(priced_products(tx, &[id]).await?.pop())
}

/// The products among `ids` that the price replica knows, in one statement.
pub async fn priced_products(tx: &mut Tx, ids: &[Uuid]) -> Result<Vec<PricedProduct>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT product_id, sku, name, price_minor, currency, status FROM price_replica
         WHERE product_id IN (VALUES {})",
        platform::db::values(tx, ids.len(), 1)
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id.to_string());
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            Ok(PricedProduct {
                product_id: uuid(r, "product_id")?,
                sku: r.try_get("sku")?,
                name: r.try_get("name")?,
                price: Money {
                    amount_minor: r.try_get("price_minor")?,
                    currency: r.try_get("currency")?,
                },
                active: r.try_get::<String, _>("status")? == "active",
            })
        })
        .collect()
}

/// The customer's basket lines (product, quantity), oldest first.
pub async fn basket(tx: &mut Tx, customer: &str) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT product_id, quantity FROM basket_lines WHERE customer_id = $1 ORDER BY added_at, product_id",
    )
    .bind(customer)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((uuid(r, "product_id")?, r.try_get("quantity")?)))
        .collect()
}

pub async fn set_basket_line(
    tx: &mut Tx,
    customer: &str,
    product: Uuid,
    quantity: i64,
) -> Result<(), sqlx::Error> {
    if quantity == 0 {
        sqlx::query("DELETE FROM basket_lines WHERE customer_id = $1 AND product_id = $2")
            .bind(customer)
            .bind(product.to_string())
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO basket_lines (customer_id, product_id, quantity, added_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (customer_id, product_id) DO UPDATE SET quantity = $3",
        )
        .bind(customer)
        .bind(product.to_string())
        .bind(quantity)
        .bind(now_text())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn clear_basket(tx: &mut Tx, customer: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM basket_lines WHERE customer_id = $1")
        .bind(customer)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An order as checkout stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub customer_id: String,
    pub saga: SagaState,
    pub lines: Vec<OrderLineV1>,
    pub net: Money,
    pub created_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub async fn insert_order(tx: &mut Tx, o: &OrderRow) -> Result<(), sqlx::Error> {
    let lines = serde_json::to_string(&o.lines).map_err(decode_err)?;
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, status, reason, stock, payment, lines, net_minor, currency,
             created_at, updated_at, deadline_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(o.order_id.to_string())
    .bind(&o.customer_id)
    .bind(o.saga.status.as_str())
    .bind(o.saga.reason.clone())
    .bind(o.saga.stock.to_db())
    .bind(o.saga.payment.to_db())
    .bind(lines)
    .bind(o.net.amount_minor)
    .bind(&o.net.currency)
    .bind(time(&o.created_at))
    .bind(time(&o.created_at))
    .bind(time(&o.deadline_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn load_order(tx: &mut Tx, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    // Lock the row as it is read (a no-op update that returns it: portable,
    // unlike `SELECT … FOR UPDATE`, and one statement), so that two answers
    // about one order handled at once take turns and each decides on what
    // the other committed; otherwise on PostgreSQL the second overwrites
    // the first's verdict (lost update).
    let row = sqlx::query(
        "UPDATE orders SET status = status WHERE order_id = $1
         RETURNING order_id, customer_id, status, reason, stock, payment, cancel_requested, lines,
             net_minor, currency, created_at, deadline_at",
    )
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| from_row(&r)).transpose()
}

fn from_row(r: &AnyRow) -> Result<OrderRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    let lines: String = r.try_get("lines")?;
    let stock: Option<String> = r.try_get("stock")?;
    let payment: Option<String> = r.try_get("payment")?;
    let cancel_requested: i64 = r.try_get("cancel_requested")?;
    let parse_time = |c: &str| -> Result<DateTime<Utc>, sqlx::Error> {
        let text: String = r.try_get(c)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(decode_err)
    };
    Ok(OrderRow {
        order_id: uuid(r, "order_id")?,
        customer_id: r.try_get("customer_id")?,
        saga: SagaState {
            status: Status::parse(&status)
                .ok_or_else(|| sqlx::Error::Protocol(format!("unknown order status {status:?}")))?,
            stock: Verdict::from_db(stock.as_deref()),
            payment: Verdict::from_db(payment.as_deref()),
            reason: r.try_get("reason")?,
            cancel_requested: cancel_requested != 0,
        },
        lines: serde_json::from_str(&lines).map_err(decode_err)?,
        net: Money {
            amount_minor: r.try_get("net_minor")?,
            currency: r.try_get("currency")?,
        },
        created_at: parse_time("created_at")?,
        deadline_at: parse_time("deadline_at")?,
    })
}

/// Stores the saga's new state if the order is still as `expected` left it
/// (status and cancellation request: another instance may have moved it);
/// returns whether it was stored.
pub async fn save_saga(
    tx: &mut Tx,
    id: Uuid,
    expected: &SagaState,
    saga: &SagaState,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE orders SET status = $1, reason = $2, stock = $3, payment = $4, cancel_requested = $5,
             updated_at = $6
         WHERE order_id = $7 AND status = $8 AND cancel_requested = $9",
    )
    .bind(saga.status.as_str())
    .bind(saga.reason.clone())
    .bind(saga.stock.to_db())
    .bind(saga.payment.to_db())
    .bind(i64::from(saga.cancel_requested))
    .bind(now_text())
    .bind(id.to_string())
    .bind(expected.status.as_str())
    .bind(i64::from(expected.cancel_requested))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Pending orders whose deadline has passed.
pub async fn overdue(db: &platform::Db, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT order_id FROM orders WHERE status = 'pending' AND deadline_at < $1 ORDER BY deadline_at LIMIT $2",
    )
    .bind(now_text())
    .bind(limit)
    .fetch_all(&mut *db.conn().await?)
    .await?;
    rows.iter().map(|r| uuid(r, "order_id")).collect()
}
