//! Contract tests: other teams rely on the committed schemas and golden
//! samples under `contracts/`, so every change to an event type has to keep
//! them true. `BAZAAR_BLESS=1 cargo test -p contracts` rewrites the schemas
//! from the Rust types; nothing ever rewrites the samples.

// One test binary: the modules live under `tests/contracts/` so that cargo
// does not build each file as a test binary of its own.
#[path = "contracts/samples.rs"]
mod samples;
#[path = "contracts/schemas.rs"]
mod schemas;
#[path = "contracts/support.rs"]
mod support;
