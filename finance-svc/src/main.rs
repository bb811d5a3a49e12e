use std::process::ExitCode;

use clap::Parser;

// One thread: fewer wake-ups per event (ARCHITECTURE.md, "Runtime").
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = finance_svc::Args::parse();
    platform::telemetry::init_logs(args.service.log_format);
    match finance_svc::run(args, platform::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "finance-svc failed");
            eprintln!("finance-svc: {error:#}");
            ExitCode::FAILURE
        }
    }
}
