//! The contracts every Bazaar team shares, and the only crate they share:
//! the CloudEvents envelope, every event payload per version, command and
//! query messages, subject and stream names, and the ownership table.
//!
//! Plain serde types only: this crate knows nothing about NATS, databases or
//! async runtimes. A published `XxxV1` type never changes incompatibly; a
//! breaking change is a new `XxxV2` with its own subject and an upcaster.

/// Implements [`Event`] for a payload: its subject, owning team and the
/// field that names its aggregate.
macro_rules! event {
    ($ty:ty, $subject:expr, $team:expr, $aggregate:ident) => {
        impl $crate::envelope::Event for $ty {
            const SUBJECT: &'static str = $subject;
            const TEAM: $crate::subjects::Team = $team;
            fn aggregate_id(&self) -> String {
                self.$aggregate.to_string()
            }
        }
    };
}

pub mod asyncapi;
pub mod auth;
pub mod catalog;
pub mod checkout;
pub mod commands;
pub mod consumers;
pub mod envelope;
pub mod finance;
pub mod money;
pub mod product;
pub mod search;
pub mod subjects;
pub mod warehouse;

pub use catalog::{EventDescriptor, EVENTS};
pub use envelope::{Envelope, Event, EventContext, RawEnvelope};
pub use money::Money;
pub use subjects::Team;
