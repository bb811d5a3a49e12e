//! The service processes `bazaar up` runs: each one supervised by a task
//! that restarts it with back-off when it dies and stops it on shutdown.
//!
//! The environment each child gets is the contract every service reads
//! (the test kit's `Shop` gives the same): `NATS_URL`, `NATS_USER`,
//! `NATS_PASSWORD`, `BAZAAR_DATA_DIR`, `BAZAAR_HTTP_ADDR` (its health and
//! metrics address; the public one for the edge), `BAZAAR_LOG_FORMAT`,
//! `BAZAAR_INSTANCE`, and for the edge `BAZAAR_JWT_SECRET`; and
//! `BAZAAR_SUPERVISOR_PID`, so that a service stops when `bazaar up` is
//! gone (`platform::shutdown`).

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::lock::DataDirLock;
use super::state::UpState;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long counts as healthy: its next crash restarts
/// it after the first back-off again.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a child may take to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One instance to run.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub instance: String,
    pub bin: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub health_url: String,
    pub log: PathBuf,
    /// The CPU it is kept to (`affinity.rs`), if any.
    pub cpu: Option<usize>,
}

/// The directory holding the service binaries: the one `bazaar` is in.
pub fn binaries_dir(services: &[&str]) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the bazaar executable")?;
    let dir = exe
        .parent()
        .context("the bazaar executable has no directory")?
        .to_path_buf();
    let missing: Vec<&str> = services
        .iter()
        .copied()
        .filter(|s| !dir.join(s).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} not found next to bazaar in {}; build them with `cargo build --release --workspace` \
             (or `./dev up`)",
            missing.join(", "),
            dir.display()
        );
    }
    Ok(dir)
}

/// The running children and the means to stop them.
pub struct Supervisor {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Supervisor {
    pub fn start(specs: Vec<ChildSpec>, state: Arc<UpState>, lock: Arc<DataDirLock>) -> Supervisor {
        let (shutdown, stop) = watch::channel(false);
        let tasks = specs
            .into_iter()
            .map(|spec| tokio::spawn(supervise(spec, state.clone(), lock.clone(), stop.clone())))
            .collect();
        Supervisor { shutdown, tasks }
    }

    /// SIGTERM to every child at once, SIGKILL to those still running
    /// after the grace period; returns when all are gone.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                warn!(error = %e, "a supervisor task failed");
            }
        }
    }
}

/// How long a restarted child may take to be ready before nothing is said.
const READY_AGAIN_WITHIN: Duration = Duration::from_secs(120);

async fn supervise(
    spec: ChildSpec,
    state: Arc<UpState>,
    lock: Arc<DataDirLock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut restarted = false;
    // Runs until shutdown: every pass either ends on the stop signal or
    // waits out a back-off first.
    while !*stop.borrow() {
        let started = Instant::now();
        match spawn(&spec, &lock) {
            Ok(mut child) => {
                let pid = child.id();
                state.set_pid(&spec.instance, pid);
                info!(instance = %spec.instance, pid, cpu = spec.cpu, "started");
                // After a restart, say when it is ready again (the first
                // start is told by `bazaar up`'s own wait).
                let watch_ready = restarted;
                let health_url = spec.health_url.as_str();
                let ready_again = async move {
                    if !watch_ready
                        || !super::ready::ready_within(health_url, READY_AGAIN_WITHIN).await
                    {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::pin!(ready_again);
                let mut announced = false;
                loop {
                    tokio::select! {
                        status = child.wait() => {
                            state.set_pid(&spec.instance, None);
                            let status = status.map_or_else(|e| e.to_string(), describe);
                            // Its last words: why it stopped, without opening the log.
                            let last: String =
                                log_tail(&spec.log, 1).chars().take(300).collect();
                            warn!(instance = %spec.instance, %status, log = %spec.log.display(), %last, "exited");
                            break;
                        }
                        _ = stop.changed() => {
                            terminate(&spec.instance, &mut child).await;
                            return;
                        }
                        () = &mut ready_again, if !announced => {
                            info!(instance = %spec.instance, pid, "ready again");
                            announced = true;
                        }
                    }
                }
                restarted = true;
            }
            Err(e) => warn!(instance = %spec.instance, error = format!("{e:#}"), "cannot start"),
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = FIRST_BACKOFF;
        }
        info!(instance = %spec.instance, in_ms = backoff.as_millis() as u64, "restarting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn spawn(spec: &ChildSpec, lock: &DataDirLock) -> anyhow::Result<Child> {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .with_context(|| format!("cannot open {}", spec.log.display()))?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let _ = writeln!(
        log,
        "--- bazaar up: starting {} at {now} ---",
        spec.instance
    );
    let stderr = log
        .try_clone()
        .context("cannot duplicate the log file handle")?;
    let mut cmd = Command::new(&spec.bin);
    // Settings of the shell `bazaar up` runs in must not override the
    // contract: each service has its own database and NATS user.
    for (key, _) in std::env::vars() {
        if key.starts_with("NATS_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        // The data dir's lock, held while the child runs (lock.rs).
        .stdin(lock.stdin()?)
        .stdout(log)
        .stderr(stderr)
        // Ctrl-C in the terminal reaches only `bazaar up`, which then stops
        // the children in order; and a child never outlives its handle.
        .process_group(0)
        .kill_on_drop(true);
    super::affinity::spawning_on(spec.cpu, || cmd.spawn())
        .with_context(|| format!("cannot start {}", spec.bin.display()))
}

async fn terminate(instance: &str, child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => info!(%instance, "stopped"),
        Err(_) => {
            warn!(
                instance,
                "still running {STOP_GRACE:?} after SIGTERM; killing it"
            );
            let _ = child.kill().await;
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// The last `lines` lines of a log file (read from its last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut bytes = Vec::new();
        let _ = file.take(64 * 1024).read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
