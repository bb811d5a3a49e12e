//! The runtime every Bazaar service is built on, so that no service copies
//! plumbing from another: configuration, the NATS connection, declarative
//! streams and consumers, the transactional outbox and its relay, the inbox,
//! the consumer loop (ack / retry / dead-letter in one place), projections
//! with checkpoints and their replay, command responders, the operators'
//! control plane (replay, redeliver), trace context, health and metrics,
//! graceful shutdown, and the SQLite/PostgreSQL database layer.

pub mod bounded;
pub mod command;
pub mod config;
pub mod consumer;
pub mod control;
pub mod db;
pub mod delivery;
pub mod dlq;
pub mod fault;
pub mod group_commit;
pub mod health;
pub mod idempotency;
pub mod inbox;
pub mod metrics;
pub mod nats;
pub mod nats_server;
pub mod outbox;
pub mod projection;
pub mod reaction;
pub mod replay;
pub mod responder;
pub mod runtime;
pub mod shutdown;
pub mod started_over;
pub mod streams;
pub mod telemetry;

pub use config::{Secret, ServiceArgs};
pub use db::{Db, Durability, Tx};
pub use delivery::{Delivery, HandlerError, Outcome};
pub use runtime::Runtime;
