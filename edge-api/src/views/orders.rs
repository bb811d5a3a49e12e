//! Orders as customers see them, with a timeline of every step across
//! teams. Events about one order arrive on three streams in any relative
//! order, so each fills only what it knows, and the status is derived from
//! flags: cancelled > rejected > shipped > confirmed > pending.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use contracts::checkout::{
    OrderCancellationRequestedV1, OrderCancelledV1, OrderLineV1, OrderPlacedV1, OrderPlacedV2,
    OrderRejectedV1,
};
use contracts::finance::{InvoiceIssuedV1, PaymentAuthorizedV1};
use contracts::subjects::evt;
use contracts::{Money, RawEnvelope, Team};
use platform::db::placeholders;
use platform::delivery::{Delivery, HandlerError};
use platform::{Db, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

const STATUS: &str =
    "status = CASE WHEN cancelled = 1 THEN 'cancelled' WHEN rejected = 1 THEN 'rejected'
    WHEN shipped = 1 THEN 'shipped' WHEN confirmed = 1 THEN 'confirmed' ELSE 'pending' END";

/// An event about an order, decoded once. A batch records every step on
/// its order's timeline together ([`touch`]), then writes what each step
/// changes besides ([`apply`]).
pub struct Step<'a> {
    d: &'a Delivery,
    raw: RawEnvelope,
    order_id: Uuid,
}

/// The order step `d` is, if it is one of the order events of `team`'s
/// stream the views project; poison when it names no valid order.
pub fn step(team: Team, d: &Delivery) -> Result<Option<Step<'_>>, HandlerError> {
    let ours = match team {
        Team::Checkout => matches!(
            d.subject.as_str(),
            evt::ORDER_PLACED_V1
                | evt::ORDER_PLACED_V2
                | evt::ORDER_CONFIRMED_V1
                | evt::ORDER_REJECTED_V1
                | evt::ORDER_CANCELLED_V1
                | evt::ORDER_CANCELLATION_REQUESTED_V1
        ),
        // Stock levels are the catalog's business.
        Team::Warehouse => matches!(
            d.subject.as_str(),
            evt::STOCK_RESERVED_V1
                | evt::STOCK_RESERVATION_FAILED_V1
                | evt::STOCK_RELEASED_V1
                | evt::SHIPMENT_DISPATCHED_V1
        ),
        // Amounts with tax, payment outcomes, the invoice.
        Team::Finance => {
            contracts::catalog::by_subject(&d.subject).is_some_and(|e| e.team == Team::Finance)
        }
        Team::Product => false,
    };
    if !ours {
        return Ok(None);
    }
    let raw = d.raw()?;
    let order_id = order_id_of(&raw)?;
    Ok(Some(Step { d, raw, order_id }))
}

/// What a step changes in its order besides the timeline; [`touch`] must
/// have recorded it first (it creates the order's row).
pub async fn apply(tx: &mut Tx, step: Step<'_>) -> Result<(), HandlerError> {
    let Step { d, raw, order_id } = step;
    match d.subject.as_str() {
        // History still holds v1: both are read as v2.
        evt::ORDER_PLACED_V1 | evt::ORDER_PLACED_V2 => {
            let e = raw.decode_or_upcast::<OrderPlacedV1, OrderPlacedV2>()?.data;
            let lines =
                serde_json::to_string(&e.lines).map_err(|e| HandlerError::Poison(e.to_string()))?;
            sqlx::query(
                "UPDATE orders_view SET customer_id = $1, lines = $2, net_minor = $3, currency = $4, created_at = $5
                 WHERE order_id = $6",
            )
            .bind(&e.customer.id)
            .bind(lines)
            .bind(e.net.amount_minor)
            .bind(&e.net.currency)
            .bind(time(&e.placed_at))
            .bind(order_id.to_string())
            .execute(&mut **tx)
            .await?;
        }
        evt::ORDER_CONFIRMED_V1 => flag(tx, order_id, "confirmed", None).await?,
        evt::ORDER_REJECTED_V1 => {
            let e = raw.decode::<OrderRejectedV1>()?.data;
            flag(tx, order_id, "rejected", Some(e.reason)).await?;
        }
        // Only a step on the timeline: the order stays confirmed until the
        // warehouse stops its shipment (then `order.cancelled` follows).
        evt::ORDER_CANCELLATION_REQUESTED_V1 => {
            let _ = raw.decode::<OrderCancellationRequestedV1>()?;
        }
        evt::ORDER_CANCELLED_V1 => {
            let _ = raw.decode::<OrderCancelledV1>()?;
            flag(
                tx,
                order_id,
                "cancelled",
                Some("cancelled_by_customer".into()),
            )
            .await?;
        }
        evt::SHIPMENT_DISPATCHED_V1 => flag(tx, order_id, "shipped", None).await?,
        evt::PAYMENT_AUTHORIZED_V1 => {
            let e = raw.decode::<PaymentAuthorizedV1>()?.data;
            sqlx::query(
                "UPDATE orders_view SET tax_minor = $1, total_minor = $2 WHERE order_id = $3",
            )
            .bind(e.tax.amount_minor)
            .bind(e.total.amount_minor)
            .bind(order_id.to_string())
            .execute(&mut **tx)
            .await?;
        }
        evt::INVOICE_ISSUED_V1 => {
            let e = raw.decode::<InvoiceIssuedV1>()?.data;
            let body =
                serde_json::to_string(&e).map_err(|e| HandlerError::Poison(e.to_string()))?;
            sqlx::query(
                "INSERT INTO invoice_view (order_id, number, body, issued_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (order_id) DO UPDATE SET number = $2, body = $3, issued_at = $4",
            )
            .bind(order_id.to_string())
            .bind(&e.number)
            .bind(body)
            .bind(time(&e.issued_at))
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

fn order_id_of(raw: &RawEnvelope) -> Result<Uuid, HandlerError> {
    raw.data
        .get("order_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| HandlerError::Poison(format!("{} without a valid order_id", raw.event_type)))
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Rows per statement of [`touch`] (at most 5 parameters each).
const CHUNK: usize = 400;

/// Makes sure each step's order row exists and records the steps on their
/// timelines, in two statements per chunk, exactly as one by one would:
/// `updated_at` only moves forward (the three streams' events arrive in
/// any relative order, and a replay must end with the same value as live
/// did), and a step already on the timeline is not recorded again.
pub async fn touch(tx: &mut Tx, steps: &[Step<'_>]) -> Result<(), sqlx::Error> {
    // One row per order, with its latest step: an upsert may not meet the
    // same row twice (PostgreSQL refuses it). In order of id, so the three
    // order projections lock the rows they share in one order (no deadlock
    // between their transactions on PostgreSQL).
    let mut latest: BTreeMap<Uuid, String> = BTreeMap::new();
    // A redelivered copy (same event, another stream position) is the same
    // step: it has the same type and time, so only the first is recorded.
    let mut timeline: Vec<(&Step<'_>, String)> = Vec::with_capacity(steps.len());
    let mut seen: HashSet<(Uuid, &str, String)> = HashSet::with_capacity(steps.len());
    for step in steps {
        let at = time(&step.raw.time);
        let newest = latest.entry(step.order_id).or_insert_with(|| at.clone());
        if *newest < at {
            *newest = at.clone();
        }
        if seen.insert((step.order_id, step.raw.event_type.as_str(), at.clone())) {
            timeline.push((step, at));
        }
    }
    let latest: Vec<(Uuid, String)> = latest.into_iter().collect();
    for chunk in latest.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO orders_view (order_id, updated_at) VALUES {}
             ON CONFLICT (order_id) DO UPDATE SET updated_at = CASE
                 WHEN orders_view.updated_at >= excluded.updated_at THEN orders_view.updated_at
                 ELSE excluded.updated_at END",
            platform::db::values(tx, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for (order_id, at) in chunk {
            query = query.bind(order_id.to_string()).bind(at);
        }
        query.execute(&mut **tx).await?;
    }
    for chunk in timeline.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO order_timeline (order_id, stream, seq, event_type, at)
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5
             FROM (VALUES {}) AS v
             WHERE NOT EXISTS (SELECT 1 FROM order_timeline t WHERE t.order_id = v.column1
                 AND t.event_type = v.column4 AND t.at = v.column5)
             ON CONFLICT (order_id, stream, seq) DO NOTHING",
            platform::db::values(tx, chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for (step, at) in chunk {
            query = query
                .bind(step.order_id.to_string())
                .bind(&step.d.stream)
                .bind(i64::try_from(step.d.stream_seq).unwrap_or(i64::MAX))
                .bind(&step.raw.event_type)
                .bind(at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Sets one status flag and derives the status in one statement. Every
/// `SET` expression of an UPDATE sees the row as it was, so the status is
/// derived with the flag being set taken as true.
async fn flag(
    tx: &mut Tx,
    order_id: Uuid,
    column: &'static str,
    reason: Option<String>,
) -> Result<(), sqlx::Error> {
    // `column` is one of our constants, never input.
    let status = STATUS.replace(&format!("{column} = 1"), "1 = 1");
    sqlx::query(&format!(
        "UPDATE orders_view SET {column} = 1, reason = COALESCE($1, reason), {status}
         WHERE order_id = $2"
    ))
    .bind(reason)
    .bind(order_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An order as the view holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: String,
    pub status: String,
    pub lines: Vec<OrderLineV1>,
    pub net: Money,
    pub tax: Option<Money>,
    pub total: Option<Money>,
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub timeline: Vec<(String, String)>,
}

const COLUMNS: &str =
    "order_id, customer_id, status, lines, net_minor, tax_minor, total_minor, currency, reason,
    created_at, updated_at";

/// The order, if it has been placed and belongs to `customer`, with its
/// timeline: one statement, each timeline entry a row (none: one row of
/// NULLs). A statement is a round trip to SQLite's worker thread, and every
/// follower of an order reads it again on each step of the saga.
pub async fn find(
    db: &Db,
    order_id: Uuid,
    customer: &str,
) -> Result<Option<OrderView>, sqlx::Error> {
    // `o.` qualifies the first of COLUMNS, order_id, which both tables have.
    let rows = sqlx::query(&format!(
        "SELECT o.{COLUMNS}, t.event_type, t.at FROM orders_view o
         LEFT JOIN order_timeline t ON t.order_id = o.order_id
         WHERE o.order_id = $1 AND o.customer_id = $2 AND o.lines IS NOT NULL
         ORDER BY t.at, t.stream, t.seq"
    ))
    .bind(order_id.to_string())
    .bind(customer)
    .fetch_all(&mut *db.conn().await?)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut order = from_row(first)?;
    for row in &rows {
        let event_type: Option<String> = row.try_get("event_type")?;
        let at: Option<String> = row.try_get("at")?;
        if let (Some(event_type), Some(at)) = (event_type, at) {
            order.timeline.push((event_type, at));
        }
    }
    Ok(Some(order))
}

/// A customer's orders, newest first, after the `before` position.
pub async fn list(
    db: &Db,
    customer: &str,
    before: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<OrderView>, sqlx::Error> {
    let rows = match before {
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM orders_view WHERE customer_id = $1 AND lines IS NOT NULL
                 ORDER BY created_at DESC, order_id DESC LIMIT $2"
            ))
            .bind(customer)
            .bind(limit)
            .fetch_all(&mut *db.conn().await?)
            .await?
        }
        Some((created_at, id)) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM orders_view WHERE customer_id = $1 AND lines IS NOT NULL
                   AND (created_at < $2 OR (created_at = $2 AND order_id < $3))
                 ORDER BY created_at DESC, order_id DESC LIMIT $4"
            ))
            .bind(customer)
            .bind(created_at)
            .bind(id.to_string())
            .bind(limit)
            .fetch_all(&mut *db.conn().await?)
            .await?
        }
    };
    let mut orders = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    // Every order's timeline in one statement, not one per order.
    let mut timelines = timelines(db, &orders).await?;
    for order in &mut orders {
        order.timeline = timelines.remove(&order.order_id).unwrap_or_default();
    }
    Ok(orders)
}

/// The timelines of `orders`, each in order, by order id.
async fn timelines(
    db: &Db,
    orders: &[OrderView],
) -> Result<HashMap<Uuid, Vec<(String, String)>>, sqlx::Error> {
    let mut timelines: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
    if orders.is_empty() {
        return Ok(timelines);
    }
    let sql = format!(
        "SELECT order_id, event_type, at FROM order_timeline
         WHERE order_id IN (SELECT column1 FROM (VALUES {}) AS v)
         ORDER BY order_id, at, stream, seq",
        placeholders(db.backend(), 0, orders.len(), 1)
    );
    let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
    for order in orders {
        query = query.bind(order.order_id.to_string());
    }
    let rows = query.fetch_all(&mut *db.conn().await?).await?;
    for (order_id, event_type, at) in rows {
        let order_id = Uuid::parse_str(&order_id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        timelines
            .entry(order_id)
            .or_default()
            .push((event_type, at));
    }
    Ok(timelines)
}

fn from_row(r: &AnyRow) -> Result<OrderView, sqlx::Error> {
    let decode = |e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::Decode(e);
    let id: String = r.try_get("order_id")?;
    let lines: String = r.try_get("lines")?;
    let currency: Option<String> = r.try_get("currency")?;
    let currency = currency.unwrap_or_else(|| "EUR".into());
    let money = |minor: Option<i64>| {
        minor.map(|amount_minor| Money {
            amount_minor,
            currency: currency.clone(),
        })
    };
    let net: Option<i64> = r.try_get("net_minor")?;
    Ok(OrderView {
        order_id: Uuid::parse_str(&id).map_err(|e| decode(Box::new(e)))?,
        customer_id: r
            .try_get::<Option<String>, _>("customer_id")?
            .unwrap_or_default(),
        status: r.try_get("status")?,
        lines: serde_json::from_str(&lines).map_err(|e| decode(Box::new(e)))?,
        net: money(net).unwrap_or_else(|| Money::zero(&currency)),
        tax: money(r.try_get("tax_minor")?),
        total: money(r.try_get("total_minor")?),
        reason: r.try_get("reason")?,
        created_at: r
            .try_get::<Option<String>, _>("created_at")?
            .unwrap_or_default(),
        updated_at: r.try_get("updated_at")?,
        timeline: Vec::new(),
    })
}

/// The invoice of an order, as issued.
pub async fn invoice(db: &Db, order_id: Uuid) -> Result<Option<InvoiceIssuedV1>, sqlx::Error> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM invoice_view WHERE order_id = $1")
            .bind(order_id.to_string())
            .fetch_optional(&mut *db.conn().await?)
            .await?;
    body.map(|b| serde_json::from_str(&b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::STATUS;

    #[test]
    fn every_flag_is_a_condition_of_the_status() {
        // `flag` derives the status by taking its flag's condition as true.
        for column in ["confirmed", "rejected", "shipped", "cancelled"] {
            assert!(
                STATUS.contains(&format!("WHEN {column} = 1 THEN")),
                "{column} is not a condition of the status"
            );
        }
    }
}
