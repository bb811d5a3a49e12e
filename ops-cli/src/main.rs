//! `bazaar`: the operator CLI. `up` runs the whole shop locally, `token`
//! mints bearer tokens for it; the inspection and repair commands are
//! listed but not built yet, and say so.

mod duration;
mod not_yet;
mod secrets;
mod token;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  bazaar up                                   start the shop on http://127.0.0.1:8080
  bazaar up --http-addr 127.0.0.1:0           ... on a free port
  bazaar up --shards 2 --scale checkout-svc=2 two search shards, two checkout instances
  bazaar token --customer alice               a customer token for the local shop
  bazaar token --customer root --admin --ttl 1h
";

/// Operate a Bazaar shop: run it locally, mint tokens, inspect streams.
#[derive(Debug, Parser)]
#[command(name = "bazaar", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run nats-server and every service locally; restart what dies; Ctrl-C stops all
    Up(up::UpArgs),
    /// Print a bearer token (HS256 JWT) for the local shop
    Token(token::TokenArgs),
    /// Show streams and consumers with pending messages and lag (not yet implemented)
    Streams(not_yet::Args),
    /// Print decoded events as they flow, filtered by subject, type or order (not yet implemented)
    Tail(not_yet::Args),
    /// Rebuild one service's projections from the stream (not yet implemented)
    Replay(not_yet::Args),
    /// List, show, retry or drop dead letters (not yet implemented)
    Dlq(not_yet::Args),
    /// Load a demo catalog with stock into the running shop (not yet implemented)
    Seed(not_yet::Args),
    /// Generate order load and report latency percentiles (not yet implemented)
    Load(not_yet::Args),
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Up(args) => up::run(args),
        Command::Token(args) => token::run(args),
        Command::Streams(_) => Ok(not_yet::report("streams", 5)),
        Command::Tail(_) => Ok(not_yet::report("tail", 5)),
        Command::Replay(_) => Ok(not_yet::report("replay", 5)),
        Command::Dlq(_) => Ok(not_yet::report("dlq", 5)),
        Command::Seed(_) => Ok(not_yet::report("seed", 3)),
        Command::Load(_) => Ok(not_yet::report("load", 3)),
    }
}
