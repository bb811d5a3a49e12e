//! Shutdown as a future, so binaries stop on Ctrl-C/SIGTERM (or when the
//! `bazaar up` that started them is gone) and tests stop services whenever
//! they like.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The environment variable `bazaar up` sets to its own pid in every child.
pub const SUPERVISOR_PID_ENV: &str = "BAZAAR_SUPERVISOR_PID";

/// How often a child looks whether its supervisor is still there.
const SUPERVISOR_CHECK_EVERY: Duration = Duration::from_millis(500);

/// Resolves on Ctrl-C or SIGTERM, or once the supervisor named in
/// `BAZAAR_SUPERVISOR_PID` is no longer this process's parent (it was
/// killed): a service must not outlive the `bazaar up` that runs it, or a
/// second one on the same data dir would find it still at work.
pub async fn signal() {
    tokio::select! {
        () = os_signal() => {}
        () = supervisor_gone() => {}
    }
}

async fn supervisor_gone() {
    let supervisor = std::env::var(SUPERVISOR_PID_ENV)
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok());
    let Some(supervisor) = supervisor else {
        return std::future::pending().await;
    };
    #[cfg(unix)]
    loop {
        let parent = std::os::unix::process::parent_id();
        if parent != supervisor {
            tracing::error!(
                supervisor,
                parent,
                "the bazaar up that started this process is gone; shutting down"
            );
            return;
        }
        tokio::time::sleep(SUPERVISOR_CHECK_EVERY).await;
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

async fn os_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// A token cancelled when `signal` resolves.
pub fn token_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        signal().await;
        child.cancel();
    });
    token
}
