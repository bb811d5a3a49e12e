//! The warehouse's rules, with no I/O: who may set stock and to what, what an
//! order asks for, whether a reservation holds all of it or nothing, and
//! what each checkout event does to the warehouse's view of an order.
//!
//! Reservations themselves are made by conditional updates in the store (a
//! read-then-write decision here would race with other instances); the
//! store reports how each line went and [`settle`] turns that into the one
//! event the order gets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use contracts::auth::Role;
use contracts::checkout::OrderLineV1;
use contracts::commands::SetStock;
use contracts::warehouse::{
    ShipmentDispatchedV1, ShortLineV1, StockAdjustedV1, StockLevelV1, StockReleasedV1,
    StockReservationFailedV1, StockReservedV1,
};
use uuid::Uuid;

/// The most units of one product the warehouse counts.
pub const MAX_ON_HAND: i64 = 1_000_000_000;

/// Why a reservation failed, as published.
pub const OUT_OF_STOCK: &str = "out_of_stock";
pub const UNKNOWN_PRODUCT: &str = "unknown_product";

/// A product's stock: units on the shelves and units held for open orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub on_hand: i64,
    pub reserved: i64,
}

impl Level {
    /// Units that can still be promised to an order.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// The level as an event line, with the quantity the event moved.
    pub fn line(&self, product_id: Uuid, quantity: i64) -> StockLevelV1 {
        StockLevelV1 {
            product_id,
            quantity,
            on_hand: self.on_hand,
            available: self.available(),
        }
    }
}

// ---- setting stock -------------------------------------------------------

/// Why a set-stock command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetStockError {
    #[error("only an admin may set stock")]
    Forbidden,
    #[error("on_hand must be between 0 and {MAX_ON_HAND}")]
    OutOfRange,
    #[error("{reserved} units are reserved for open orders")]
    BelowReserved { reserved: i64 },
}

/// The checks that need no stored state: role and range.
pub fn check_set_stock(role: Role, cmd: &SetStock) -> Result<(), SetStockError> {
    if role != Role::Admin {
        return Err(SetStockError::Forbidden);
    }
    if !(0..=MAX_ON_HAND).contains(&cmd.on_hand) {
        return Err(SetStockError::OutOfRange);
    }
    Ok(())
}

/// The outcome of a stock count: the new level, and the event when
/// something changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    pub level: Level,
    pub event: Option<StockAdjustedV1>,
}

/// Sets `on_hand` of a product whose current level is `current`. `created`
/// says the product was unknown until now: its first count is news even at
/// zero (it turns "unknown product" into "out of stock"), so it is published.
pub fn set_stock(
    product_id: Uuid,
    current: Level,
    created: bool,
    on_hand: i64,
) -> Result<Adjustment, SetStockError> {
    if on_hand < current.reserved {
        return Err(SetStockError::BelowReserved {
            reserved: current.reserved,
        });
    }
    let level = Level {
        on_hand,
        reserved: current.reserved,
    };
    let delta = on_hand - current.on_hand;
    let event = (delta != 0 || created).then(|| StockAdjustedV1 {
        product_id,
        delta,
        on_hand,
        available: level.available(),
    });
    Ok(Adjustment { level, event })
}

// ---- orders ---------------------------------------------------------------

/// The warehouse's view of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Heard of, nothing decided yet.
    Open,
    /// Stock is held for every line.
    Held,
    /// Could not be reserved; nothing held.
    Failed,
    /// Was held, then rejected or cancelled: stock given back.
    Released,
    /// Rejected or cancelled while nothing was held.
    Closed,
    /// Left the warehouse.
    Shipped,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Open => "open",
            OrderState::Held => "held",
            OrderState::Failed => "failed",
            OrderState::Released => "released",
            OrderState::Closed => "closed",
            OrderState::Shipped => "shipped",
        }
    }

    pub fn parse(text: &str) -> Option<OrderState> {
        [
            OrderState::Open,
            OrderState::Held,
            OrderState::Failed,
            OrderState::Released,
            OrderState::Closed,
            OrderState::Shipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What an order asks of one product, all its lines for it added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// An `order.placed` the warehouse cannot act on: it breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order has no lines")]
    NoLines,
    #[error("the line for {product_id} has quantity {quantity}; it must be positive")]
    BadQuantity { product_id: Uuid, quantity: i64 },
    #[error("the quantities for {product_id} add up past the largest number")]
    Overflow { product_id: Uuid },
}

/// The order's demand per product, in product-id order. Every transaction
/// touches stock rows in this one order, so two of them never wait on each
/// other in a cycle (no deadlocks on PostgreSQL).
pub fn demand(lines: &[OrderLineV1]) -> Result<Vec<Demand>, OrderError> {
    if lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    let mut sums: BTreeMap<Uuid, i64> = BTreeMap::new();
    for line in lines {
        if line.quantity <= 0 {
            return Err(OrderError::BadQuantity {
                product_id: line.product_id,
                quantity: line.quantity,
            });
        }
        let sum = sums.entry(line.product_id).or_insert(0);
        *sum = sum.checked_add(line.quantity).ok_or(OrderError::Overflow {
            product_id: line.product_id,
        })?;
    }
    Ok(sums
        .into_iter()
        .map(|(product_id, quantity)| Demand {
            product_id,
            quantity,
        })
        .collect())
}

/// Puts stored demand (e.g. an order's reservations) in product-id order.
pub fn in_lock_order(mut demand: Vec<Demand>) -> Vec<Demand> {
    demand.sort_by_key(|d| d.product_id);
    demand
}

/// Whether an `order.placed` may still reserve: only an order nothing has
/// been decided for. A repeat finds it held or failed; a late one finds it
/// already rejected (closed) and must not hold stock for a dead order.
pub fn may_reserve(state: OrderState) -> bool {
    state == OrderState::Open
}

/// How one line of a reservation attempt went (levels as read afterwards;
/// `None` when the product has no stock row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    /// The conditional update held the units.
    Held(Level),
    /// The conditional update found too few units (or no product).
    Refused(Option<Level>),
    /// Not attempted, because an earlier line was refused.
    Skipped(Option<Level>),
}

/// The single answer to an order: every line held, or nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Reserved(StockReservedV1),
    Failed(StockReservationFailedV1),
}

/// Decides the order's answer from how each line went. Any refused line
/// fails the whole order; the failure names every line that is short (the
/// refused ones, and skipped ones that would not have fit either).
pub fn settle(order_id: Uuid, results: &[(Demand, LineResult)]) -> Settlement {
    let mut held = Vec::with_capacity(results.len());
    let mut short = Vec::new();
    let mut unknown = false;
    let mut refused = false;
    for (d, result) in results {
        let (level, is_short) = match *result {
            LineResult::Held(level) => {
                held.push(level.line(d.product_id, d.quantity));
                continue;
            }
            LineResult::Refused(level) => {
                refused = true;
                (level, true)
            }
            LineResult::Skipped(level) => (level, level.is_none_or(|l| l.available() < d.quantity)),
        };
        if is_short {
            unknown |= level.is_none();
            short.push(ShortLineV1 {
                product_id: d.product_id,
                requested: d.quantity,
                available: level.map_or(0, |l| l.available().max(0)),
            });
        }
    }
    if !refused && short.is_empty() && held.len() == results.len() {
        return Settlement::Reserved(StockReservedV1 {
            order_id,
            lines: held,
        });
    }
    Settlement::Failed(StockReservationFailedV1 {
        order_id,
        reason: if unknown {
            UNKNOWN_PRODUCT
        } else {
            OUT_OF_STOCK
        }
        .to_owned(),
        short,
    })
}

/// What a rejected or cancelled order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Give back what is held (→ released) and publish it.
    Release,
    /// Nothing is held: remember the order is over (→ closed), so a late
    /// `order.placed` does not hold stock for it; publish nothing.
    MarkClosed,
    /// Already over (released, closed or shipped): nothing to do.
    Nothing,
}

pub fn on_closed(state: OrderState) -> Close {
    match state {
        OrderState::Held => Close::Release,
        OrderState::Open | OrderState::Failed => Close::MarkClosed,
        OrderState::Released | OrderState::Closed | OrderState::Shipped => Close::Nothing,
    }
}

/// What a request to cancel a confirmed order does: stock still held means
/// the shipment has not left, so it is stopped and the stock released (the
/// answer checkout waits for); a shipped order lets the request lapse, its
/// `shipment.dispatched` being the answer. Nothing is marked closed: the
/// order is over only once checkout says so.
pub fn on_cancel_requested(state: OrderState) -> Close {
    match state {
        OrderState::Held => Close::Release,
        _ => Close::Nothing,
    }
}

/// Whether a confirmed order gets a shipment: only one whose stock is held.
pub fn may_schedule(state: OrderState) -> bool {
    state == OrderState::Held
}

/// Whether a due shipment may leave: its order must still hold its stock
/// (a release cancels the shipment, so this is a second guard).
pub fn may_dispatch(state: OrderState) -> bool {
    state == OrderState::Held
}

/// The release event, from each released line and its level afterwards.
pub fn released(order_id: Uuid, lines: &[(Demand, Level)]) -> StockReleasedV1 {
    StockReleasedV1 {
        order_id,
        lines: lines
            .iter()
            .map(|(d, level)| level.line(d.product_id, d.quantity))
            .collect(),
    }
}

/// The dispatch event, from each shipped line and its level afterwards.
pub fn dispatched(
    order_id: Uuid,
    shipment_id: Uuid,
    lines: &[(Demand, Level)],
    at: DateTime<Utc>,
) -> ShipmentDispatchedV1 {
    ShipmentDispatchedV1 {
        order_id,
        shipment_id,
        lines: lines
            .iter()
            .map(|(d, level)| level.line(d.product_id, d.quantity))
            .collect(),
        dispatched_at: at,
    }
}

#[cfg(test)]
mod tests;
