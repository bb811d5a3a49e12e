//! Live availability per product, from warehouse stock events (each carries
//! the resulting levels, so the view keeps the latest). "Latest" is decided
//! by event id, not arrival: ids are UUID v7 (time-ordered) and warehouse
//! mints them while holding the product's stock row, so a redelivered older
//! event (a duplicate republished later in the stream) changes nothing.

use std::collections::BTreeMap;

use contracts::subjects::evt;
use contracts::warehouse::{
    ShipmentDispatchedV1, StockAdjustedV1, StockLevelV1, StockReleasedV1, StockReservedV1,
};
use platform::delivery::{Delivery, HandlerError};
use platform::Tx;
use uuid::Uuid;

/// A product's levels as one stock event reported them.
pub struct Level {
    product_id: Uuid,
    on_hand: i64,
    available: i64,
    /// The stream position of the event that reported them.
    seq: i64,
    event_id: Uuid,
}

/// The levels a stock event reports; `None` when its subject carries none.
pub fn levels_in(d: &Delivery) -> Result<Option<Vec<Level>>, HandlerError> {
    let lines = |lines: Vec<StockLevelV1>| -> Vec<(Uuid, i64, i64)> {
        lines
            .into_iter()
            .map(|l| (l.product_id, l.on_hand, l.available))
            .collect()
    };
    let (event_id, reported) = match d.subject.as_str() {
        evt::STOCK_ADJUSTED_V1 => {
            let e = d.decode::<StockAdjustedV1>()?;
            (
                e.id,
                vec![(e.data.product_id, e.data.on_hand, e.data.available)],
            )
        }
        evt::STOCK_RESERVED_V1 => {
            let e = d.decode::<StockReservedV1>()?;
            (e.id, lines(e.data.lines))
        }
        evt::STOCK_RELEASED_V1 => {
            let e = d.decode::<StockReleasedV1>()?;
            (e.id, lines(e.data.lines))
        }
        evt::SHIPMENT_DISPATCHED_V1 => {
            let e = d.decode::<ShipmentDispatchedV1>()?;
            (e.id, lines(e.data.lines))
        }
        _ => return Ok(None),
    };
    let seq = i64::try_from(d.stream_seq).unwrap_or(i64::MAX);
    Ok(Some(
        reported
            .into_iter()
            .map(|(product_id, on_hand, available)| Level {
                product_id,
                on_hand,
                available,
                seq,
                event_id,
            })
            .collect(),
    ))
}

/// Rows per statement of [`write`] (5 parameters each).
const CHUNK: usize = 400;

/// Writes levels reported by a run of events, as one by one would: a row
/// keeps the levels of the latest event by id, so only each product's
/// latest of the run is written, in one statement per chunk.
pub async fn write(tx: &mut Tx, levels: Vec<Level>) -> Result<(), sqlx::Error> {
    // In order of product id: two transactions lock shared rows in one order.
    let mut by_product: BTreeMap<Uuid, Level> = BTreeMap::new();
    for level in levels {
        match by_product.get(&level.product_id) {
            Some(kept) if kept.event_id >= level.event_id => {}
            _ => {
                by_product.insert(level.product_id, level);
            }
        }
    }
    let latest: Vec<Level> = by_product.into_values().collect();
    for chunk in latest.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO availability_view (product_id, on_hand, available, updated_seq, last_event_id)
             VALUES {}
             ON CONFLICT (product_id) DO UPDATE SET on_hand = excluded.on_hand,
                 available = excluded.available, updated_seq = excluded.updated_seq,
                 last_event_id = excluded.last_event_id
             WHERE availability_view.last_event_id < excluded.last_event_id",
            platform::db::values(tx, chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for l in chunk {
            query = query
                .bind(l.product_id.to_string())
                .bind(l.on_hand)
                .bind(l.available)
                .bind(l.seq)
                .bind(l.event_id.to_string());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
