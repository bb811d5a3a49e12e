use std::process::ExitCode;

use clap::Parser;

// One thread: fewer wake-ups per event (ARCHITECTURE.md, "Runtime").
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = edge_api::Args::parse();
    platform::telemetry::init_logs(args.service.log_format);
    match edge_api::run(args, platform::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "edge-api failed");
            eprintln!("edge-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}
