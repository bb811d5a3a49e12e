//! Fault injection for tests: `BAZAAR_FAULTS=outbox.after-commit,…` makes
//! the process abort at the named points, as a power cut would, and
//! `poison.<consumer>.<stream>` makes a consumer refuse every event of that
//! stream, as a handler bug would, until the process runs without it.

/// Aborts the process if the fault `point` is switched on.
pub fn point(point: &str) {
    if switched_on(point) {
        tracing::error!(point, "injected fault: aborting");
        std::process::abort();
    }
}

/// Whether the consumer `consumer` of `stream` must refuse its events
/// (`poison.<consumer>.<stream>`), for tests of dead letters whose cause can
/// be fixed: restarting the service without the fault is the fix.
pub fn poisons(consumer: &str, stream: &str) -> bool {
    switched_on(&format!("{POISON}.{consumer}.{stream}"))
}

fn switched_on(point: &str) -> bool {
    std::env::var("BAZAAR_FAULTS").is_ok_and(|list| list.split(',').any(|p| p.trim() == point))
}

/// Fault points that exist (documentation for test writers).
pub const OUTBOX_AFTER_COMMIT: &str = "outbox.after-commit";
/// Prefix of `poison.<consumer>.<stream>` (see [`poisons`]).
pub const POISON: &str = "poison";
