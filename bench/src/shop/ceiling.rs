//! The broker's own ceiling for Bazaar's traffic: JetStream publishes with
//! message ids and a window of acks in flight, while a durable pull consumer
//! receives and acks the same messages, all through a nats-server started
//! the way `bazaar up` starts it (the embedded config, users and all, a
//! fresh store, loopback). The payload is a real `order.placed` envelope.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull};
use contracts::Team;
use futures::StreamExt;

use crate::broker::{publish_all, Broker};

/// The golden sample of the newest `order.placed`, sent compact as checkout does.
const ORDER_PLACED: &str =
    include_str!("../../../contracts/samples/checkout.order.placed.v2/with-contact-email.json");
/// Publish acks awaited at once, as the outbox relay and `bench replay` do.
const WINDOW: usize = 4_096;

pub struct Ceiling {
    pub messages: u64,
    pub payload_bytes: usize,
    pub seconds: f64,
    pub events_per_s: f64,
    pub publish_per_s: f64,
}

/// The ceiling measured before the shop and again after it: the machine's
/// speed drifts within minutes, so the shop is held against the mean.
pub struct Bracket {
    pub before: Ceiling,
    pub after: Ceiling,
}

impl Bracket {
    pub fn events_per_s(&self) -> f64 {
        (self.before.events_per_s + self.after.events_per_s) / 2.0
    }

    pub fn publish_per_s(&self) -> f64 {
        (self.before.publish_per_s + self.after.publish_per_s) / 2.0
    }
}

/// Publishes `messages` events and consumes them at the same time; the rate
/// is messages over the time until the last one was acked by the consumer.
pub async fn measure(work: &std::path::Path, messages: u64) -> anyhow::Result<Ceiling> {
    let payload: serde_json::Value =
        serde_json::from_str(ORDER_PLACED).context("the order.placed sample")?;
    let payload = serde_json::to_vec(&payload).context("encoding the sample")?;
    let broker = Broker::start(&work.join("ceiling-nats"), false).await?;
    let publisher = jetstream::new(broker.connect().await?);
    let consumer_js = jetstream::new(broker.connect().await?);
    let team = Team::Checkout;
    platform::streams::ensure(&publisher, platform::streams::event_stream(team, 1)).await?;
    let stream = consumer_js
        .get_stream(team.stream())
        .await
        .context("the stream")?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench-ceiling".to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("creating the consumer")?;
    let subject = <contracts::checkout::OrderPlacedV2 as contracts::Event>::SUBJECT;

    let started = Instant::now();
    let consume = tokio::spawn(async move {
        let mut messages_in = consumer.messages().await.context("pulling")?;
        let mut received = 0u64;
        // Bounded by the count, and by a deadline should messages go missing.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while received < messages {
            let next = tokio::time::timeout_at(deadline, messages_in.next())
                .await
                .context("the consumer stalled")?;
            let Some(message) = next else {
                anyhow::bail!("the consumer's stream ended after {received} messages");
            };
            let message = message.map_err(|e| anyhow::anyhow!("pulling: {e}"))?;
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("acking: {e}"))?;
            received += 1;
        }
        anyhow::Ok(received)
    });
    publish_all(&publisher, subject, &payload, messages, WINDOW).await?;
    let published = started.elapsed().as_secs_f64();
    let received = consume.await.context("the consumer task")??;
    let seconds = started.elapsed().as_secs_f64();
    drop(broker);
    Ok(Ceiling {
        messages: received,
        payload_bytes: payload.len(),
        seconds,
        events_per_s: received as f64 / seconds,
        publish_per_s: messages as f64 / published,
    })
}
