//! One virtual customer's order: place it with `POST /api/v1/orders`, then
//! follow it until it settles (its status leaves `pending`), through the
//! server-sent updates or by polling, never past the run's deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contracts::subjects::evt;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::shop_client::{CallError, Request, ShopClient};

/// How often `--follow poll` (and the fallback when a stream breaks) asks.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// An updates stream that sends more than this without an event break is
/// not one this client understands.
const MAX_EVENT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Follow {
    /// `GET /api/v1/orders/{id}/updates` (server-sent events)
    Sse,
    /// `GET /api/v1/orders/{id}` every 50 ms
    Poll,
}

#[derive(Debug, Serialize)]
pub struct NewOrder<'a> {
    pub items: Vec<Item>,
    pub shipping_address: Address<'a>,
    pub payment_method: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Item {
    pub product_id: Uuid,
    pub quantity: i64,
}

#[derive(Debug, Serialize)]
pub struct Address<'a> {
    pub name: &'a str,
    pub line1: &'a str,
    pub city: &'a str,
    pub postal_code: &'a str,
    pub country: &'a str,
}

/// The part of an order answer the load generator reads.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderState {
    pub id: Uuid,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub timeline: Vec<Step>,
}

/// One step on an order's timeline: an event's CloudEvents type (e.g.
/// `bazaar.checkout.order.placed.v2`) and its own time. Kept as text, so
/// that a step this client cannot read never fails the order's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: String,
}

impl Step {
    /// Whether this step is the event of `subject`, or of a version of it
    /// that the contracts upcast into it (`order.placed.v1` for v2).
    fn is(&self, subject: &str) -> bool {
        contracts::catalog::by_type(&self.event_type).is_some_and(|event| {
            event.subject == subject || event.upcast.as_ref().is_some_and(|up| up.to == subject)
        })
    }
}

impl OrderState {
    pub fn is_settled(&self) -> bool {
        self.status != "pending"
    }

    /// From the time of the `order.placed` event to that of
    /// `order.confirmed`, both stamped by checkout: the saga's own
    /// latency, without HTTP, the edge's view or the updates stream.
    /// `None` unless both are on the timeline.
    pub fn placed_to_confirmed(&self) -> Option<Duration> {
        let at = |subject: &str| {
            let step = self.timeline.iter().find(|step| step.is(subject))?;
            chrono::DateTime::parse_from_rfc3339(&step.at).ok()
        };
        (at(evt::ORDER_CONFIRMED_V1)? - at(evt::ORDER_PLACED_V2)?)
            .to_std()
            .ok()
    }
}

/// How one order went.
#[derive(Debug)]
pub enum Outcome {
    /// Placing it failed; nothing to follow.
    Failed { label: String, message: String },
    /// Left `pending` within the run.
    Settled {
        status: String,
        reason: Option<String>,
        /// The POST's round trip.
        place: Duration,
        /// From sending the POST to seeing the settled status.
        settle: Duration,
        /// [`OrderState::placed_to_confirmed`] of the settled order.
        saga: Option<Duration>,
    },
    /// Placed, still pending (as far as we saw) when the run ended.
    Unsettled { place: Duration },
}

/// Places `order` as `token` (counting it in `placed_counter` once placed)
/// and follows it until it settles, `deadline`, or `interrupted` (Ctrl-C).
pub async fn place_and_follow(
    client: &ShopClient,
    token: &str,
    order: &NewOrder<'_>,
    follow: Follow,
    deadline: Instant,
    placed_counter: &AtomicU64,
    mut interrupted: watch::Receiver<bool>,
) -> Outcome {
    let started = Instant::now();
    // A fresh key per order, so that the client's retries of a POST whose
    // answer was lost return the same order instead of placing another.
    let key = Uuid::new_v4().to_string();
    let request = Request {
        method: Method::POST,
        path: "/api/v1/orders",
        token,
        body: Some(order),
        idempotency_key: Some(&key),
    };
    let placing = tokio::time::timeout_at(deadline, client.send::<_, OrderState>(request));
    let placed = tokio::select! {
        placing = placing => placing,
        _ = interrupted.wait_for(|stop| *stop) => {
            return Outcome::Failed {
                label: "interrupted".into(),
                message: "Ctrl-C while the order was being placed (the shop may have placed it)"
                    .into(),
            }
        }
    };
    let placed = match placed {
        Ok(Ok(order)) => order,
        Ok(Err(error)) => {
            return Outcome::Failed {
                label: error.label(),
                message: error.to_string(),
            }
        }
        Err(_) => {
            return Outcome::Failed {
                label: "cut off by --timeout".into(),
                message: "the run's --timeout passed while the order was being placed".into(),
            }
        }
    };
    let place = started.elapsed();
    placed_counter.fetch_add(1, Ordering::Relaxed);
    let settled = if placed.is_settled() {
        Some(placed)
    } else {
        let following =
            tokio::time::timeout_at(deadline, follow_order(client, token, placed.id, follow));
        tokio::select! {
            settled = following => settled.ok(),
            _ = interrupted.wait_for(|stop| *stop) => None,
        }
    };
    match settled {
        Some(order) => Outcome::Settled {
            saga: order.placed_to_confirmed(),
            status: order.status,
            reason: order.reason,
            place,
            settle: started.elapsed(),
        },
        None => Outcome::Unsettled { place },
    }
}

/// Waits for the settled order; the caller bounds it with the deadline.
async fn follow_order(client: &ShopClient, token: &str, id: Uuid, follow: Follow) -> OrderState {
    if follow == Follow::Sse {
        if let Ok(Some(order)) = follow_stream(client, token, id).await {
            return order;
        }
        // A stream that broke or ended early: polling still finds out.
    }
    poll(client, token, id).await
}

/// Reads the updates stream until an `order` event shows a settled order.
/// `Ok(None)` when the stream ends first.
async fn follow_stream(
    client: &ShopClient,
    token: &str,
    id: Uuid,
) -> Result<Option<OrderState>, CallError> {
    let mut response = client
        .open_stream(&format!("/api/v1/orders/{id}/updates"), token)
        .await?;
    let mut events = EventBuffer::default();
    // Bounded by the stream's end and by the caller's deadline.
    while let Some(chunk) = response.chunk().await.map_err(CallError::Transport)? {
        for data in events.push(&chunk) {
            if let Ok(order) = serde_json::from_str::<OrderState>(&data) {
                if order.is_settled() {
                    return Ok(Some(order));
                }
            }
        }
        if events.pending_len() > MAX_EVENT_BYTES {
            return Ok(None);
        }
    }
    Ok(None)
}

async fn poll(client: &ShopClient, token: &str, id: Uuid) -> OrderState {
    let path = format!("/api/v1/orders/{id}");
    // Bounded by the caller's deadline.
    loop {
        if let Ok(order) = client
            .send::<(), OrderState>(Request::get(&path, token))
            .await
        {
            if order.is_settled() {
                return order;
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Splits a server-sent event stream into the data of its `order` events.
#[derive(Debug, Default)]
struct EventBuffer {
    pending: Vec<u8>,
}

impl EventBuffer {
    /// Adds a chunk and returns the data of every event it completed.
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend(chunk.iter().filter(|&&b| b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let mut name = "message";
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if name == "order" && !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }

    fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saga_latency_is_read_off_the_timeline_of_a_confirmed_order() {
        let order: OrderState = serde_json::from_str(
            r#"{"id":"0b6f3c7e-4a53-4b8e-9d44-2f0d3e8f7a10","status":"confirmed","timeline":[
                {"type":"bazaar.checkout.order.placed.v2","at":"2026-12-07T10:00:00.001500Z"},
                {"type":"bazaar.warehouse.stock.reserved.v1","at":"2026-12-07T10:00:00.004000Z"},
                {"type":"bazaar.checkout.order.placed.extra.v1","at":"2026-12-07T09:00:00Z"},
                {"type":"bazaar.checkout.order.confirmed.v1","at":"2026-12-07T10:00:00.013750Z"}]}"#,
        )
        .expect("a confirmed order");
        assert_eq!(
            order.placed_to_confirmed(),
            Some(Duration::from_micros(12_250))
        );

        let pending: OrderState = serde_json::from_str(
            r#"{"id":"0b6f3c7e-4a53-4b8e-9d44-2f0d3e8f7a10","status":"pending","timeline":[
                {"type":"bazaar.checkout.order.placed.v2","at":"not a time"}]}"#,
        )
        .expect("a pending order");
        assert_eq!(pending.placed_to_confirmed(), None);
    }

    #[test]
    fn order_events_are_found_across_chunk_boundaries_and_comments_are_skipped() {
        let mut events = EventBuffer::default();

        let first = events.push(b": keep-alive\n\nevent: order\ndata: {\"a\"");
        let second = events.push(b":1}\r\n\r\nevent: other\ndata: x\n\nevent: order\ndata: 2\n\n");

        assert!(first.is_empty());
        assert_eq!(second, vec!["{\"a\":1}".to_owned(), "2".to_owned()]);
        assert_eq!(events.pending_len(), 0);
    }
}
