//! Contract tests: other teams rely on the committed schemas, golden
//! samples, consumer declarations and AsyncAPI document under `contracts/`,
//! so every change to an event type has to keep them true.
//! `BAZAAR_BLESS=1 cargo test -p contracts` rewrites the schemas and the
//! AsyncAPI document from the Rust types (additive changes only) and
//! records new samples in the manifest; nothing ever rewrites a sample.

// One test binary: the modules live under `tests/contracts/` so that cargo
// does not build each file as a test binary of its own.
#[path = "contracts/asyncapi.rs"]
mod asyncapi;
#[path = "contracts/compat.rs"]
mod compat;
#[path = "contracts/compat_rules.rs"]
mod compat_rules;
#[path = "contracts/compatibility.rs"]
mod compatibility;
#[path = "contracts/declarations.rs"]
mod declarations;
#[path = "contracts/manifest.rs"]
mod manifest;
#[path = "contracts/samples.rs"]
mod samples;
#[path = "contracts/schemas.rs"]
mod schemas;
#[path = "contracts/support.rs"]
mod support;
