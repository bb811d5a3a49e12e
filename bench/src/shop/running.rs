//! The whole shop as `bazaar up` runs it, from the release binaries next to
//! this executable, and the `bazaar` subcommands the benchmark drives it
//! with. Dropping [`RunningShop`] stops it: SIGTERM to `bazaar up` (which
//! stops the services, then the broker), and SIGKILL to whatever is left.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

/// Every binary `bazaar up` runs, and `bazaar` itself.
pub const BINARIES: [&str; 6] = [
    "bazaar",
    "product-svc",
    "checkout-svc",
    "warehouse-svc",
    "finance-svc",
    "edge-api",
];

/// The part of `<data-dir>/up.json` the benchmark reads.
#[derive(Debug, Clone, Deserialize)]
pub struct UpFile {
    pub http_url: String,
    pub nats_url: String,
    pub nats_user: String,
    pub nats_password: String,
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    pub instance: String,
    pub pid: Option<u32>,
}

pub struct RunningShop {
    pub data_dir: PathBuf,
    pub bin_dir: PathBuf,
    pub up: UpFile,
    child: Child,
}

/// The directory of the release binaries: the one this executable is in.
/// Run by `cargo run --release -p bench`, it first builds them there
/// (`cargo build --release --workspace --bins`, quick when nothing
/// changed), so that the shop measured is the code checked out, not an
/// older build; run directly, it uses what is there.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the bench executable")?;
    let dir = exe
        .parent()
        .context("the bench executable has no directory")?
        .to_path_buf();
    if let (Some(cargo), Some(package)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) {
        build_with(&cargo, Path::new(&package), &dir)?;
    }
    let missing: Vec<&str> = BINARIES
        .into_iter()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} not found in {}; run `cargo build --release --workspace --bins` first",
            missing.join(", "),
            dir.display()
        );
    }
    Ok(dir)
}

/// Builds the shop's binaries into `dir` with the cargo that started this
/// benchmark; refuses a debug build, whose figures would say nothing.
fn build_with(cargo: &std::ffi::OsStr, package: &Path, dir: &Path) -> anyhow::Result<()> {
    if dir.file_name().and_then(|name| name.to_str()) != Some("release") {
        bail!(
            "this is a debug build of bench, and a benchmark of debug binaries says nothing; \
             run `cargo run --release -p bench -- …`"
        );
    }
    eprintln!("building the shop's release binaries: cargo build --release --workspace --bins");
    let status = Command::new(cargo)
        .args(["build", "--release", "--workspace", "--bins"])
        .current_dir(package)
        .stdout(Stdio::null())
        .status()
        .context("cannot run cargo to build the shop's binaries")?;
    if !status.success() {
        bail!("cargo build --release --workspace --bins failed ({status}); see its output above");
    }
    Ok(())
}

impl RunningShop {
    /// Starts `bazaar up` on a free port and waits until it says the shop is up.
    pub fn start(bin_dir: &Path, data_dir: &Path) -> anyhow::Result<RunningShop> {
        std::fs::create_dir_all(data_dir).context("creating the data dir")?;
        let log = data_dir.join("bazaar-up.log");
        let out = File::create(&log).context("creating the up log")?;
        let err = out.try_clone().context("duplicating the log handle")?;
        let child = Command::new(bin_dir.join("bazaar"))
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-addr", "127.0.0.1:0", "--log-format", "text"])
            .env("RUST_LOG", "warn")
            // The edge's per-customer limit (50/s by default) would measure
            // itself in the read benchmark; the children inherit this.
            .env("BAZAAR_RATE_LIMIT_PER_S", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting bazaar up")?;
        let mut shop = RunningShop {
            data_dir: data_dir.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            up: UpFile {
                http_url: String::new(),
                nats_url: String::new(),
                nats_user: String::new(),
                nats_password: String::new(),
                services: Vec::new(),
            },
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = shop.child.try_wait() {
                bail!(
                    "bazaar up exited ({status}) during start-up; see {}",
                    log.display()
                );
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Bazaar is up.") {
                break;
            }
            if Instant::now() > deadline {
                bail!("the shop was not up within 120 s; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = std::fs::read_to_string(data_dir.join("up.json")).context("reading up.json")?;
        shop.up = serde_json::from_str(&text).context("parsing up.json")?;
        Ok(shop)
    }

    /// Runs `bazaar <args> --data-dir <dir>` to completion (bounded) and
    /// returns its standard output.
    pub async fn bazaar(&self, args: &[&str], timeout: Duration) -> anyhow::Result<String> {
        let mut command = tokio::process::Command::new(self.bin_dir.join("bazaar"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .with_context(|| format!("bazaar {} took longer than {timeout:?}", args.join(" ")))?
            .with_context(|| format!("running bazaar {}", args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            bail!(
                "bazaar {} failed ({}): {}",
                args.join(" "),
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            );
        }
        Ok(stdout)
    }

    /// Peak resident set (VmHWM) in MiB of every service instance (the
    /// pids in the current `up.json`) and of the broker `bazaar up` started.
    pub fn peak_rss_mib(&self) -> Vec<(String, f64)> {
        let current = std::fs::read_to_string(self.data_dir.join("up.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<UpFile>(&text).ok())
            .unwrap_or_else(|| self.up.clone());
        let mut processes: Vec<(String, u32)> = current
            .services
            .iter()
            .filter_map(|s| Some((s.instance.clone(), s.pid?)))
            .collect();
        processes.extend(
            children_of(self.child.id())
                .into_iter()
                .filter(|(name, _)| name == "nats-server"),
        );
        processes
            .into_iter()
            .filter_map(|(name, pid)| Some((name, vm_hwm_kib(pid)? / 1024.0)))
            .collect()
    }
}

impl RunningShop {
    /// CPU seconds (user + system) each process of the shop has used so far.
    pub fn cpu_seconds(&self) -> BTreeMap<String, f64> {
        let mut processes = children_of(self.child.id());
        processes.push(("bazaar-up".to_owned(), self.child.id()));
        processes
            .into_iter()
            .filter_map(|(name, pid)| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // Fields after the parenthesised name: state is the 3rd field,
                // utime and stime the 14th and 15th.
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let ticks: f64 =
                    fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
                // USER_HZ is 100 on Linux.
                Some((name, ticks / 100.0))
            })
            .collect()
    }
}

fn vm_hwm_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The direct children of `pid` with their names, from `/proc`.
fn children_of(pid: u32) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in text
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let name = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            found.push((name.trim().to_owned(), child));
        }
    }
    found.sort();
    found
}

fn signal(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        // An error means the process is gone already.
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

impl Drop for RunningShop {
    fn drop(&mut self) {
        let children = children_of(self.child.id());
        signal(self.child.id(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench: bazaar up did not stop within 30 s; killing the shop");
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (_, pid) in &children {
            signal(*pid, Signal::SIGKILL);
        }
    }
}
