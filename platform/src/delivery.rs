//! What a handler sees of a message, and what it answers: the platform
//! consumer loop alone acks, naks or dead-letters, from the handler's outcome.

use std::borrow::Cow;

use async_nats::HeaderMap;
use bytes::Bytes;
use contracts::envelope::DecodeError;
use contracts::{Envelope, Event, RawEnvelope};

use crate::telemetry::TRACEPARENT;

/// A message delivered from a stream, detached from its acking handle.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub stream: String,
    pub subject: String,
    pub payload: Bytes,
    pub headers: Option<HeaderMap>,
    pub stream_seq: u64,
    /// How many times this message has been delivered, this time included.
    pub delivered: i64,
}

impl Delivery {
    /// The envelope, payload not yet decoded.
    pub fn raw(&self) -> Result<RawEnvelope, HandlerError> {
        RawEnvelope::parse(&self.payload).map_err(HandlerError::from)
    }

    /// The typed envelope.
    pub fn decode<T: Event>(&self) -> Result<Envelope<T>, HandlerError> {
        Envelope::<T>::from_slice(&self.payload).map_err(HandlerError::from)
    }

    /// The aggregate the event is about (its CloudEvents `subject`); None
    /// when the payload has none or is not JSON.
    pub fn aggregate(&self) -> Option<Cow<'_, str>> {
        aggregate_of(&self.payload)
    }

    /// The `traceparent` header, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.headers
            .as_ref()
            .and_then(|h| h.get(TRACEPARENT))
            .map(|v| v.as_str())
    }
}

/// The CloudEvents `subject` of an event's JSON, borrowed where it can be;
/// the other fields are skipped, not decoded.
pub(crate) fn aggregate_of(payload: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Aggregate<'a> {
        #[serde(borrow)]
        subject: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Aggregate>(payload)
        .ok()
        .and_then(|a| a.subject)
}

/// How handling went; the consumer loop turns it into ack / nak / dead letter.
#[derive(Debug)]
pub enum Outcome {
    /// The effect is durable (or was already): ack.
    Done,
    /// A transient failure: nak with back-off, dead-letter after `max_deliver`.
    Retry(String),
    /// The message can never be handled: dead-letter now, then terminate.
    Poison(String),
}

/// A handler's error, classified.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Will never succeed (undecodable, violates the contract).
    #[error("poison: {0}")]
    Poison(String),
    /// May succeed later (database or broker trouble).
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
}

impl From<DecodeError> for HandlerError {
    fn from(e: DecodeError) -> Self {
        HandlerError::Poison(e.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Transient(e.into())
    }
}

impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::Transient(e)
    }
}

impl From<Result<(), HandlerError>> for Outcome {
    fn from(result: Result<(), HandlerError>) -> Self {
        match result {
            Ok(()) => Outcome::Done,
            Err(HandlerError::Poison(reason)) => Outcome::Poison(reason),
            Err(HandlerError::Transient(e)) => Outcome::Retry(format!("{e:#}")),
        }
    }
}
