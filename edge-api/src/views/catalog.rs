//! Live availability per product, from warehouse stock events (each carries
//! the resulting levels, so the view just keeps the latest).

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
    match d.subject.as_str() {
        evt::STOCK_ADJUSTED_V1 => {
            let e = d.decode::<StockAdjustedV1>()?.data;
            set(tx, e.product_id, e.on_hand, e.available, seq).await?;
        }
        evt::STOCK_RESERVED_V1 => {
            levels(tx, &d.decode::<StockReservedV1>()?.data.lines, seq).await?
        }
        evt::STOCK_RELEASED_V1 => {
            levels(tx, &d.decode::<StockReleasedV1>()?.data.lines, seq).await?
        }
        evt::SHIPMENT_DISPATCHED_V1 => {
            levels(tx, &d.decode::<ShipmentDispatchedV1>()?.data.lines, seq).await?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

async fn levels(tx: &mut Tx, lines: &[StockLevelV1], seq: i64) -> Result<(), sqlx::Error> {
    for l in lines {
        set(tx, l.product_id, l.on_hand, l.available, seq).await?;
    }
    Ok(())
}

async fn set(
    tx: &mut Tx,
    product_id: Uuid,
    on_hand: i64,
    available: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO availability_view (product_id, on_hand, available, updated_seq) VALUES ($1, $2, $3, $4)
         ON CONFLICT (product_id) DO UPDATE SET on_hand = $2, available = $3, updated_seq = $4",
    )
    .bind(product_id.to_string())
    .bind(on_hand)
    .bind(available)
    .bind(seq)
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
