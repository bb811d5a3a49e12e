//! warehouse-svc against a real nats-server and real databases (SQLite, and
//! PostgreSQL when reachable): the service runs in-process, the tests play
//! checkout and the admin, and read the warehouse's events and tables.

mod checkout;
mod orders;
mod oversell;
mod shipments;
mod stock;
mod support;
mod versions;
