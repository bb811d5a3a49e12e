//! `bench`: Bazaar's benchmarks, one subcommand each. They measure the real
//! thing (a nats-server, the services' own code) on this machine and print
//! a table; `bench/README.md` records the figures and how they were made.

mod broker;
mod durability;
mod replay;
mod search;
mod shop;

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Bazaar's benchmarks")]
enum Command {
    /// Product search: latency and throughput of scatter-gather over K shards.
    Search(search::SearchArgs),
    /// Projection replay: events/s of `edge.product` against a bare read of the stream.
    Replay(replay::ReplayArgs),
    /// The whole shop against the broker's own ceiling, and the edge's reads against hello-world.
    Shop(shop::ShopArgs),
    /// What fsync-before-ack costs: JetStream, SQLite and PostgreSQL, each against its relaxed peer.
    Durability(durability::DurabilityArgs),
}

fn main() -> ExitCode {
    let command = Command::parse();
    // Two workers: the machine this is measured on has two cores, and the
    // shards' indexers and searches run on blocking threads of their own.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Search(args) => search::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Shop(args) => shop::run(args).await,
            Command::Durability(args) => durability::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
