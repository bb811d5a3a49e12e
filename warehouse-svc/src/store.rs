//! The warehouse's tables (sqlx, SQLite or PostgreSQL, one SQL for both).
//!
//! Concurrency rests on two habits. Stock is only ever changed by
//! conditional or relative updates (`reserved = reserved + $1 … WHERE
//! on_hand - reserved >= $1`), which PostgreSQL re-checks against the newest
//! row version, so no read-then-write window exists. And every reaction
//! first locks its order's row ([`lock_order`]) and then the stock rows in
//! product-id order, so all transactions take locks in one order.

use contracts::EventContext;
use platform::db::now_text;
use platform::{Db, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{Demand, Level, OrderState};

pub const HELD: &str = "held";
pub const RELEASED: &str = "released";
pub const SHIPPED: &str = "shipped";

const SCHEDULED: &str = "scheduled";
const DISPATCHED: &str = "dispatched";
const CANCELLED: &str = "cancelled";

// ---- stock ----------------------------------------------------------------

/// Creates the product's stock row at zero if it has none; true if created.
pub async fn ensure_stock(tx: &mut Tx, product_id: Uuid) -> Result<bool, sqlx::Error> {
    let created = sqlx::query(
        "INSERT INTO stock (product_id, on_hand, reserved, updated_at) VALUES ($1, 0, 0, $2)
         ON CONFLICT (product_id) DO NOTHING",
    )
    .bind(product_id.to_string())
    .bind(now_text())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(created == 1)
}

/// Locks the product's stock row until the transaction ends (a no-op
/// update: portable, unlike `SELECT … FOR UPDATE`) and reads it, in one
/// statement.
pub async fn lock_stock(tx: &mut Tx, product_id: Uuid) -> Result<Option<Level>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE stock SET on_hand = on_hand WHERE product_id = $1 RETURNING on_hand, reserved",
    )
    .bind(product_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| level_of(&r)).transpose()
}

/// The product's stock level, or `None` if the warehouse never counted it.
pub async fn level(tx: &mut Tx, product_id: Uuid) -> Result<Option<Level>, sqlx::Error> {
    let row = sqlx::query("SELECT on_hand, reserved FROM stock WHERE product_id = $1")
        .bind(product_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| level_of(&r)).transpose()
}

/// The level of a change that must have found the product's row.
fn found(level: Option<Level>, product_id: Uuid) -> Result<Level, sqlx::Error> {
    level.ok_or_else(|| sqlx::Error::Protocol(format!("stock row of {product_id} vanished")))
}

pub async fn set_on_hand(tx: &mut Tx, product_id: Uuid, on_hand: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE stock SET on_hand = $1, updated_at = $2 WHERE product_id = $3")
        .bind(on_hand)
        .bind(now_text())
        .bind(product_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Holds `quantity` units if that many are available, in one statement;
/// returns the level afterwards if it did. This is what keeps stock from
/// being oversold.
pub async fn try_reserve(tx: &mut Tx, want: Demand) -> Result<Option<Level>, sqlx::Error> {
    change(
        tx,
        "UPDATE stock SET reserved = reserved + $1, updated_at = $2
         WHERE product_id = $3 AND on_hand - reserved >= $1
         RETURNING on_hand, reserved",
        want,
    )
    .await
}

/// Gives back units held for an order; returns the level afterwards.
pub async fn unreserve(tx: &mut Tx, held: Demand) -> Result<Level, sqlx::Error> {
    let row = change(
        tx,
        "UPDATE stock SET reserved = reserved - $1, updated_at = $2 WHERE product_id = $3
         RETURNING on_hand, reserved",
        held,
    )
    .await?;
    found(row, held.product_id)
}

/// Takes units held for an order off the shelf; returns the level afterwards.
pub async fn take_out(tx: &mut Tx, held: Demand) -> Result<Level, sqlx::Error> {
    let row = change(
        tx,
        "UPDATE stock SET on_hand = on_hand - $1, reserved = reserved - $1, updated_at = $2
         WHERE product_id = $3
         RETURNING on_hand, reserved",
        held,
    )
    .await?;
    found(row, held.product_id)
}

/// Runs a relative stock update (`$1` quantity, `$2` now, `$3` product,
/// `RETURNING on_hand, reserved`) and returns the level it left, or `None`
/// when it changed no row.
async fn change(tx: &mut Tx, sql: &str, d: Demand) -> Result<Option<Level>, sqlx::Error> {
    let row = sqlx::query(sql)
        .bind(d.quantity)
        .bind(now_text())
        .bind(d.product_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| level_of(&r)).transpose()
}

fn level_of(row: &AnyRow) -> Result<Level, sqlx::Error> {
    Ok(Level {
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
    })
}

// ---- orders and reservations ----------------------------------------------

/// Locks the order's row (creating it `open` if the warehouse has not heard
/// of the order) and returns its state. Every reaction and the dispatcher
/// call this first, so the events of one order are handled one at a time
/// whichever instances they reach.
pub async fn lock_order(tx: &mut Tx, order_id: Uuid) -> Result<OrderState, sqlx::Error> {
    // One statement: an upsert locks the row whether it inserted it or
    // found it (a plain `DO NOTHING` would not lock a row that existed).
    let state: String = sqlx::query_scalar(
        "INSERT INTO orders (order_id, state, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (order_id) DO UPDATE SET updated_at = excluded.updated_at
         RETURNING state",
    )
    .bind(order_id.to_string())
    .bind(OrderState::Open.as_str())
    .bind(now_text())
    .fetch_one(&mut **tx)
    .await?;
    OrderState::parse(&state)
        .ok_or_else(|| sqlx::Error::Protocol(format!("order {order_id} has state {state:?}")))
}

pub async fn set_order_state(
    tx: &mut Tx,
    order_id: Uuid,
    state: OrderState,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET state = $1, updated_at = $2 WHERE order_id = $3")
        .bind(state.as_str())
        .bind(now_text())
        .bind(order_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records what is held for an order, one row per product, in one statement.
pub async fn insert_reservations(
    tx: &mut Tx,
    order_id: Uuid,
    held: &[Demand],
) -> Result<(), sqlx::Error> {
    if held.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO reservations (order_id, product_id, quantity, status, created_at, updated_at)
         VALUES {}",
        platform::db::values(tx, held.len(), 6)
    );
    let now = now_text();
    let order_id = order_id.to_string();
    let mut query = sqlx::query(&sql);
    for d in held {
        query = query
            .bind(order_id.clone())
            .bind(d.product_id.to_string())
            .bind(d.quantity)
            .bind(HELD)
            .bind(now.clone())
            .bind(now.clone());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// What is held for an order (in no particular order).
pub async fn held_for(tx: &mut Tx, order_id: Uuid) -> Result<Vec<Demand>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT product_id, quantity FROM reservations WHERE order_id = $1 AND status = $2",
    )
    .bind(order_id.to_string())
    .bind(HELD)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Demand {
                product_id: uuid_of(row, "product_id")?,
                quantity: row.try_get("quantity")?,
            })
        })
        .collect()
}

/// Moves the order's held reservations to `status` (released or shipped).
pub async fn finish_reservations(
    tx: &mut Tx,
    order_id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reservations SET status = $1, updated_at = $2 WHERE order_id = $3 AND status = $4",
    )
    .bind(status)
    .bind(now_text())
    .bind(order_id.to_string())
    .bind(HELD)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// ---- shipments --------------------------------------------------------------

/// A shipment the dispatcher has claimed.
#[derive(Debug, Clone)]
pub struct Shipment {
    pub shipment_id: Uuid,
    /// The context of the `order.confirmed` that scheduled it.
    pub cause: EventContext,
}

/// Schedules the order's shipment, unless it has one already.
pub async fn schedule_shipment(
    tx: &mut Tx,
    order_id: Uuid,
    shipment_id: Uuid,
    due_at: &str,
    cause: &EventContext,
) -> Result<bool, sqlx::Error> {
    let scheduled = sqlx::query(
        "INSERT INTO shipments (order_id, shipment_id, status, due_at, correlation_id,
             causation_id, traceparent, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id.to_string())
    .bind(shipment_id.to_string())
    .bind(SCHEDULED)
    .bind(due_at)
    .bind(&cause.correlation_id)
    .bind(&cause.causation_id)
    .bind(cause.traceparent.clone())
    .bind(now_text())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(scheduled == 1)
}

/// Cancels the order's shipment if it has not left yet.
pub async fn cancel_shipment(tx: &mut Tx, order_id: Uuid) -> Result<bool, sqlx::Error> {
    let cancelled =
        sqlx::query("UPDATE shipments SET status = $1 WHERE order_id = $2 AND status = $3")
            .bind(CANCELLED)
            .bind(order_id.to_string())
            .bind(SCHEDULED)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(cancelled == 1)
}

/// Orders whose shipment is due at `now`, oldest first, at most `limit`.
pub async fn due_shipments(db: &Db, now: &str, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut conn = db.conn().await?;
    let rows = sqlx::query(
        "SELECT order_id FROM shipments WHERE status = $1 AND due_at <= $2
         ORDER BY due_at LIMIT $3",
    )
    .bind(SCHEDULED)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| uuid_of(r, "order_id")).collect()
}

/// Claims the order's scheduled shipment for dispatch. Only one transaction
/// can move it from scheduled to dispatched, so no two instances ship it.
pub async fn claim_shipment(
    tx: &mut Tx,
    order_id: Uuid,
    at: &str,
) -> Result<Option<Shipment>, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE shipments SET status = $1, dispatched_at = $2 WHERE order_id = $3 AND status = $4",
    )
    .bind(DISPATCHED)
    .bind(at)
    .bind(order_id.to_string())
    .bind(SCHEDULED)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT shipment_id, correlation_id, causation_id, traceparent FROM shipments
         WHERE order_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(Shipment {
        shipment_id: uuid_of(&row, "shipment_id")?,
        cause: EventContext {
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            traceparent: row.try_get("traceparent")?,
        },
    }))
}

fn uuid_of(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
