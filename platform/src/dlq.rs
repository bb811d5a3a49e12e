//! Dead letters: a message that cannot be handled is copied, with the error
//! and its original metadata in headers, to `dlq.<service>.<consumer>` in the
//! `DLQ` stream; only then is the original terminated.
//!
//! No service may read the `DLQ` stream back: it holds every team's
//! payloads. To retry one, the operator (`bazaar dlq retry`, user `ops`)
//! reads it and sends it to the owning service as a [`Letter`] inside the
//! `ops.<service>.redeliver` request.

use std::collections::BTreeMap;

use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::Context;
use async_nats::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;

pub const H_ERROR: &str = "Bazaar-Dlq-Error";
pub const H_SERVICE: &str = "Bazaar-Dlq-Service";
pub const H_CONSUMER: &str = "Bazaar-Dlq-Consumer";
pub const H_STREAM: &str = "Bazaar-Dlq-Stream";
pub const H_SUBJECT: &str = "Bazaar-Dlq-Subject";
pub const H_SEQ: &str = "Bazaar-Dlq-Seq";
pub const H_DELIVERIES: &str = "Bazaar-Dlq-Deliveries";
pub const H_TIME: &str = "Bazaar-Dlq-Time";

/// The headers a [`Letter`] carries: the ones [`send`] writes, but the
/// broker's `Nats-Msg-Id`. A retry needs nothing else.
pub const CARRIED_HEADERS: [&str; 9] = [
    H_ERROR,
    H_SERVICE,
    H_CONSUMER,
    H_STREAM,
    H_SUBJECT,
    H_SEQ,
    H_DELIVERIES,
    H_TIME,
    crate::telemetry::TRACEPARENT,
];

/// A dead letter as the operator read it from the `DLQ` stream, to be sent
/// inside a JSON request: the payload is arbitrary bytes, so it travels as
/// base64 (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// Where it was filed: `dlq.<service>.<consumer>`.
    pub subject: String,
    /// Its [`CARRIED_HEADERS`] that are present, name to value.
    pub headers: BTreeMap<String, String>,
    /// The original message's payload, base64.
    pub payload: String,
}

/// Why a [`Letter`] cannot be turned back into a delivery.
#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("the dead letter's payload is not base64: {0}")]
    Payload(#[from] base64::DecodeError),
    #[error("the dead letter's {0} header is not a valid header value")]
    Header(&'static str),
}

impl Letter {
    /// The letter of a message read from the `DLQ` stream.
    pub fn new(subject: &str, headers: Option<&HeaderMap>, payload: &[u8]) -> Self {
        let headers = CARRIED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers?.get(*name)?;
                Some(((*name).to_owned(), value.as_str().to_owned()))
            })
            .collect();
        Letter {
            subject: subject.to_owned(),
            headers,
            payload: BASE64.encode(payload),
        }
    }

    /// One header's value; empty when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The [`CARRIED_HEADERS`] as the message carried them; any other name
    /// in the letter is ignored. A value async-nats would refuse (a line
    /// break) is an error, not a panic: the letter comes from outside.
    pub fn header_map(&self) -> Result<HeaderMap, LetterError> {
        let mut map = HeaderMap::new();
        for name in CARRIED_HEADERS {
            if let Some(value) = self.headers.get(name) {
                let value: HeaderValue = value.parse().map_err(|_| LetterError::Header(name))?;
                map.insert(name, value);
            }
        }
        Ok(map)
    }

    /// The original payload.
    pub fn payload(&self) -> Result<Bytes, LetterError> {
        Ok(BASE64.decode(&self.payload)?.into())
    }
}

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
    let stored = async { js.send_publish(subject.clone(), publish).await?.await };
    stored
        .await
        .map_err(|e: async_nats::jetstream::context::PublishError| {
            anyhow::anyhow!(
                "filing the dead letter on {subject}: {e} (if the {} stream is missing, \
             `bazaar streams apply` creates it; the message is redelivered until then)",
                contracts::subjects::DLQ_STREAM
            )
        })?;
    crate::metrics::dead_lettered(consumer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use contracts::subjects::dlq_subject;

    use super::*;

    #[test]
    fn a_letter_carries_any_bytes_and_the_retry_headers_through_json() {
        let payload: Vec<u8> = (0..=255u8).chain([0, 0xff, b'"', b'\\']).collect();
        let mut headers = HeaderMap::new();
        headers.insert(H_SERVICE, "checkout-svc");
        headers.insert(H_CONSUMER, "checkout-svc");
        headers.insert(H_SEQ, "42");
        headers.insert(crate::telemetry::TRACEPARENT, "00-abc-def-01");
        headers.insert("Nats-Msg-Id", "dlq:EVT_PRODUCT:42:checkout-svc");

        let letter = Letter::new(
            &dlq_subject("checkout-svc", "checkout-svc"),
            Some(&headers),
            &payload,
        );
        let json = serde_json::to_vec(&letter).expect("a letter serializes");
        let back: Letter = serde_json::from_slice(&json).expect("and reads back");

        assert_eq!(back, letter);
        assert_eq!(back.payload().expect("base64").as_ref(), payload.as_slice());
        assert_eq!(back.header(H_SEQ), "42");
        assert_eq!(back.header(H_ERROR), "");
        assert!(!back.headers.contains_key("Nats-Msg-Id"));
        let map = back.header_map().expect("valid headers");
        assert_eq!(
            map.get(crate::telemetry::TRACEPARENT).map(|v| v.as_str()),
            Some("00-abc-def-01")
        );
    }

    #[test]
    fn a_letter_whose_payload_is_not_base64_is_refused() {
        let letter = Letter {
            subject: dlq_subject("checkout-svc", "checkout-svc"),
            headers: BTreeMap::new(),
            payload: "not base64!".to_owned(),
        };
        assert!(letter.payload().is_err());
    }

    #[test]
    fn a_letter_with_a_line_break_in_a_header_or_an_unknown_name_does_not_panic() {
        let mut letter = Letter::new(&dlq_subject("checkout-svc", "checkout-svc"), None, b"{}");
        letter
            .headers
            .insert("bad:name\r\n".to_owned(), "x".to_owned());
        assert_eq!(letter.header_map().expect("unknown names ignored").len(), 0);
        letter.headers.insert(
            H_SERVICE.to_owned(),
            "checkout-svc\r\nX-Forged: 1".to_owned(),
        );
        assert!(matches!(
            letter.header_map(),
            Err(LetterError::Header(H_SERVICE))
        ));
    }
}
