//! `bazaar`: the operator CLI. `up` runs the whole shop locally, `token`
//! mints bearer tokens for it, `seed` fills its catalog and `load` drives
//! orders through it; `streams`, `tail`, `replay` and `dlq` let operators
//! see what flows, rebuild read models from history and repair what failed
//! (exit codes: 0 done, 1 failed, 2 usage or configuration, 3 unreachable).

#[macro_use]
mod out;

mod check;
mod connect;
mod dlq;
mod duration;
mod exit;
mod load;
mod progress;
mod replay;
mod secrets;
mod seed;
mod shop_client;
mod streams;
mod tail;
mod time;
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
  bazaar seed                                 a demo catalog with stock (run it again: nothing new)
  bazaar load --orders 200 --concurrency 16   order load with latency percentiles
  bazaar streams                              streams, consumers, pending and lag
  bazaar streams apply --dry-run              what differs from the declared streams and durables
  bazaar tail --since 10m --follow            decoded events, then new ones as they come
  bazaar replay edge-api --from-start         rebuild the edge's views from history
  bazaar dlq list                             dead letters: who failed, on what, why

Every command exits with 0 when done, 1 when the operation failed, 2 on a
usage or configuration error, 3 when the shop did not answer, 130 when
interrupted by Ctrl-C (`up` is stopped that way: it stops the shop and
exits 0).
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
    /// Show streams and consumers with pending messages and lag
    Streams(streams::StreamsArgs),
    /// Print decoded events, filtered by subject, type or order; --follow for new ones
    Tail(tail::TailArgs),
    /// Rebuild a service's projections from the streams, while traffic flows
    Replay(replay::ReplayArgs),
    /// List, show, retry or drop dead letters
    Dlq(dlq::DlqArgs),
    /// Create a demo catalog with stock in the running shop (idempotent)
    Seed(seed::SeedArgs),
    /// Place and follow orders as virtual customers; report rates and latency percentiles
    Load(load::LoadArgs),
    /// Check the order saga's invariants over the whole event history
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    // `finish` prints the error and picks its exit code (2 for usage or
    // configuration, 3 for a shop that does not answer, else 1).
    match exit::finish(run()) {
        Ok(code) => code,
        Err(_) => ExitCode::FAILURE,
    }
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Up(args) => up::run(args),
        Command::Token(args) => token::run(args),
        Command::Streams(args) => streams::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Dlq(args) => dlq::run(args),
        Command::Seed(args) => seed::run(args),
        Command::Load(args) => load::run(args),
        Command::Check(args) => check::run(args),
    }
}
