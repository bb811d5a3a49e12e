//! `bazaar up`: the whole shop on one machine. Starts nats-server with the
//! config from `nats/` (unless `--nats-url` names one), then every service
//! as a child process, waits until each is ready, restarts what dies, and
//! stops everything in order on Ctrl-C or SIGTERM.

mod affinity;
mod broker;
mod children;
mod database;
mod lock;
mod ready;
mod state;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use contracts::subjects::{EDGE_API, PRODUCT_SVC, SERVICES};
use platform::nats_server::free_port;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

use crate::duration::parse_duration;
use crate::secrets::Secrets;
use affinity::{CpuAffinity, Cpus};
use broker::{start_broker, Broker, BrokerWatch};
use children::{ChildSpec, Supervisor};
use database::Databases;
use lock::DataDirLock;
use state::{ServiceEntry, UpFile, UpState};

const EXAMPLES: &str = "\
Examples:
  bazaar up
  bazaar up --http-addr 127.0.0.1:0 --data-dir /tmp/shop
  bazaar up --shards 3 --scale checkout-svc=2
  bazaar up --postgres postgres://postgres@127.0.0.1:5432/shop --data-dir ./shop-data
  bazaar up --nats-url nats://127.0.0.1:4222 --nats-user ops --nats-password secret";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct UpArgs {
    /// Where the shop keeps everything: secrets, the NATS store, databases, logs
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Address of the edge (storefront and API); 127.0.0.1:0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Use this NATS server instead of starting one; every service then
    /// connects with --nats-user / --nats-password
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// User for --nats-url
    #[arg(long, env = "NATS_USER")]
    nats_user: Option<String>,
    /// Password for --nats-url
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    nats_password: Option<String>,
    /// Run product-svc as K search shards (`--shard i/K`; no flag when K is 1)
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: u32,
    /// Run N instances of a service, 1 to 16 (repeatable); for product-svc, N per shard
    #[arg(long, value_name = "SERVICE=N", value_parser = parse_scale)]
    scale: Vec<(String, u32)>,
    /// Keep the services' state on this PostgreSQL server instead of in an
    /// SQLite file each: a database per service, named after the URL's
    /// (`shop_product`, `shop_checkout`, `shop_warehouse`, `shop_finance`,
    /// `shop_edge` for …/shop; `bazaar_*` when it names none), created when
    /// missing. The data dir remembers the choice: it holds the streams
    /// that belong to those databases. A URL with a password is better
    /// given in the environment variable: a flag shows in `ps`
    #[arg(
        long,
        value_name = "URL",
        env = "BAZAAR_POSTGRES_URL",
        hide_env_values = true
    )]
    postgres: Option<String>,
    /// Log format of bazaar and of every service
    #[arg(long, value_enum, env = "BAZAAR_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// How long the services may take to become ready
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    ready_timeout: Duration,
    /// Whether checkout, warehouse, finance and the edge are each kept on one
    /// CPU, so that a service's runtime thread and its SQLite worker thread
    /// hand work over on one core
    #[arg(long, value_enum, env = "BAZAAR_CPU_AFFINITY", default_value_t = CpuAffinity::Auto)]
    cpu_affinity: CpuAffinity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

fn parse_scale(text: &str) -> Result<(String, u32), String> {
    let (service, n) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected SERVICE=N"))?;
    if !SERVICES.contains(&service) {
        return Err(format!(
            "unknown service {service:?}; one of {}",
            SERVICES.join(", ")
        ));
    }
    let n: u32 = n
        .parse()
        .map_err(|_| format!("{text:?}: N must be a number"))?;
    if n == 0 {
        // Every service is needed: without checkout no order can be
        // placed, without finance none is paid, without the edge there
        // is no shop. Stop a service's processes to simulate its outage.
        return Err(format!(
            "{text:?}: at least 1 instance (every service is needed)"
        ));
    }
    if n > 16 {
        return Err(format!("{text:?}: at most 16 instances"));
    }
    Ok((service.to_owned(), n))
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(up(args))
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(platform::telemetry::colour())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    // Listen for Ctrl-C and SIGTERM before starting anything, so a signal
    // during start-up still stops what was started.
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    // The children run in process groups of their own (see children.rs):
    // when the terminal goes away, only `bazaar up` hears of it.
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;

    // Every file this `up` and its children make (databases, logs, the
    // broker's store) is its owner's alone: they hold customers' names and
    // addresses, whatever mode the data dir has.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // A data dir that cannot be made is a configuration error (exit 2).
    let made_it = make_data_dir(&args.data_dir).map_err(|e| {
        crate::exit::usage(format!(
            "cannot use {} as the data dir: {e}",
            args.data_dir.display()
        ))
    })?;
    let data_dir = args
        .data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.data_dir.display()))?;
    let gone = state::refuse_if_running(&data_dir)?;
    let lock = Arc::new(DataDirLock::take(&data_dir).await?);
    // Ours alone now: if this start is refused, the dir it made goes again.
    let mut made = MadeDataDir(made_it.then(|| data_dir.clone()));
    if !made_it {
        warn_if_others_may_read(&data_dir);
    }
    if let Some(pid) = gone {
        info!(pid, "replacing up.json of a run that is gone");
    }
    let bin_dir = children::binaries_dir(&SERVICES)?;
    let counts = instance_counts(&args)?;
    let edge_listener = reserve_edge_addr(args.http_addr)?;
    let edge_addr = edge_listener
        .local_addr()
        .context("cannot read the edge address")?;
    let databases = database::prepare(&data_dir, args.postgres.as_deref()).await?;
    let secrets = Secrets::load_or_create(&data_dir)?;
    // Only now: a refused start leaves no logs directory behind.
    std::fs::create_dir_all(data_dir.join("logs")).map_err(|e| {
        crate::exit::usage(format!(
            "cannot create {}: {e}",
            data_dir.join("logs").display()
        ))
    })?;
    made.keep();
    let mut broker = start_broker(&args, &data_dir, &secrets, &lock).await?;

    let wiring = Wiring {
        broker: &broker,
        secrets: &secrets,
        databases: &databases,
    };
    let specs = plan(&args, &data_dir, &bin_dir, &counts, edge_addr, &wiring)?;
    let (ops_user, ops_password) = broker.credentials.of("ops").unwrap_or_default();
    let up_file = UpFile {
        http_url: format!("http://{edge_addr}"),
        nats_url: broker.url.clone(),
        nats_user: ops_user,
        nats_password: ops_password,
        pid: std::process::id(),
        nats_pid: broker.own.as_ref().and_then(|server| server.pid()),
        services: specs
            .iter()
            .map(|s| ServiceEntry {
                instance: s.instance.clone(),
                pid: None,
                health_url: s.health_url.clone(),
            })
            .collect(),
    };
    let up_state = Arc::new(UpState::create(&data_dir, up_file)?);
    drop(edge_listener);
    let broker_watch = broker
        .own
        .take()
        .map(|server| BrokerWatch::start(server, up_state.clone()));
    let supervisor = Supervisor::start(specs.clone(), up_state.clone(), lock.clone());

    let outcome = tokio::select! {
        ready = ready::wait_until_ready(&specs, args.ready_timeout) => ready.map(|()| true),
        _ = terminate.recv() => Ok(false),
        _ = interrupt.recv() => Ok(false),
        _ = hangup.recv() => Ok(false),
    };
    if let Ok(true) = outcome {
        // A week-long customer token for the storefront link, so a person can
        // click through the shop at once.
        let demo = crate::token::mint(
            &secrets.jwt_secret,
            "demo",
            contracts::auth::Role::Customer,
            Duration::from_secs(7 * 24 * 3600),
        )?;
        ready::print_banner(
            edge_addr,
            &broker.url,
            &data_dir,
            databases.postgres.as_deref(),
            &demo,
        );
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM: stopping"),
            _ = interrupt.recv() => info!("interrupted: stopping"),
            _ = hangup.recv() => info!("SIGHUP: stopping"),
        }
    }

    supervisor.shutdown().await;
    let own_broker = match broker_watch {
        Some(watch) => watch.stop().await,
        None => None,
    };
    if let Some(mut nats) = own_broker {
        tokio::task::spawn_blocking(move || nats.stop())
            .await
            .context("nats-server stop task")??;
        info!("nats-server stopped");
    }
    up_state.remove();
    outcome.map(|_| ExitCode::SUCCESS)
}

/// How many instances of each service to run.
fn instance_counts(args: &UpArgs) -> anyhow::Result<BTreeMap<&'static str, u32>> {
    let mut counts: BTreeMap<&'static str, u32> = SERVICES.iter().map(|s| (*s, 1)).collect();
    for (service, n) in &args.scale {
        if let Some(count) = SERVICES
            .iter()
            .find(|s| *s == service)
            .and_then(|s| counts.get_mut(s))
        {
            *count = *n;
        }
    }
    if counts.get(EDGE_API).copied().unwrap_or(0) > 1 {
        return Err(crate::exit::usage(
            "--scale edge-api: the edge listens on --http-addr, so `bazaar up` runs one; compose.yaml runs more",
        ));
    }
    if let Some(product) = counts.get_mut(PRODUCT_SVC) {
        *product *= args.shards;
    }
    Ok(counts)
}

/// Binds the edge address now, so a busy port fails before anything starts.
fn reserve_edge_addr(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == ErrorKind::AddrInUse => bail!(
            "{addr} is already in use; pass --http-addr 127.0.0.1:0 for a free port, or another port \
             (e.g. --http-addr 127.0.0.1:8081)"
        ),
        Err(e) => Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
}

/// What every instance is connected to.
struct Wiring<'a> {
    broker: &'a Broker,
    secrets: &'a Secrets,
    databases: &'a Databases,
}

/// Every instance to run, with its arguments and environment.
fn plan(
    args: &UpArgs,
    data_dir: &Path,
    bin_dir: &Path,
    counts: &BTreeMap<&'static str, u32>,
    edge_addr: SocketAddr,
    wiring: &Wiring,
) -> anyhow::Result<Vec<ChildSpec>> {
    let Wiring {
        broker,
        secrets,
        databases,
    } = wiring;
    let mut specs = Vec::new();
    let mut cpus = Cpus::new(args.cpu_affinity);
    for service in SERVICES {
        for i in 0..counts.get(service).copied().unwrap_or(0) {
            let instance = format!("{service}-{i}");
            let http_addr = match service {
                EDGE_API => edge_addr,
                _ => SocketAddr::from((
                    [127, 0, 0, 1],
                    free_port().context("cannot find a free port")?,
                )),
            };
            let mut env = vec![
                ("NATS_URL".to_owned(), broker.url.clone()),
                ("BAZAAR_DATA_DIR".to_owned(), data_dir.display().to_string()),
                ("BAZAAR_HTTP_ADDR".to_owned(), http_addr.to_string()),
                (
                    "BAZAAR_LOG_FORMAT".to_owned(),
                    args.log_format.as_str().to_owned(),
                ),
                ("BAZAAR_INSTANCE".to_owned(), instance.clone()),
                (
                    platform::shutdown::SUPERVISOR_PID_ENV.to_owned(),
                    std::process::id().to_string(),
                ),
            ];
            if let Some((user, password)) = broker.credentials.of(service) {
                env.push(("NATS_USER".to_owned(), user));
                env.push(("NATS_PASSWORD".to_owned(), password));
            }
            if let Some(url) = databases.url_of(service) {
                env.push(("DATABASE_URL".to_owned(), url.to_owned()));
            }
            if service == EDGE_API {
                env.push(("BAZAAR_JWT_SECRET".to_owned(), secrets.jwt_secret.clone()));
                // The edge gathers search answers until all K shards replied.
                env.push(("BAZAAR_SEARCH_SHARDS".to_owned(), args.shards.to_string()));
            }
            let shard_args = match service {
                PRODUCT_SVC if args.shards > 1 => vec![
                    "--shard".to_owned(),
                    format!("{}/{}", i % args.shards, args.shards),
                ],
                _ => Vec::new(),
            };
            specs.push(ChildSpec {
                log: data_dir.join("logs").join(format!("{instance}.log")),
                health_url: format!("http://{http_addr}"),
                bin: bin_dir.join(service),
                args: shard_args,
                cpu: cpus.assign(service),
                instance,
                env,
            });
        }
    }
    Ok(specs)
}

/// Makes the data dir (and its parents); true if this call made the dir
/// itself (`create_dir` is atomic: of two `up`s racing for a new dir, one
/// makes it), false if it was there (a dir, or a symlink to one).
fn make_data_dir(data_dir: &Path) -> std::io::Result<bool> {
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Only its owner may read a new data dir: its databases and logs hold
    // customers' names and addresses. A dir that exists keeps the mode its
    // operator gave it.
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(data_dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && data_dir.is_dir() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Says so when a data dir that was there lets others in: new files in
/// it are the owner's alone (the umask), but the dir, and files an earlier
/// run made, keep their modes.
fn warn_if_others_may_read(data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        errln!(
            "warning: others may open {} (mode {mode:o}), and its databases and logs hold \
             customers' names and addresses: chmod -R go= {}",
            data_dir.display(),
            data_dir.display()
        );
    }
}

/// A data dir this `up` made, once it holds the dir's lock: removed when
/// dropped before [`MadeDataDir::keep`], so a start refused before its
/// broker starts (databases taken, the edge's port in use, a bad secrets
/// file) leaves nothing behind, not even its lock file. Its parents stay.
struct MadeDataDir(Option<PathBuf>);

impl MadeDataDir {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for MadeDataDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_is_one_to_sixteen_instances_of_a_known_service() {
        assert_eq!(
            parse_scale("checkout-svc=2"),
            Ok(("checkout-svc".to_owned(), 2))
        );
        for bad in [
            "checkout-svc=0",
            "checkout-svc=17",
            "checkout-svc=x",
            "nobody=1",
            "checkout-svc",
        ] {
            assert!(parse_scale(bad).is_err(), "{bad} is refused");
        }
    }
}
