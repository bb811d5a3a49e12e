//! The CloudEvents 1.0 envelope (structured JSON mode) every event travels in.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::subjects::Team;

pub const SPEC_VERSION: &str = "1.0";
pub const CONTENT_TYPE: &str = "application/json";

/// A typed event payload: one version of one fact of one team.
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The NATS subject, `evt.<team>.<entity>.<fact>.v<major>`.
    const SUBJECT: &'static str;
    /// The team that owns (and alone publishes) the event.
    const TEAM: Team;

    /// The aggregate the event is about; becomes the CloudEvents `subject`.
    fn aggregate_id(&self) -> String;

    /// The CloudEvents `type`, `bazaar.<team>.<entity>.<fact>.v<major>`.
    fn event_type() -> String {
        type_of(Self::SUBJECT)
    }
}

/// The CloudEvents `type` for an event subject.
pub fn type_of(subject: &str) -> String {
    format!("bazaar.{}", subject.strip_prefix("evt.").unwrap_or(subject))
}

/// The `dataschema` URI for an event subject.
pub fn schema_uri(subject: &str) -> String {
    format!("urn:bazaar:schema:{subject}")
}

/// Where an event comes from in the causal chain: which request started the
/// flow (`correlationid`), which message caused this one (`causationid`) and
/// the W3C trace context to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContext {
    pub correlation_id: String,
    pub causation_id: String,
    pub traceparent: Option<String>,
}

impl EventContext {
    /// A context for a flow that starts here (a command or a timer).
    pub fn root(command_id: impl Into<String>, traceparent: Option<String>) -> Self {
        let id = command_id.into();
        EventContext {
            correlation_id: id.clone(),
            causation_id: id,
            traceparent,
        }
    }

    /// The context for events caused by `cause`.
    pub fn caused_by<T>(cause: &Envelope<T>) -> Self {
        EventContext {
            correlation_id: cause.correlationid.clone(),
            causation_id: cause.id.to_string(),
            traceparent: cause.traceparent.clone(),
        }
    }
}

/// A CloudEvents 1.0 document with Bazaar's extensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope<T> {
    pub specversion: String,
    /// UUID v7: unique, and time-ordered.
    pub id: Uuid,
    /// `/<service>`.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate id.
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    pub dataschema: String,
    pub data: T,
    pub correlationid: String,
    pub causationid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// An envelope whose payload has not been decoded yet.
pub type RawEnvelope = Envelope<serde_json::Value>;

impl<T: Event> Envelope<T> {
    /// Wraps a payload, stamping a fresh v7 id and the current time.
    pub fn new(service: &str, data: T, ctx: &EventContext) -> Self {
        Envelope {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: format!("/{service}"),
            event_type: T::event_type(),
            subject: data.aggregate_id(),
            time: Utc::now(),
            datacontenttype: CONTENT_TYPE.to_owned(),
            dataschema: schema_uri(T::SUBJECT),
            data,
            correlationid: ctx.correlation_id.clone(),
            causationid: ctx.causation_id.clone(),
            traceparent: ctx.traceparent.clone(),
        }
    }
}

/// Why an envelope could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON CloudEvent: {0}")]
    Envelope(serde_json::Error),
    #[error("unsupported specversion {0:?}")]
    SpecVersion(String),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("expected type {expected}, got {actual}")]
    WrongType { expected: String, actual: String },
    #[error("payload of {event_type} does not decode as its contract type: {source}")]
    Payload {
        event_type: String,
        source: serde_json::Error,
    },
}

impl RawEnvelope {
    /// Parses the envelope, leaving `data` undecoded.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let raw: RawEnvelope = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
        if raw.specversion != SPEC_VERSION {
            return Err(DecodeError::SpecVersion(raw.specversion));
        }
        Ok(raw)
    }

    /// Decodes the payload as `T`, checking that the type matches.
    pub fn decode<T: Event>(self) -> Result<Envelope<T>, DecodeError> {
        let expected = T::event_type();
        if self.event_type != expected {
            return Err(DecodeError::WrongType {
                expected,
                actual: self.event_type,
            });
        }
        let data = serde_json::from_value(self.data).map_err(|source| DecodeError::Payload {
            event_type: expected.clone(),
            source,
        })?;
        Ok(Envelope {
            specversion: self.specversion,
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            subject: self.subject,
            time: self.time,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            data,
            correlationid: self.correlationid,
            causationid: self.causationid,
            traceparent: self.traceparent,
        })
    }
}

impl RawEnvelope {
    /// Decodes an event published as either `Old` or its successor `New`,
    /// upcasting `Old`: what a consumer of `New` uses while the stream
    /// still holds history of `Old`.
    pub fn decode_or_upcast<Old, New>(self) -> Result<Envelope<New>, DecodeError>
    where
        Old: Event,
        New: Event + From<Old>,
    {
        if self.event_type == Old::event_type() {
            Ok(self.decode::<Old>()?.upcast())
        } else {
            self.decode::<New>()
        }
    }
}

impl<T: Event> Envelope<T> {
    /// The same event as the next major version of its contract. Identity,
    /// time and causal chain stay; `type` and `dataschema` become those of
    /// `U`, so the result is indistinguishable from a `U` published then.
    pub fn upcast<U: Event + From<T>>(self) -> Envelope<U> {
        Envelope {
            specversion: self.specversion,
            id: self.id,
            source: self.source,
            event_type: U::event_type(),
            subject: self.subject,
            time: self.time,
            datacontenttype: self.datacontenttype,
            dataschema: schema_uri(U::SUBJECT),
            data: U::from(self.data),
            correlationid: self.correlationid,
            causationid: self.causationid,
            traceparent: self.traceparent,
        }
    }

    /// Decodes a typed envelope straight from bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        RawEnvelope::parse(bytes)?.decode()
    }

    /// The JSON document.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain derived types into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
