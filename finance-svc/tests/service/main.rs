//! finance-svc as it runs: in-process against a real nats-server and real
//! databases (SQLite, and PostgreSQL when reachable), fed checkout's order
//! events, judged by the events it publishes and the rows it stores.

// One test binary: the modules live under `tests/service/` so that cargo
// does not build each file as a test binary of its own.
mod authorisation;
mod invoices;
mod settlement;
mod support;
mod versions;
