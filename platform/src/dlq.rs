//! Dead letters: a message that cannot be handled is copied, with the error
//! and its original metadata in headers, to `dlq.<service>.<consumer>` in the
//! `DLQ` stream; only then is the original terminated.

use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::Context;

use crate::delivery::Delivery;

pub const H_ERROR: &str = "Bazaar-Dlq-Error";
pub const H_SERVICE: &str = "Bazaar-Dlq-Service";
pub const H_CONSUMER: &str = "Bazaar-Dlq-Consumer";
pub const H_STREAM: &str = "Bazaar-Dlq-Stream";
pub const H_SUBJECT: &str = "Bazaar-Dlq-Subject";
pub const H_SEQ: &str = "Bazaar-Dlq-Seq";
pub const H_DELIVERIES: &str = "Bazaar-Dlq-Deliveries";
pub const H_TIME: &str = "Bazaar-Dlq-Time";

/// Longest error text kept in a header.
const MAX_ERROR_LEN: usize = 1024;

/// Publishes the dead letter and awaits the broker's ack.
pub async fn send(
    js: &Context,
    service: &str,
    consumer: &str,
    delivery: &Delivery,
    error: &str,
) -> anyhow::Result<()> {
    let subject = contracts::subjects::dlq_subject(service, consumer);
    let mut error = error.replace(['\r', '\n'], " ");
    if error.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
    }
    let mut publish = Publish::build()
        .payload(delivery.payload.clone())
        .message_id(format!(
            "dlq:{}:{}:{consumer}",
            delivery.stream, delivery.stream_seq
        ))
        .header(H_ERROR, error.as_str())
        .header(H_SERVICE, service)
        .header(H_CONSUMER, consumer)
        .header(H_STREAM, delivery.stream.as_str())
        .header(H_SUBJECT, delivery.subject.as_str())
        .header(H_SEQ, delivery.stream_seq.to_string().as_str())
        .header(H_DELIVERIES, delivery.delivered.to_string().as_str())
        .header(H_TIME, crate::db::now_text().as_str());
    if let Some(tp) = delivery.traceparent() {
        publish = publish.header(crate::telemetry::TRACEPARENT, tp);
    }
    js.send_publish(subject, publish).await?.await?;
    crate::metrics::dead_lettered(consumer);
    Ok(())
}
