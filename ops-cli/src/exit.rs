//! Exit codes of every `bazaar` command (`main` picks them with
//! [`finish`]), so scripts can tell what failed without reading the message:
//! 0 done, 1 the operation ran and failed, 2 usage or configuration, 3 the
//! shop (NATS, or the service asked) did not answer.

use std::process::ExitCode;

pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const UNREACHABLE: u8 = 3;
/// Stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const INTERRUPTED: u8 = 130;

/// A failure that is not the operation's own: which exit code it gets.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad flags, no shop configured, an unknown name.
    #[error("{0}")]
    Usage(String),
    /// NATS or the service did not answer.
    #[error("{0}")]
    Unreachable(String),
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::Usage(message.into()).into()
}

pub fn unreachable(message: impl Into<String>) -> anyhow::Error {
    Failure::Unreachable(message.into()).into()
}

/// Prints an error with its causes and picks the exit code from the first
/// [`Failure`] in its chain (1 when there is none).
pub fn finish(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    let error = match result {
        Ok(code) => return Ok(code),
        Err(error) => error,
    };
    errln!("error: {error}");
    for cause in error.chain().skip(1) {
        errln!("  caused by: {cause}");
    }
    let code = error
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(FAILED, |f| match f {
            Failure::Usage(_) => USAGE,
            Failure::Unreachable(_) => UNREACHABLE,
        });
    Ok(ExitCode::from(code))
}

/// A multi-threaded runtime for a command's async body.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    body: F,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(body)
}
