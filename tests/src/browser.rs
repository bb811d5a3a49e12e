//! A headless Chromium for tests that use the storefront as a person
//! would: [`ChromeDriver`] runs Debian's `chromedriver` on a free port, in
//! a process group of its own, and kills the group (chromedriver and every
//! Chromium it started) when it drops. The WebDriver client is the test's
//! own choice; [`ChromeDriver::capabilities`] gives it the session to ask
//! for, with a fresh profile and no traffic beyond this machine.
//!
//! Chromium and chromedriver are system packages, not crates. Where they
//! are missing, [`ChromeDriver::start`] fails the test when `CI=true`
//! (CI must run it; `.ci/run` installs them) and otherwise prints a notice
//! and returns `None`, so a developer without them can still run the rest.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use platform::nats_server::free_port;
use serde_json::{json, Map, Value};
use tempfile::TempDir;

/// How a person installs what the browser tests need (Debian, as root).
pub const INSTALL_HINT: &str =
    "apt-get update && apt-get install -y chromium chromium-driver (as .ci/run does)";

/// The screen a browser session shows pages on, in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// A desktop window of this size.
    Desktop { width: u32, height: u32 },
    /// A phone of this size: a mobile, touch viewport.
    Phone { width: u32, height: u32 },
}

/// A running chromedriver; see the module documentation.
#[derive(Debug)]
pub struct ChromeDriver {
    child: Child,
    port: u16,
    chromium: PathBuf,
    /// Chromium profiles (one per session) and chromedriver's log.
    dir: TempDir,
}

impl ChromeDriver {
    /// Starts chromedriver and waits until it is ready for sessions.
    ///
    /// Returns `None` after printing a notice when chromedriver or Chromium
    /// is not installed and `CI` is not `true`; panics with how to install
    /// them when it is.
    pub async fn start() -> Option<ChromeDriver> {
        let (driver, chromium) = match (locate_chromedriver(), locate_chromium()) {
            (Some(driver), Some(chromium)) => (driver, chromium),
            (driver, chromium) => {
                let missing: Vec<&str> = [
                    driver.is_none().then_some("chromedriver"),
                    chromium.is_none().then_some("chromium"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let missing = match missing.len() {
                    1 => format!("{} is", missing[0]),
                    _ => format!("{} are", missing.join(" and ")),
                };
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "CI=true but {missing} not installed (nor on PATH, nor named by \
                         CHROMEDRIVER / CHROME_BIN), so the storefront cannot be tested in a \
                         browser; install them: {INSTALL_HINT}"
                    );
                }
                notice(&format!(
                    "SKIPPED: {missing} not installed, so this browser test did not run; \
                     install them with `{INSTALL_HINT}`"
                ));
                return None;
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("bazaar-chrome-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for Chromium: {e}"));
        // Another process may take the free port before chromedriver binds
        // it; then chromedriver exits and we try another one.
        let mut last_failure = String::new();
        for _ in 0..3 {
            let port = free_port().unwrap_or_else(|e| panic!("cannot find a free port: {e}"));
            let mut child = spawn(&driver, port, dir.path());
            match wait_ready(&mut child, port, dir.path(), Duration::from_secs(20)).await {
                Ok(()) => {
                    return Some(ChromeDriver {
                        child,
                        port,
                        chromium,
                        dir,
                    })
                }
                Err(failure) => {
                    last_failure = failure;
                    stop_group(&mut child);
                }
            }
        }
        panic!(
            "chromedriver ({}) did not start: {last_failure}",
            driver.display()
        );
    }

    /// The WebDriver endpoint, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The capabilities of a new session on `screen`: headless Chromium,
    /// US English (so prices read `€89.99`), and a fresh profile. The
    /// flags that stop background networking matter: this machine refuses
    /// connections beyond itself, and Chromium's update, sync and QUIC
    /// probes would otherwise stall it.
    pub fn capabilities(&self, screen: Screen) -> Map<String, Value> {
        let profile = self
            .dir
            .path()
            .join(format!("profile-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&profile)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", profile.display()));
        let (width, height) = match screen {
            Screen::Desktop { width, height } | Screen::Phone { width, height } => (width, height),
        };
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({
            "binary": self.chromium,
            "args": args,
            "prefs": { "intl.accept_languages": "en-US" },
        });
        if let Screen::Phone { width, height } = screen {
            // A headless window is at least 500 pixels wide; a phone's
            // narrower viewport (with touch and the viewport meta tag
            // honoured) needs Chrome's device emulation.
            options["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": width,
                    "height": height,
                    "pixelRatio": 3.0,
                    "mobile": true,
                    "touch": true,
                },
            });
        }
        let mut capabilities = Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        capabilities
    }

    /// The end of chromedriver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// Waits until chromedriver on `port` says it is ready for sessions.
async fn wait_ready(
    child: &mut Child,
    port: u16,
    dir: &Path,
    within: Duration,
) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "it exited ({status}); its log ends with:\n{}",
                log_tail(dir)
            ));
        }
        let answer = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await;
        if let Ok(answer) = answer {
            let status: Value = answer.json().await.unwrap_or_default();
            if status["value"]["ready"] == Value::Bool(true) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "GET /status did not say ready within {within:?}; its log ends with:\n{}",
                log_tail(dir)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops chromedriver and every browser it started: SIGTERM to its process
/// group, a short grace, then SIGKILL to whatever is left of the group.
fn stop_group(child: &mut Child) {
    let Ok(pid) = i32::try_from(child.id()) else {
        return;
    };
    let group = Pid::from_raw(pid);
    if child.try_wait().is_ok_and(|s| s.is_none()) {
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while child.try_wait().is_ok_and(|s| s.is_none()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Chromium's helpers may outlive chromedriver; they are in its group.
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

/// The last lines chromedriver printed and logged.
fn log_tail(dir: &Path) -> String {
    ["chromedriver.out", "chromedriver.log"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        })
        .filter(|tail| !tail.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `target/test-artefacts/<name>` (the directory is created), for
/// screenshots and other files a person may want to look at after a run.
pub fn artefact_path(name: &str) -> PathBuf {
    let dir = target_dir().join("test-artefacts");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir.join(name)
}

/// Prints a line that shows in the test output even when the test passes
/// (the harness captures `println!`, not direct writes to stderr).
pub fn notice(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else the one the test
/// executable is in (`target/<profile>/deps/<test>-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    match exe.ancestors().nth(3) {
        Some(dir) if exe.parent().is_some_and(|p| p.ends_with("deps")) => dir.to_path_buf(),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// Starts chromedriver on `port`: its log goes to `chromedriver.log` and
/// what it prints (such as a port it cannot bind) to `chromedriver.out`.
fn spawn(driver: &Path, port: u16, dir: &Path) -> Child {
    let out = dir.join("chromedriver.out");
    let stdout =
        File::create(&out).unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let stderr = stdout
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot duplicate a file handle: {e}"));
    Command::new(driver)
        .arg(format!("--port={port}"))
        .arg(format!(
            "--log-path={}",
            dir.join("chromedriver.log").display()
        ))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // A group of its own, so that dropping the driver also ends the
        // browsers it started, and only those.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()))
}

fn locate_chromedriver() -> Option<PathBuf> {
    from_env("CHROMEDRIVER").or_else(|| on_path(&["chromedriver"]))
}

fn locate_chromium() -> Option<PathBuf> {
    from_env("CHROME_BIN").or_else(|| {
        on_path(&[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ])
    })
}

fn from_env(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
