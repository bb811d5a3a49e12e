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

/// `bench [--quick]` alone is `bench shop [--quick]`: the measurement
/// issue #8 names.
#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Bazaar's benchmarks",
    after_help = "Without a subcommand, bench measures the whole shop against the broker's \
                  ceiling, as `bench shop` (its options apply): `bench --quick` finishes \
                  within 3 minutes.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    shop: shop::ShopArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Product search: latency and throughput of scatter-gather over K shards.
    Search(search::SearchArgs),
    /// Projection replay: events/s of `edge.product` against a bare read of the stream.
    Replay(replay::ReplayArgs),
    /// The whole shop against the broker's own ceiling, and the edge's reads against hello-world
    /// (the default).
    Shop(shop::ShopArgs),
    /// What fsync-before-ack costs: JetStream, SQLite and PostgreSQL, each against its relaxed peer.
    Durability(durability::DurabilityArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Shop(cli.shop));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_subcommand_bench_is_the_shop_benchmark() {
        let cli = Cli::try_parse_from(["bench", "--quick"]).expect("bench --quick");
        assert!(cli.command.is_none());
        assert!(cli.shop.quick);

        let cli = Cli::try_parse_from(["bench", "shop", "--quick"]).expect("bench shop --quick");
        assert!(matches!(cli.command, Some(Command::Shop(ref args)) if args.quick));

        assert!(Cli::try_parse_from(["bench", "--quick", "search"]).is_err());
        assert!(Cli::try_parse_from(["bench", "--nonsense"]).is_err());
    }
}
