//! Finance's tables (sqlx, SQLite or PostgreSQL): the orders it has seen
//! placed, one payment per order, invoices and their per-year counters.
//!
//! Payments change by compare-and-set on their status, so two instances
//! handling events of one order at once cannot both move it: the loser sees
//! no row changed and decides again from what the winner committed.

use chrono::{DateTime, Datelike, Utc};
use contracts::checkout::{OrderLineV1, OrderPlacedV2};
use contracts::finance::InvoiceLineV1;
use contracts::Money;
use platform::db::now_text;
use platform::{Db, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{self, Charge, Status};

/// An order's payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub order_id: Uuid,
    pub status: Status,
    /// Set once money was held.
    pub payment_id: Option<Uuid>,
    /// What was (or would have been) held.
    pub charge: Option<Charge>,
    pub failure_reason: Option<String>,
}

impl Payment {
    /// A payment not stored yet, before its first step.
    pub fn new(order_id: Uuid, status: Status) -> Self {
        Payment {
            order_id,
            status,
            payment_id: None,
            charge: None,
            failure_reason: None,
        }
    }
}

/// An invoice about to be issued; the store gives it its number.
#[derive(Debug, Clone)]
pub struct NewInvoice<'a> {
    pub order_id: Uuid,
    pub charge: &'a Charge,
    pub lines: &'a [InvoiceLineV1],
    pub issued_at: DateTime<Utc>,
}

/// The status of an order's payment, read outside any transaction (to
/// decide whether the provider must be asked at all).
pub async fn status(db: &Db, order_id: Uuid) -> Result<Option<Status>, sqlx::Error> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
            .bind(order_id.to_string())
            .fetch_optional(&mut *db.conn().await?)
            .await?;
    text.map(|t| parse_status(&t)).transpose()
}

/// Keeps a placed order's lines for its invoice; a repeat changes nothing.
pub async fn keep_order(tx: &mut Tx, order: &OrderPlacedV2) -> Result<(), sqlx::Error> {
    let lines = serde_json::to_string(&order.lines).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, country, lines, placed_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.order_id.to_string())
    .bind(&order.customer.id)
    .bind(&order.shipping_address.country)
    .bind(lines)
    .bind(order.placed_at.to_rfc3339())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The lines of an order seen placed.
pub async fn order_lines(
    tx: &mut Tx,
    order_id: Uuid,
) -> Result<Option<Vec<OrderLineV1>>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar("SELECT lines FROM orders WHERE order_id = $1")
        .bind(order_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(e.into())))
        .transpose()
}

pub async fn load(tx: &mut Tx, order_id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT order_id, status, payment_id, currency, net_minor, tax_minor, total_minor,
                failure_reason
         FROM payments WHERE order_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| payment_from_row(&r)).transpose()
}

/// Stores `next` if the payment still stands at `expected` (None: not
/// stored yet); returns false when another transaction moved it first.
pub async fn save(
    tx: &mut Tx,
    expected: Option<Status>,
    next: &Payment,
) -> Result<bool, sqlx::Error> {
    let now = now_text();
    let charge = next.charge.as_ref();
    let query = match expected {
        // On PostgreSQL a concurrent insert of the same order makes this
        // wait for the other transaction and then do nothing.
        None => sqlx::query(
            "INSERT INTO payments (status, payment_id, currency, net_minor, tax_minor,
                 total_minor, failure_reason, updated_at, order_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)
             ON CONFLICT (order_id) DO NOTHING",
        ),
        Some(_) => sqlx::query(
            "UPDATE payments SET status = $1, payment_id = $2, currency = $3, net_minor = $4,
                 tax_minor = $5, total_minor = $6, failure_reason = $7, updated_at = $8
             WHERE order_id = $9 AND status = $10",
        ),
    };
    let query = query
        .bind(next.status.as_str())
        .bind(next.payment_id.map(|id| id.to_string()))
        .bind(charge.map(|c| c.net.currency.clone()))
        .bind(charge.map(|c| c.net.amount_minor))
        .bind(charge.map(|c| c.tax.amount_minor))
        .bind(charge.map(|c| c.total.amount_minor))
        .bind(next.failure_reason.clone())
        .bind(now)
        .bind(next.order_id.to_string());
    let query = match expected {
        Some(status) => query.bind(status.as_str()),
        None => query,
    };
    Ok(query.execute(&mut **tx).await?.rows_affected() == 1)
}

/// Issues an invoice with the next number of its year and returns the
/// number. The counter row is incremented in the caller's transaction, so
/// concurrent issuers queue on it (a row lock on PostgreSQL, the write lock
/// on SQLite) and a rolled-back transaction gives its number back.
pub async fn issue_invoice(tx: &mut Tx, invoice: &NewInvoice<'_>) -> Result<String, sqlx::Error> {
    let year = invoice.issued_at.year();
    let sequence: i64 = sqlx::query_scalar(
        "INSERT INTO invoice_counters (year, last_number) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last_number = invoice_counters.last_number + 1
         RETURNING last_number",
    )
    .bind(i64::from(year))
    .fetch_one(&mut **tx)
    .await?;
    let number = domain::invoice_number(year, sequence);
    let lines = serde_json::to_string(invoice.lines).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let charge = invoice.charge;
    sqlx::query(
        "INSERT INTO invoices (number, order_id, year, sequence, currency, net_minor, tax_minor,
             total_minor, lines, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&number)
    .bind(invoice.order_id.to_string())
    .bind(i64::from(year))
    .bind(sequence)
    .bind(&charge.net.currency)
    .bind(charge.net.amount_minor)
    .bind(charge.tax.amount_minor)
    .bind(charge.total.amount_minor)
    .bind(lines)
    .bind(
        invoice
            .issued_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
    .execute(&mut **tx)
    .await?;
    Ok(number)
}

fn payment_from_row(row: &AnyRow) -> Result<Payment, sqlx::Error> {
    let order_id: String = row.try_get("order_id")?;
    let status: String = row.try_get("status")?;
    let payment_id: Option<String> = row.try_get("payment_id")?;
    let currency: Option<String> = row.try_get("currency")?;
    let amounts: [Option<i64>; 3] = [
        row.try_get("net_minor")?,
        row.try_get("tax_minor")?,
        row.try_get("total_minor")?,
    ];
    let charge = match (currency, amounts) {
        (Some(currency), [Some(net), Some(tax), Some(total)]) => {
            let money = |amount_minor| Money {
                amount_minor,
                currency: currency.clone(),
            };
            Some(Charge {
                net: money(net),
                tax: money(tax),
                total: money(total),
            })
        }
        _ => None,
    };
    Ok(Payment {
        order_id: parse_uuid(&order_id)?,
        status: parse_status(&status)?,
        payment_id: payment_id.as_deref().map(parse_uuid).transpose()?,
        charge,
        failure_reason: row.try_get("failure_reason")?,
    })
}

fn parse_status(text: &str) -> Result<Status, sqlx::Error> {
    Status::parse(text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown payment status {text:?}").into()))
}

fn parse_uuid(text: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
