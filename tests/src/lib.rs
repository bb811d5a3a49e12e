//! Test support for every Bazaar crate, in one place: a real nats-server per
//! test with the real users and permissions ([`TestNats`]), a fresh database
//! per test on SQLite or PostgreSQL ([`TestDb`]), the whole shop as real
//! processes ([`Shop`]), and [`wait_until`] so tests wait on conditions with
//! a deadline instead of sleeping. System tests drive the edge through
//! the typed REST client [`Api`] and read what every team published with
//! [`Streams`].
//!
//! Everything a test starts is stopped when the handle drops, and every
//! test gets its own ports and directories, so tests run in parallel.
//! Helpers panic with a descriptive message instead of returning errors:
//! a failed set-up is a failed test.

pub mod api;
pub mod browser;
mod cluster;
mod db;
mod diagnostics;
mod events;
mod fake;
mod nats;
pub mod otlp;
mod process;
mod shop;
mod token;
mod wait;

pub use api::Api;
pub use cluster::{TestCluster, CLUSTER_SIZE};
pub use db::{drop_postgres_database, on_every_backend, postgres_server_url, Backend, TestDb};
pub use diagnostics::LogsOnFailure;
pub use events::{StoredEvent, Streams};
pub use fake::{fake_started_with, write_fake_services, write_scripts};
pub use nats::{ConnectionEvents, TestNats};
pub use shop::{Service, Shop, ShopBuilder};
pub use token::{mint_expired_token, mint_token};
pub use wait::{wait_for, wait_until};
