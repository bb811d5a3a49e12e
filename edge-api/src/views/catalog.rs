//! Live availability per product, from warehouse stock events (each carries
//! the resulting levels, so the view keeps the latest). "Latest" is decided
//! by event id, not arrival: ids are UUID v7 (time-ordered) and warehouse
//! mints them while holding the product's stock row, so a redelivered older
//! event (a duplicate republished later in the stream) changes nothing.

use contracts::subjects::evt;
use contracts::warehouse::{
    ShipmentDispatchedV1, StockAdjustedV1, StockLevelV1, StockReleasedV1, StockReservedV1,
};
use platform::delivery::{Delivery, HandlerError};
use platform::Tx;
use uuid::Uuid;

/// Applies a stock event; false when the subject carries no levels.
pub async fn apply_stock(tx: &mut Tx, d: &Delivery) -> Result<bool, HandlerError> {
    let seq = i64::try_from(d.stream_seq).unwrap_or(i64::MAX);
    let id = d.raw()?.id.to_string();
    let at = Stamp { seq, id: &id };
    match d.subject.as_str() {
        evt::STOCK_ADJUSTED_V1 => {
            let e = d.decode::<StockAdjustedV1>()?.data;
            set(tx, e.product_id, e.on_hand, e.available, &at).await?;
        }
        evt::STOCK_RESERVED_V1 => {
            levels(tx, &d.decode::<StockReservedV1>()?.data.lines, &at).await?
        }
        evt::STOCK_RELEASED_V1 => {
            levels(tx, &d.decode::<StockReleasedV1>()?.data.lines, &at).await?
        }
        evt::SHIPMENT_DISPATCHED_V1 => {
            levels(tx, &d.decode::<ShipmentDispatchedV1>()?.data.lines, &at).await?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Which event set a row.
struct Stamp<'a> {
    seq: i64,
    id: &'a str,
}

async fn levels(tx: &mut Tx, lines: &[StockLevelV1], at: &Stamp<'_>) -> Result<(), sqlx::Error> {
    for l in lines {
        set(tx, l.product_id, l.on_hand, l.available, at).await?;
    }
    Ok(())
}

async fn set(
    tx: &mut Tx,
    product_id: Uuid,
    on_hand: i64,
    available: i64,
    at: &Stamp<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO availability_view (product_id, on_hand, available, updated_seq, last_event_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (product_id) DO UPDATE SET on_hand = $2, available = $3, updated_seq = $4, last_event_id = $5
         WHERE availability_view.last_event_id < $5",
    )
    .bind(product_id.to_string())
    .bind(on_hand)
    .bind(available)
    .bind(at.seq)
    .bind(at.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Units on hand and available, if the warehouse ever reported the product.
pub async fn levels_of(
    db: &platform::Db,
    product_id: Uuid,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (i64, i64)>(
        "SELECT on_hand, available FROM availability_view WHERE product_id = $1",
    )
    .bind(product_id.to_string())
    .fetch_optional(db.pool())
    .await
}
