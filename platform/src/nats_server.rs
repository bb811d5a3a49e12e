//! Locating and running a local `nats-server` for `bazaar up` and the tests.
//!
//! Bazaar needs nats-server 2.10 or newer (older servers silently ignore
//! `filter_subjects`, see NATS-NOTES.md), so [`locate`] checks the version of
//! every candidate instead of trusting the first binary on `PATH`.
//! [`NatsServer`] runs one single-node broker bound to 127.0.0.1 on a free
//! port, with JetStream, a store directory and a log file; it can be killed
//! and restarted on the same port and store, and it is killed when dropped.

mod locate;

pub use locate::{locate, version_of, Candidate, LocateError, Version, MIN_VERSION};

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The single-node broker config (`nats/server.conf`); it includes `users.conf`.
pub const SERVER_CONF: &str = include_str!("../../nats/server.conf");
/// Users and permissions (`nats/users.conf`); passwords come from [`password_env_var`].
pub const USERS_CONF: &str = include_str!("../../nats/users.conf");
/// Every user `users.conf` defines: one per service, plus `ops` for operators.
pub const USERS: [&str; 6] = [
    "product-svc",
    "checkout-svc",
    "warehouse-svc",
    "finance-svc",
    "edge-api",
    "ops",
];

/// The environment variable `users.conf` reads `user`'s password from,
/// e.g. `BAZAAR_NATS_PASSWORD_PRODUCT_SVC` for `product-svc`.
pub fn password_env_var(user: &str) -> String {
    format!(
        "BAZAAR_NATS_PASSWORD_{}",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

/// A fresh random password that nats-server's config parser reads as a
/// string: a letter prefix, so it never parses as a number or a boolean.
pub fn random_password() -> String {
    let bytes: [u8; 24] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("pw{hex}")
}

/// `GOMAXPROCS` for a broker that shares one machine with the shop's
/// services (`bazaar up`'s, and the benchmark's ceiling, so that both run
/// the same settings): `GOMAXPROCS` of this process if it is set, else 1.
/// With one Go processor the broker does not wake a second thread to spin
/// for work whenever a message arrives: on two cores it then spends a
/// quarter to a third less CPU per order and leaves it to the services
/// (bench/README.md, "One Go processor for the broker").
pub fn one_machine_go_procs() -> OsString {
    std::env::var_os("GOMAXPROCS").unwrap_or_else(|| "1".into())
}

/// Writes `server.conf` and `users.conf` into `dir` and returns the path of
/// `server.conf`, ready for [`NatsServerBuilder::config_file`].
pub fn write_config(dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join("users.conf"), USERS_CONF)?;
    let server_conf = dir.join("server.conf");
    fs::write(&server_conf, SERVER_CONF)?;
    Ok(server_conf)
}

/// What went wrong starting or stopping a [`NatsServer`].
#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error("{what}")]
    Io { what: String, source: io::Error },
    #[error("nats-server exited during start-up ({status}); its log ends with:\n{log_tail}")]
    Exited { status: String, log_tail: String },
    #[error("nats-server did not accept clients on port {port} within {timeout:?}; its log ends with:\n{log_tail}")]
    NotReady {
        port: u16,
        timeout: Duration,
        log_tail: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> NatsServerError {
    let what = what.into();
    move |source| NatsServerError::Io { what, source }
}

/// How to start a [`NatsServer`]; see [`NatsServer::builder`].
#[derive(Debug, Clone)]
pub struct NatsServerBuilder {
    bin: Option<PathBuf>,
    dir: PathBuf,
    config: Option<PathBuf>,
    port: Option<u16>,
    name: Option<String>,
    env: Vec<(OsString, OsString)>,
    start_timeout: Duration,
    own_process_group: bool,
    stdin: Option<Arc<File>>,
}

impl NatsServerBuilder {
    /// Use this binary instead of [`locate`]-ing one.
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = Some(bin.into());
        self
    }
    /// Start with `-c <file>`; without one the server runs without auth.
    pub fn config_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.config = Some(file.into());
        self
    }
    /// Listen on this port instead of a free one picked at start.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// The server name (`-n`); by default unique per process and builder.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// An environment variable for the server process (e.g. a password).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// How long to wait for the server to accept clients (default 20 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Run the server in a process group of its own, so a Ctrl-C in the
    /// terminal reaches only the launcher, which then stops the services
    /// before the broker. Off by default: a test's broker should die with
    /// the test run when it is interrupted.
    pub fn own_process_group(mut self, own: bool) -> Self {
        self.own_process_group = own;
        self
    }

    /// Give the server this file as its standard input (it reads none):
    /// a lock on the file is then held as long as the server runs
    /// (`bazaar up`'s data dir lock).
    pub fn stdin(mut self, file: File) -> Self {
        self.stdin = Some(Arc::new(file));
        self
    }

    /// Starts the server and waits until it accepts clients. Without an
    /// explicit port it retries on a new free port when another process
    /// grabbed the chosen one first.
    pub fn start(self) -> Result<NatsServer, NatsServerError> {
        let bin = match self.bin {
            Some(bin) => bin,
            None => locate()?,
        };
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let name = self.name.unwrap_or_else(|| {
            format!(
                "bazaar-{}-{}",
                std::process::id(),
                STARTED.fetch_add(1, Ordering::Relaxed)
            )
        });
        fs::create_dir_all(&self.dir)
            .map_err(io_err(format!("cannot create {}", self.dir.display())))?;
        let mut server = NatsServer {
            bin,
            dir: self.dir,
            config: self.config,
            name,
            env: self.env,
            start_timeout: self.start_timeout,
            own_process_group: self.own_process_group,
            stdin: self.stdin,
            port: 0,
            child: None,
        };
        // A port picked free can be taken by someone else before the server
        // binds it; a few fresh picks make that race harmless.
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            server.port = match self.port {
                Some(port) => port,
                None => free_port().map_err(io_err("cannot find a free port"))?,
            };
            match server.spawn_and_wait() {
                Err(NatsServerError::Exited { log_tail, .. })
                    if self.port.is_none()
                        && attempt < ATTEMPTS
                        && log_tail.contains("address already in use") =>
                {
                    attempt += 1
                }
                other => return other.map(|()| server),
            }
        }
    }
}

/// A running nats-server child process (single node, JetStream on,
/// 127.0.0.1 only). Dropping it kills the process; the directory stays.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    dir: PathBuf,
    config: Option<PathBuf>,
    name: String,
    env: Vec<(OsString, OsString)>,
    start_timeout: Duration,
    own_process_group: bool,
    stdin: Option<Arc<File>>,
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// A server whose JetStream store is `<dir>/jetstream` and whose output
    /// goes to `<dir>/nats-server.log`.
    pub fn builder(dir: impl Into<PathBuf>) -> NatsServerBuilder {
        NatsServerBuilder {
            bin: None,
            dir: dir.into(),
            config: None,
            port: None,
            name: None,
            env: Vec::new(),
            start_timeout: Duration::from_secs(20),
            own_process_group: false,
            stdin: None,
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn bin(&self) -> &Path {
        &self.bin
    }
    /// Where JetStream keeps its files (`<dir>/jetstream`).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("jetstream")
    }
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }
    /// Whether the process is still alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) -> Result<(), NatsServerError> {
        if let Some(mut child) = self.child.take() {
            // An error means it already exited; wait reaps it either way.
            let _ = child.kill();
            child
                .wait()
                .map_err(io_err("cannot wait for nats-server"))?;
        }
        Ok(())
    }

    /// Asks the process to shut down (SIGTERM) and waits up to 10 s for it,
    /// then kills it.
    pub fn stop(&mut self) -> Result<(), NatsServerError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        // nats-server can signal a pid itself; this keeps the crate free of
        // a signal library and unsafe code.
        let signalled = Command::new(&self.bin)
            .args(["--signal", &format!("term={}", child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while signalled && Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) => {
                    self.child = None;
                    return Ok(());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        self.kill()
    }

    /// Kills the process if it runs and starts it again on the same port,
    /// store and config, waiting until it accepts clients.
    pub fn restart(&mut self) -> Result<(), NatsServerError> {
        self.kill()?;
        self.spawn_and_wait()
    }

    fn spawn_and_wait(&mut self) -> Result<(), NatsServerError> {
        let log_path = self.log_file();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("cannot open {}", log_path.display())))?;
        let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let _ = writeln!(
            log,
            "--- bazaar: starting {} on port {} ---",
            self.bin.display(),
            self.port
        );
        let stderr = log
            .try_clone()
            .map_err(io_err("cannot duplicate the log file handle"))?;
        let stdin = match &self.stdin {
            Some(file) => Stdio::from(
                file.try_clone()
                    .map_err(io_err("cannot duplicate the standard input file"))?,
            ),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&self.bin);
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        if self.own_process_group {
            cmd.process_group(0);
        }
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-n",
            &self.name,
            "-js",
            "-sd",
        ])
        .arg(&self.dir)
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(log)
        .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(io_err(format!("cannot start {}", self.bin.display())))?;
        self.child = Some(child);
        let result = self.wait_until_ready(&log_path, log_start);
        if result.is_err() {
            let _ = self.kill();
        }
        result
    }

    fn wait_until_ready(&mut self, log_path: &Path, log_start: u64) -> Result<(), NatsServerError> {
        let deadline = Instant::now() + self.start_timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log_tail = tail(log_path, log_start);
                    return Err(NatsServerError::Exited {
                        status: status.to_string(),
                        log_tail,
                    });
                }
            }
            if greets_as(self.port, &self.name) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log_tail = tail(log_path, log_start);
        Err(NatsServerError::NotReady {
            port: self.port,
            timeout: self.start_timeout,
            log_tail,
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Whether a server named `name` answers on `port` with its INFO line. The
/// name check matters: while our server fails to bind a port that another
/// process took first, that other process must not count as ready.
fn greets_as(port: u16, name: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    if BufReader::new(stream)
        .take(64 * 1024)
        .read_line(&mut line)
        .is_err()
    {
        return false;
    }
    line.starts_with("INFO ") && line.contains(&format!("\"server_name\":\"{name}\""))
}

/// Ports [`free_port`] remembers having handed out, at most.
const HANDED_OUT: usize = 4096;

/// A port that was free a moment ago (bind 127.0.0.1:0, then release) and
/// that this process has not handed out among its last [`HANDED_OUT`]: the
/// kernel may give a port it just released to the next bind, and two
/// processes started with the same port (two services of one test shop,
/// say) would collide.
pub fn free_port() -> io::Result<u16> {
    static GIVEN: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    for _ in 0..64 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
        if given.contains(&port) {
            continue;
        }
        if given.len() >= HANDED_OUT {
            given.pop_front();
        }
        given.push_back(port);
        return Ok(port);
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "the kernel kept offering ports this process had handed out already",
    ))
}

/// The last lines the server wrote since `from` in its log.
fn tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.take(1 << 20).read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_handed_out_by_one_process_are_all_different() {
        // 500 draws from the kernel's ephemeral range would repeat a port
        // more often than not; the kernel also reoffers a port just freed.
        let ports: Vec<u16> = (0..500)
            .map(|_| free_port().expect("a free port"))
            .collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    }

    #[test]
    fn password_env_var_is_upper_snake_case() {
        assert_eq!(
            password_env_var("product-svc"),
            "BAZAAR_NATS_PASSWORD_PRODUCT_SVC"
        );
        assert_eq!(password_env_var("ops"), "BAZAAR_NATS_PASSWORD_OPS");
    }

    #[test]
    fn random_passwords_start_with_a_letter_and_differ() {
        let (a, b) = (random_password(), random_password());
        assert!(
            a.starts_with("pw") && a.len() == 50 && a.chars().all(|c| c.is_ascii_alphanumeric())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn every_user_in_the_config_reads_its_password_from_the_environment() {
        for user in USERS {
            assert!(
                USERS_CONF.contains(&format!("user: \"{user}\"")),
                "{user} missing"
            );
            assert!(
                USERS_CONF.contains(&format!("password: ${}", password_env_var(user))),
                "{user} password"
            );
        }
    }
}
