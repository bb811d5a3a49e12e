//! The operators' commands (`streams`, `tail`, `replay`, `dlq`) against the
//! real shop: every service binary as a process, a real nats-server with the
//! real users, real databases (`BAZAAR_TEST_DB`). Each test owns its shop,
//! so they run in parallel; `bazaar` runs as the `ops` user, as an operator
//! would run it.

mod apply;
mod dead_letters;
mod follow;
mod inspect;
mod lost_history;
mod replay;
mod support;
