//! Reading a stream for the tail: an ordered consumer per stream, made
//! again after an interruption (a broker restart) from the last message
//! read, each message sent on as an [`Item`].

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Context};
use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use platform::nats::Reconnects;
use tokio::sync::mpsc;

use super::{stream_subjects, subjects};
use crate::time::to_chrono;

/// One stored message.
pub struct Item {
    pub source: usize,
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub subject: String,
    pub payload: Bytes,
    pub headers: Option<HeaderMap>,
    /// Messages of the filter after this one, when it was delivered.
    pub pending: u64,
}

/// Stops a reader when the tail ends.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct Reader {
    index: usize,
    js: Context,
    stream: String,
    filter_subjects: Vec<String>,
    /// Where the first consumer started; a consumer made again after an
    /// interruption starts after the last message read instead.
    policy: DeliverPolicy,
    consumer: Option<jetstream::consumer::Consumer<OrderedConfig>>,
    /// Counts the connection's reconnects since `consumer` was made: the
    /// broker it lived in may be gone (`platform::nats::Reconnects`).
    reconnects: Reconnects,
}

/// Creates the stream's ordered consumer: the stream's end sequence, what
/// the consumer owes, and its reader.
pub async fn open(
    js: &Context,
    index: usize,
    stream: &str,
    filter: &str,
    deliver_policy: DeliverPolicy,
) -> anyhow::Result<(u64, u64, Reader)> {
    let end_seq = platform::streams::info(js, stream)
        .await
        .map_err(|e| crate::streams::unreadable(stream, &e))?
        .state
        .last_sequence;
    // A filter that covers the whole stream is left out: the server wants
    // a consumer's filter to lie within the stream's subjects.
    let filter_subjects = if subjects::subset(stream_subjects(stream), filter) {
        Vec::new()
    } else {
        vec![filter.to_owned()]
    };
    // `New` would skip what is published while a consumer is made again.
    let policy = match deliver_policy {
        DeliverPolicy::New => DeliverPolicy::ByStartSequence {
            start_sequence: end_seq + 1,
        },
        other => other,
    };
    let reconnects = Reconnects::since_now(&js.client());
    let consumer = ordered(js, stream, &filter_subjects, deliver_policy).await?;
    let owed = consumer.cached_info().num_pending;
    let reader = Reader {
        index,
        js: js.clone(),
        stream: stream.to_owned(),
        filter_subjects,
        policy,
        consumer: Some(consumer),
        reconnects,
    };
    Ok((end_seq, owed, reader))
}

async fn ordered(
    js: &Context,
    stream: &str,
    filter_subjects: &[String],
    deliver_policy: DeliverPolicy,
) -> anyhow::Result<jetstream::consumer::Consumer<OrderedConfig>> {
    js.create_consumer_on_stream(
        OrderedConfig {
            filter_subjects: filter_subjects.to_vec(),
            deliver_policy,
            ..Default::default()
        },
        stream,
    )
    .await
    .map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))
}

/// How a reader's [`Reader::read`] ended without an error.
enum Read {
    /// The tail is over (its receiver is gone).
    Ended,
    /// The connection to the broker was made again: read on with a new
    /// consumer (`platform::nats::Reconnects`).
    Reconnected,
}

/// Interruptions in a row (a broker restart, a lost consumer) a reader
/// rides out, a second apart, before the tail fails.
const READER_RETRIES: u32 = 30;

impl Reader {
    /// Sends every message to `sender`. When the broker loses its consumer
    /// (a restart), makes another that starts after the last message read,
    /// so a `--follow` carries on where it was.
    pub async fn run(mut self, sender: mpsc::Sender<anyhow::Result<Item>>) {
        let mut last_seq: Option<u64> = None;
        let mut failures: u32 = 0;
        loop {
            let error = match self.read(&sender, &mut last_seq, &mut failures).await {
                Ok(Read::Ended) => return,
                // Not a failure: read on at once with a new consumer.
                Ok(Read::Reconnected) => continue,
                Err(error) => error,
            };
            failures += 1;
            let resume = last_seq.map_or(String::new(), |seq| {
                format!("; the last event read was {}#{seq}", self.stream)
            });
            if failures > READER_RETRIES {
                let hint = last_seq.map_or(String::new(), |seq| {
                    format!(" (resume with --from-seq {})", seq + 1)
                });
                let _ = sender
                    .send(Err(anyhow::anyhow!("{error:#}{resume}{hint}")))
                    .await;
                return;
            }
            errln!(
                "tail: reading {} interrupted ({error:#}){resume}; resuming",
                self.stream
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Reads until the consumer fails (Err), the tail ends, or the
    /// connection was made again (the consumer may be gone with the broker).
    async fn read(
        &mut self,
        sender: &mpsc::Sender<anyhow::Result<Item>>,
        last_seq: &mut Option<u64>,
        failures: &mut u32,
    ) -> anyhow::Result<Read> {
        let consumer = match self.consumer.take() {
            Some(consumer) => consumer,
            None => {
                let policy = match *last_seq {
                    Some(seq) => DeliverPolicy::ByStartSequence {
                        start_sequence: seq + 1,
                    },
                    None => self.policy,
                };
                self.reconnects = Reconnects::since_now(&self.js.client());
                ordered(&self.js, &self.stream, &self.filter_subjects, policy).await?
            }
        };
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("reading: {e}"))?;
        let reconnected = self.reconnects.noticed();
        tokio::pin!(reconnected);
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = &mut reconnected => return Ok(Read::Reconnected),
            };
            let Some(next) = next else { break };
            let message = next.map_err(|e| anyhow::anyhow!("reading: {e}"))?;
            let info = message
                .info()
                .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
            *last_seq = Some(info.stream_sequence);
            *failures = 0;
            let item = Item {
                source: self.index,
                seq: info.stream_sequence,
                time: to_chrono(info.published),
                pending: info.pending,
                subject: message.subject.to_string(),
                payload: message.payload.clone(),
                headers: message.headers.clone(),
            };
            if sender.send(Ok(item)).await.is_err() {
                return Ok(Read::Ended);
            }
        }
        anyhow::bail!("the stream's messages ended")
    }
}
