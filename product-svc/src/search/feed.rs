//! Feeds a shard's indexer from one stream with an ordered consumer that
//! starts after the index's checkpoint (the pattern of
//! `platform::projection`, with the checkpoint kept in the index instead of
//! the database). Every message moves the checkpoint; only the facts about
//! this shard's products reach the index.

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::Context;
use contracts::consumers::{product_svc, Reads};
use contracts::product::{
    ProductCreatedV1, ProductDiscontinuedV1, ProductPriceChangedV1, ProductUpdatedV1,
};
use contracts::search::Shard;
use contracts::subjects::{evt, PRODUCT_SVC};
use contracts::warehouse::{
    ShipmentDispatchedV1, StockAdjustedV1, StockLevelV1, StockReleasedV1, StockReservedV1,
};
use futures::StreamExt;
use platform::delivery::{Delivery, HandlerError};
use platform::started_over::Incarnation;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::indexer::{Feed, Input};
use super::record::Fact;

impl Feed {
    /// What this feed reads, as product-svc declares it in
    /// `contracts::consumers::product_svc`.
    fn reads(self) -> Reads {
        match self {
            Feed::Product => product_svc::SEARCH_PRODUCTS,
            Feed::Warehouse => product_svc::SEARCH_STOCK,
        }
    }

    fn stream(self) -> &'static str {
        self.reads().from.stream()
    }

    fn subjects(self) -> &'static [&'static str] {
        self.reads().subjects
    }

    /// The consumer name dead letters are filed under.
    fn consumer(self) -> &'static str {
        match self {
            Feed::Product => "search.product",
            Feed::Warehouse => "search.warehouse",
        }
    }
}

/// Follows `feed` from after `start` (the index's checkpoint, and the life
/// of the stream it counts in) until `stop`, resuming after interruptions
/// (broker restarts, lost consumers) with back-off.
pub async fn run(
    js: Context,
    shard: Shard,
    feed: Feed,
    start: (u64, Option<String>),
    inputs: mpsc::Sender<Input>,
    stop: CancellationToken,
) {
    let (mut position, mut life) = start;
    // The warehouse's stream exists once its service has started; until
    // then there is nothing to index, so the feed is caught up.
    let caught_up = || {
        let _ = inputs.try_send(Input::CaughtUp {
            feed,
            seq: position,
        });
    };
    if !platform::streams::wait_for(&js, feed.stream(), &stop, caught_up).await {
        return;
    }
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let at = At {
            position: &mut position,
            life: &mut life,
        };
        match follow(&js, shard, feed, at, &inputs, &stop).await {
            Ok(Ended::Stopped) => break,
            // Not a failure: read the new stream at once, without back-off.
            Ok(Ended::StreamReplaced) => failures = 0,
            Ok(Ended::Reconnected) => {
                tracing::info!(?feed, %shard, "connected to NATS again; following anew");
                failures = 0;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                tracing::warn!(?feed, %shard, error = %format!("{error:#}"), ?delay,
                    "search feed interrupted; resuming");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Where a feed is: the last sequence it sent, and the life of the stream
/// that sequence counts in (`None` until known).
struct At<'a> {
    position: &'a mut u64,
    life: &'a mut Option<String>,
}

/// Why [`follow`] returned without an error.
enum Ended {
    /// `stop` was cancelled.
    Stopped,
    /// The stream was created anew; the indexer was told to start over.
    StreamReplaced,
    /// The connection to the broker was made again; the ordered consumer
    /// may have gone with the broker (`platform::nats::Reconnects`).
    Reconnected,
}

async fn follow(
    js: &Context,
    shard: Shard,
    feed: Feed,
    at: At<'_>,
    inputs: &mpsc::Sender<Input>,
    stop: &CancellationToken,
) -> anyhow::Result<Ended> {
    let stream = feed.stream();
    let At { position, life } = at;
    let found = Incarnation::find(js, stream, *position).await?;
    let key = found.incarnation.key();
    let another_life = life.as_ref().is_some_and(|known| *known != key);
    if another_life || found.started_over_at.is_some() {
        tracing::warn!(?feed, %shard, checkpoint = *position, stream_last_seq = ?found.started_over_at,
            "the stream was created anew (deleted, or the broker lost its store) since the \
             index read it; indexing it from its start");
        send(inputs, Input::StartedOver { feed }).await?;
        *position = 0;
    }
    if life.as_deref() != Some(key.as_str()) {
        send(
            inputs,
            Input::Life {
                feed,
                key: key.clone(),
            },
        )
        .await?;
        *life = Some(key);
    }
    let reconnects = platform::nats::Reconnects::since_now(&js.client());
    let consumer = js
        .create_consumer_on_stream(
            OrderedConfig {
                name: Some(platform::streams::ordered_consumer_name()),
                filter_subjects: feed.subjects().iter().map(|s| (*s).to_owned()).collect(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: *position + 1,
                },
                max_expires: platform::streams::ORDERED_MAX_EXPIRES,
                ..Default::default()
            },
            stream,
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading stream {stream}: {e}"))?;
    if consumer.cached_info().num_pending == 0 {
        send(
            inputs,
            Input::CaughtUp {
                feed,
                seq: *position,
            },
        )
        .await?;
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("reading stream {stream}: {e}"))?;
    tracing::info!(?feed, %shard, from = *position + 1, "search feed following");
    let mut check = platform::started_over::check_timer();
    let reconnected = reconnects.noticed();
    tokio::pin!(reconnected);
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return Ok(Ended::Stopped),
            _ = &mut reconnected => return Ok(Ended::Reconnected),
            _ = check.tick() => {
                // The next follow finds the new life and starts over.
                if found.incarnation.replaced(js).await {
                    return Ok(Ended::StreamReplaced);
                }
                continue;
            }
            next = messages.next() => next,
        };
        let message = match next {
            None => anyhow::bail!("stream ended"),
            Some(Err(error)) => anyhow::bail!("{error}"),
            Some(Ok(message)) => message,
        };
        let info = message
            .info()
            .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
        let delivery = Delivery {
            stream: info.stream.to_owned(),
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
            headers: message.headers.clone(),
            stream_seq: info.stream_sequence,
            delivered: info.delivered,
        };
        let caught_up = info.pending == 0;
        let facts = match decode(&delivery, shard) {
            Ok(facts) => facts,
            Err(reason) => {
                // Every shard meets the same poison message; the dead
                // letter's id (stream, sequence, consumer) makes it one.
                platform::dlq::send(js, PRODUCT_SVC, feed.consumer(), &delivery, &reason).await?;
                tracing::error!(?feed, seq = delivery.stream_seq, %reason, "event dead-lettered");
                Vec::new()
            }
        };
        send(
            inputs,
            Input::Event {
                feed,
                seq: delivery.stream_seq,
                facts,
                caught_up,
            },
        )
        .await?;
        *position = delivery.stream_seq;
    }
}

async fn send(inputs: &mpsc::Sender<Input>, input: Input) -> anyhow::Result<()> {
    inputs
        .send(input)
        .await
        .map_err(|_| anyhow::anyhow!("the search indexer has stopped"))
}

/// The facts of one event about `shard`'s products; an error names why the
/// event can never be read.
pub fn decode(d: &Delivery, shard: Shard) -> Result<Vec<Fact>, String> {
    let facts = match d.subject.as_str() {
        evt::PRODUCT_CREATED_V1 => vec![Fact::Created(data::<ProductCreatedV1>(d)?)],
        evt::PRODUCT_UPDATED_V1 => vec![Fact::Updated(data::<ProductUpdatedV1>(d)?)],
        evt::PRODUCT_PRICE_CHANGED_V1 => {
            vec![Fact::PriceChanged(data::<ProductPriceChangedV1>(d)?)]
        }
        evt::PRODUCT_DISCONTINUED_V1 => {
            vec![Fact::Discontinued(data::<ProductDiscontinuedV1>(d)?)]
        }
        evt::STOCK_ADJUSTED_V1 => {
            let e = data::<StockAdjustedV1>(d)?;
            vec![Fact::Stock {
                product_id: e.product_id,
                on_hand: e.on_hand,
                available: e.available,
            }]
        }
        evt::STOCK_RESERVED_V1 => levels(&data::<StockReservedV1>(d)?.lines),
        evt::STOCK_RELEASED_V1 => levels(&data::<StockReleasedV1>(d)?.lines),
        evt::SHIPMENT_DISPATCHED_V1 => levels(&data::<ShipmentDispatchedV1>(d)?.lines),
        _ => Vec::new(),
    };
    Ok(facts
        .into_iter()
        .filter(|f| shard.owns(f.product_id()))
        .collect())
}

fn data<T: contracts::Event>(d: &Delivery) -> Result<T, String> {
    d.decode::<T>()
        .map(|envelope| envelope.data)
        .map_err(|e| match e {
            HandlerError::Poison(reason) => reason,
            HandlerError::Transient(e) => format!("{e:#}"),
        })
}

fn levels(lines: &[StockLevelV1]) -> Vec<Fact> {
    lines
        .iter()
        .map(|l| Fact::Stock {
            product_id: l.product_id,
            on_hand: l.on_hand,
            available: l.available,
        })
        .collect()
}
