//! Fault injection for crash tests: `BAZAAR_FAULTS=outbox.after-commit,…`
//! makes the process abort at the named points, as a power cut would.

/// Aborts the process if the fault `point` is switched on.
pub fn point(point: &str) {
    if let Ok(list) = std::env::var("BAZAAR_FAULTS") {
        if list.split(',').any(|p| p.trim() == point) {
            tracing::error!(point, "injected fault: aborting");
            std::process::abort();
        }
    }
}

/// Fault points that exist (documentation for test writers).
pub const OUTBOX_AFTER_COMMIT: &str = "outbox.after-commit";
