//! The catalogue of every event version: what tooling (schema generation,
//! contract tests, the CLI's decoder) iterates over.

use serde_json::{json, Value};

use crate::envelope::{
    schema_uri, type_of, DecodeError, Envelope, Event, RawEnvelope, CONTENT_TYPE, SPEC_VERSION,
};
use crate::subjects::Team;
use crate::{checkout, finance, product, warehouse};

/// One event version, described without its Rust type.
pub struct EventDescriptor {
    pub subject: &'static str,
    pub team: Team,
    /// The payload's JSON Schema, generated from the Rust type.
    pub schema: fn() -> Value,
    /// The JSON Schema of the whole envelope as it goes on the wire, with the
    /// typed `data`: what `contracts/schemas/<file_stem>.json` holds.
    pub envelope_schema: fn() -> Value,
    /// Decodes a whole envelope of this event, checking the payload's type.
    pub check: fn(&[u8]) -> Result<(), DecodeError>,
    /// Decodes a whole envelope as its Rust type and encodes it again: what
    /// a consumer that understood the event would write back.
    pub reencode: fn(&[u8]) -> Result<Value, DecodeError>,
    /// For a version superseded by a newer major: the upcaster into it.
    /// History of this version stays in the stream, so it stays here too.
    pub upcast: Option<Upcaster>,
}

/// How history of a superseded event version is read as its successor.
pub struct Upcaster {
    /// The subject of the next major version.
    pub to: &'static str,
    /// Decodes a whole envelope of the old version and returns the
    /// envelope of the next version that its upcaster makes of it.
    pub apply: fn(&[u8]) -> Result<Value, DecodeError>,
}

impl EventDescriptor {
    pub fn event_type(&self) -> String {
        type_of(self.subject)
    }

    /// The file stem used under `schemas/` and `samples/`.
    pub fn file_stem(&self) -> String {
        self.subject
            .strip_prefix("evt.")
            .unwrap_or(self.subject)
            .to_owned()
    }

    /// Whether a newer major version replaces this one (it is still read
    /// from history, never published again).
    pub fn is_superseded(&self) -> bool {
        self.upcast.is_some()
    }
}

const fn describe<T: Event>() -> EventDescriptor {
    EventDescriptor {
        subject: T::SUBJECT,
        team: T::TEAM,
        schema: schema_of::<T>,
        envelope_schema: envelope_schema_of::<T>,
        check: check_as::<T>,
        reencode: reencode_as::<T>,
        upcast: None,
    }
}

/// An event version that `New` supersedes, with its upcaster.
const fn describe_superseded<Old: Event, New: Event + From<Old>>() -> EventDescriptor {
    EventDescriptor {
        upcast: Some(Upcaster {
            to: New::SUBJECT,
            apply: upcast_as::<Old, New>,
        }),
        ..describe::<Old>()
    }
}

fn upcast_as<Old: Event, New: Event + From<Old>>(bytes: &[u8]) -> Result<Value, DecodeError> {
    let envelope = Envelope::<Old>::from_slice(bytes)?.upcast::<New>();
    serde_json::to_value(envelope).map_err(DecodeError::Envelope)
}

fn schema_of<T: Event>() -> Value {
    schemars::schema_for!(T).to_value()
}

/// The derived schema of `Envelope<T>`, narrowed to what Bazaar publishes:
/// the attributes fixed per event version become constants, so a document of
/// another version fails validation.
fn envelope_schema_of<T: Event>() -> Value {
    narrow(
        schemars::schema_for!(Envelope<T>).to_value(),
        T::event_type(),
        [
            ("type", json!({ "const": T::event_type() })),
            ("dataschema", json!({ "const": schema_uri(T::SUBJECT) })),
        ],
    )
}

/// The JSON Schema of any Bazaar event's envelope, `data` left open: what
/// `contracts/schemas/envelope.json` holds, for tools that route events
/// without knowing their payloads.
pub fn envelope_schema() -> Value {
    narrow(
        schemars::schema_for!(RawEnvelope).to_value(),
        "bazaar event".to_owned(),
        [
            ("type", json!({ "pattern": EVENT_TYPE })),
            ("dataschema", json!({ "pattern": DATA_SCHEMA })),
        ],
    )
}

/// `bazaar.<team>.<entity>.<fact>.v<major>`.
const EVENT_TYPE: &str = r"^bazaar\.[a-z]+\.[a-z-]+\.[a-z-]+\.v[1-9][0-9]*$";
/// `urn:bazaar:schema:evt.<team>.<entity>.<fact>.v<major>`.
const DATA_SCHEMA: &str = r"^urn:bazaar:schema:evt\.[a-z]+\.[a-z-]+\.[a-z-]+\.v[1-9][0-9]*$";
/// A lower-case UUID of version 7 (time-ordered), as `uuid` prints it.
const UUID_V7: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";
/// `/<service>`.
const SOURCE: &str = "^/[a-z][a-z0-9-]*$";
/// A W3C trace context, version 00.
const TRACEPARENT: &str = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$";

/// Adds to a derived envelope schema the keywords the Rust types cannot
/// express: constant attributes and the shapes of ids and trace context.
fn narrow(mut schema: Value, title: String, per_event: [(&str, Value); 2]) -> Value {
    let common = [
        ("specversion", json!({ "const": SPEC_VERSION })),
        ("datacontenttype", json!({ "const": CONTENT_TYPE })),
        ("id", json!({ "pattern": UUID_V7 })),
        ("source", json!({ "pattern": SOURCE })),
        ("subject", json!({ "minLength": 1 })),
        ("correlationid", json!({ "minLength": 1 })),
        ("causationid", json!({ "minLength": 1 })),
        ("traceparent", json!({ "pattern": TRACEPARENT })),
    ];
    for (attribute, keywords) in common.into_iter().chain(per_event) {
        let property = schema
            .pointer_mut(&format!("/properties/{attribute}"))
            .and_then(Value::as_object_mut);
        if let (Some(property), Value::Object(keywords)) = (property, keywords) {
            property.extend(keywords);
        }
    }
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".to_owned(), Value::String(title));
    }
    schema
}

fn check_as<T: Event>(bytes: &[u8]) -> Result<(), DecodeError> {
    Envelope::<T>::from_slice(bytes).map(|_| ())
}

fn reencode_as<T: Event>(bytes: &[u8]) -> Result<Value, DecodeError> {
    let envelope = Envelope::<T>::from_slice(bytes)?;
    serde_json::to_value(envelope).map_err(DecodeError::Envelope)
}

/// Every event version Bazaar publishes.
pub static EVENTS: &[EventDescriptor] = &[
    describe::<product::ProductCreatedV1>(),
    describe::<product::ProductUpdatedV1>(),
    describe::<product::ProductPriceChangedV1>(),
    describe::<product::ProductDiscontinuedV1>(),
    describe::<checkout::BasketChangedV1>(),
    describe_superseded::<checkout::OrderPlacedV1, checkout::OrderPlacedV2>(),
    describe::<checkout::OrderPlacedV2>(),
    describe::<checkout::OrderConfirmedV1>(),
    describe::<checkout::OrderRejectedV1>(),
    describe::<checkout::OrderCancelledV1>(),
    describe::<checkout::OrderCancellationRequestedV1>(),
    describe::<warehouse::StockAdjustedV1>(),
    describe::<warehouse::StockReservedV1>(),
    describe::<warehouse::StockReservationFailedV1>(),
    describe::<warehouse::StockReleasedV1>(),
    describe::<warehouse::ShipmentDispatchedV1>(),
    describe::<finance::PaymentAuthorizedV1>(),
    describe::<finance::PaymentFailedV1>(),
    describe::<finance::PaymentVoidedV1>(),
    describe::<finance::PaymentCapturedV1>(),
    describe::<finance::PaymentRefundedV1>(),
    describe::<finance::InvoiceIssuedV1>(),
];

/// The descriptor of an event subject.
pub fn by_subject(subject: &str) -> Option<&'static EventDescriptor> {
    EVENTS.iter().find(|d| d.subject == subject)
}

/// The descriptor of a CloudEvents `type`.
pub fn by_type(event_type: &str) -> Option<&'static EventDescriptor> {
    EVENTS.iter().find(|d| d.event_type() == event_type)
}

/// Parses any Bazaar event and checks its payload against its type.
pub fn decode_any(bytes: &[u8]) -> Result<RawEnvelope, DecodeError> {
    let raw = RawEnvelope::parse(bytes)?;
    let Some(descriptor) = by_type(&raw.event_type) else {
        return Err(DecodeError::UnknownType(raw.event_type));
    };
    (descriptor.check)(bytes)?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_listed_once_under_its_owning_team() {
        let mut subjects: Vec<_> = EVENTS.iter().map(|d| d.subject).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), EVENTS.len(), "an event is listed twice");
        for d in EVENTS {
            assert_eq!(
                Team::owning(d.subject),
                Some(d.team),
                "{} is declared with `event!(…, Team::{:?}, …)`, but its subject names another \
                 team: only the owning team publishes on `evt.<team>.>`. Declare the event in \
                 the owning team's module with its own team, or give it a subject under your \
                 team's prefix",
                d.subject,
                d.team
            );
        }
    }

    #[test]
    fn every_upcaster_leads_to_the_next_major_of_the_same_event() {
        for d in EVENTS {
            let Some(upcast) = &d.upcast else { continue };
            let next = by_subject(upcast.to)
                .unwrap_or_else(|| panic!("{} upcasts to {}, not in EVENTS", d.subject, upcast.to));
            let (old, old_major) = d.subject.rsplit_once(".v").expect("versioned subject");
            let (new, new_major) = next.subject.rsplit_once(".v").expect("versioned subject");
            assert_eq!(old, new, "{} upcasts to another event", d.subject);
            assert_eq!(
                old_major.parse::<u32>().map(|m| m + 1),
                new_major.parse::<u32>(),
                "{} must upcast to the next major version",
                d.subject
            );
        }
    }
}
