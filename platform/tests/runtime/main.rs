//! Integration tests of the platform runtime against a real nats-server
//! (one per test, without authentication) and real databases: every test
//! that touches a store runs on each backend of `TestDb::backends()`.

mod commands;
mod consumer_gone;
mod consumer_loop;
mod database;
mod group_commit;
mod outbox_relay;
mod projections;
mod reactions;
mod reconnect;
mod redelivery;
mod stream_declare;
mod stream_wait;
mod support;
