//! Reading dead letters out of the `DLQ` stream with their `Bazaar-Dlq-*`
//! headers (written by `platform::dlq`).

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use contracts::subjects::DLQ_STREAM;
use futures::StreamExt;
use platform::dlq;
use serde::Serialize;

use crate::exit;
use crate::time::{format_time, to_chrono};

/// How long the stream may stay silent while it still owes dead letters.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One dead letter as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Its sequence in the DLQ stream.
    pub id: u64,
    /// When it was dead-lettered.
    pub time: String,
    pub service: String,
    pub consumer: String,
    /// Where the original message is.
    pub stream: String,
    pub stream_seq: u64,
    pub subject: String,
    /// Deliveries before it was given up.
    pub deliveries: i64,
    pub error: String,
    /// The CloudEvents type and id, when the payload is an envelope.
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    /// When the event happened (its CloudEvents `time`), when it says.
    pub event_time: Option<String>,
    /// What the event is about (its CloudEvents `subject`: the order or
    /// product id): an order's letters are retried in stream order.
    pub about: Option<String>,
    /// The original payload (lossy UTF-8).
    pub payload: String,
}

impl DeadLetter {
    fn from_parts(id: u64, time: String, headers: Option<&HeaderMap>, payload: &[u8]) -> Self {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let envelope = serde_json::from_slice::<serde_json::Value>(payload).ok();
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        DeadLetter {
            id,
            time,
            service: get(dlq::H_SERVICE),
            consumer: get(dlq::H_CONSUMER),
            stream: get(dlq::H_STREAM),
            stream_seq: get(dlq::H_SEQ).parse().unwrap_or(0),
            subject: get(dlq::H_SUBJECT),
            deliveries: get(dlq::H_DELIVERIES).parse().unwrap_or(0),
            error: get(dlq::H_ERROR),
            event_type: field("type"),
            event_id: field("id"),
            event_time: field("time"),
            // The envelope's subject; without one (a letter that failed
            // for lacking it), the order its data names.
            about: field("subject").or_else(|| {
                envelope
                    .as_ref()
                    .and_then(|v| v.get("data"))
                    .and_then(|d| d.get("order_id").or_else(|| d.get("product_id")))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            }),
            payload: String::from_utf8_lossy(payload).into_owned(),
        }
    }
}

/// One dead letter by ID (exit code 2 when there is none).
pub async fn read_one(js: &Context, id: u64) -> anyhow::Result<DeadLetter> {
    let m = get(js, id).await?;
    Ok(DeadLetter::from_parts(
        id,
        format_time(&to_chrono(m.time)),
        Some(&m.headers),
        &m.payload,
    ))
}

/// One dead letter by ID as its service is sent it to retry, and the
/// service that owns it.
pub async fn read_for_retry(js: &Context, id: u64) -> anyhow::Result<(String, dlq::Letter)> {
    let m = get(js, id).await?;
    let letter = dlq::Letter::new(m.subject.as_str(), Some(&m.headers), &m.payload);
    let service = letter.header(dlq::H_SERVICE).to_owned();
    if service.is_empty() {
        anyhow::bail!(
            "dead letter {id} names no service ({} header)",
            dlq::H_SERVICE
        );
    }
    Ok((service, letter))
}

/// What to say of a dead letter id the DLQ does not hold.
pub fn missing(id: u64) -> String {
    format!("no dead letter {id} (see `bazaar dlq list`)")
}

/// Whether the DLQ holds no dead letter `id` (false when that cannot be told).
pub async fn is_missing(stream: &Stream, id: u64) -> bool {
    stream
        .get_raw_message(id)
        .await
        .is_err_and(|e| e.kind() == RawMessageErrorKind::NoMessageFound)
}

async fn get(js: &Context, id: u64) -> anyhow::Result<StreamMessage> {
    let stream = js
        .get_stream(DLQ_STREAM)
        .await
        .map_err(|e| crate::streams::unreadable(DLQ_STREAM, &e))?;
    match stream.get_raw_message(id).await {
        Ok(m) => Ok(m),
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Err(exit::usage(missing(id))),
        Err(e) => Err(anyhow::anyhow!("reading dead letter {id}: {e}")),
    }
}

/// Every dead letter, oldest first.
pub async fn read_all(js: &Context) -> anyhow::Result<Vec<DeadLetter>> {
    if let Err(e) = platform::streams::info(js, DLQ_STREAM).await {
        return Err(crate::streams::unreadable(DLQ_STREAM, &e));
    }
    let consumer = js
        .create_consumer_on_stream(
            OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
            DLQ_STREAM,
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading the {DLQ_STREAM} stream: {e}"))?;
    let owed = consumer.cached_info().num_pending;
    let mut letters = Vec::new();
    if owed == 0 {
        return Ok(letters);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("reading the {DLQ_STREAM} stream: {e}"))?;
    while (letters.len() as u64) < owed {
        let message = match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => anyhow::bail!("reading the {DLQ_STREAM} stream: {e}"),
            Ok(None) | Err(_) => anyhow::bail!("the {DLQ_STREAM} stream stopped answering"),
        };
        let info = message
            .info()
            .map_err(|e| anyhow::anyhow!("a dead letter without metadata: {e}"))?;
        let pending = info.pending;
        letters.push(DeadLetter::from_parts(
            info.stream_sequence,
            format_time(&to_chrono(info.published)),
            message.headers.as_ref(),
            &message.payload,
        ));
        if pending == 0 {
            break;
        }
    }
    Ok(letters)
}

/// At most `max` characters, marked when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}
