use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = product_svc::Args::parse();
    platform::telemetry::init_logs(args.service.log_format);
    match product_svc::run(args, platform::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "product-svc failed");
            eprintln!("product-svc: {error:#}");
            ExitCode::FAILURE
        }
    }
}
