//! Search shards against a real nats-server: relevance, filters, paging,
//! freshness, partial answers, and the same results whatever the number of
//! shards. Shards and the edge run in-process; events are published as the
//! product and warehouse teams publish them.

mod harness;

mod durability;
mod freshness;
mod http;
mod layout;
mod partial;
mod relevance;
