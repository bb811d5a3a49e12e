//! The chaos test lives in `tests/kill.rs`: it kills services with SIGKILL
//! under order load, then checks the saga's invariants with `bazaar check`.
//! It is slow, so it is its own package, left out of `./dev test`; run it
//! with `./dev chaos`.
