//! System tests: the whole shop as real processes (every service binary, a
//! real nats-server with the real users and permissions, real databases),
//! driven through the edge's REST API and checked against every team's
//! view: the edge's views over REST and the events on the streams.
//!
//! One binary so cargo links once; each module is one area. Every test
//! starts its own shop (own broker, ports, data), so they run in parallel.
//! The database backend is `BAZAAR_TEST_DB` (`sqlite` by default, or
//! `postgres`), through the test kit's `Shop::builder()`; the `postgres`
//! module also runs the skeleton and the happy path on PostgreSQL in a
//! default run whenever a PostgreSQL server answers.

mod basket;
mod broker_restart;
mod cancel;
mod concurrency;
mod consumer_contracts;
mod contact_email;
mod crash;
mod dlq_privilege;
mod fresh_reads;
mod health;
mod hostile;
mod idempotency;
mod least_privilege;
mod orders_api;
mod otlp;
mod outages;
mod permissions;
mod postgres;
mod redelivery;
mod saga;
mod search;
mod skeleton;
mod started_over;
mod traces;

use std::time::Duration;

/// How long a saga may take to settle in a test, on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(30);
