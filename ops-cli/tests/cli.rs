//! The `bazaar` binary as a user runs it. `up` is tested against stand-in
//! services (the test kit's fakes) next to a copy of the binary, so these
//! tests check the launcher, not the services.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use bazaar_testkit::{fake_started_with, wait_for, wait_until, write_fake_services};
use contracts::auth::{Claims, Role};
use jsonwebtoken::{decode, DecodingKey, Validation};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

const BAZAAR: &str = env!("CARGO_BIN_EXE_bazaar");

fn bazaar(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for key in [
        "BAZAAR_DATA_DIR",
        "BAZAAR_LOG_FORMAT",
        "NATS_USER",
        "NATS_PASSWORD",
    ] {
        cmd.env_remove(key);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(bin: &Path, args: &[&str]) -> Output {
    retry_busy(|| bazaar(bin).args(args).output()).expect("bazaar runs")
}

/// Starts a process again while its binary is "busy" (ETXTBSY): another
/// test copying its own `bazaar` forked a child that holds the copy open
/// for writing until it execs, and a copy made at that moment cannot run.
fn retry_busy<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    const ETXTBSY: i32 = 26;
    for _ in 0..50 {
        match start() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other,
        }
    }
    start()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A copy of `bazaar` in a directory of its own, with fake services (or
/// none) beside it, and a data dir.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new(with_services: bool) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("bin")).expect("bin dir");
        fs::copy(BAZAAR, dir.path().join("bin/bazaar")).expect("bazaar copied");
        if with_services {
            write_fake_services(&dir.path().join("bin")).expect("fakes written");
        }
        Sandbox { dir }
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin/bazaar")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn data_arg(&self) -> String {
        self.data().display().to_string()
    }
    /// `bazaar up` on this data dir, run to its end (for one that is refused).
    fn up_once(&self) -> Output {
        self.up_once_with(&[])
    }
    /// `up` on this sandbox's data dir with `more` flags, run to its end
    /// (a refused start ends at once).
    fn up_once_with(&self, more: &[&str]) -> Output {
        let data = self.data_arg();
        let mut args = vec!["up", "--data-dir", &data, "--http-addr", "127.0.0.1:0"];
        args.extend_from_slice(more);
        run(&self.bin(), &args)
    }
    fn up_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&fs::read_to_string(self.data().join("up.json")).ok()?).ok()
    }
}

/// A running `bazaar up`; SIGKILLed on drop (with what it started) if a
/// test failed before stopping it.
struct Up {
    child: Child,
    sandbox: Sandbox,
}

impl Up {
    fn start(sandbox: Sandbox, extra: &[&str]) -> Up {
        let child = Up::spawn(&sandbox, extra);
        Up { child, sandbox }
    }

    /// Starts `bazaar up` again on the same sandbox (the last one exited).
    fn start_again(&mut self, extra: &[&str]) {
        self.child = Up::spawn(&self.sandbox, extra);
    }

    fn spawn(sandbox: &Sandbox, extra: &[&str]) -> Child {
        retry_busy(|| {
            let out = fs::File::create(sandbox.dir.path().join("up.out"))?;
            let err = fs::File::create(sandbox.dir.path().join("up.err"))?;
            bazaar(&sandbox.bin())
                .args([
                    "up",
                    "--data-dir",
                    &sandbox.data_arg(),
                    "--http-addr",
                    "127.0.0.1:0",
                    "--ready-timeout",
                    "30s",
                ])
                .args(extra)
                .stdout(out)
                .stderr(err)
                .spawn()
        })
        .expect("bazaar up starts")
    }

    fn output(&self) -> String {
        let read =
            |name: &str| fs::read_to_string(self.sandbox.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("up.out"), read("up.err"))
    }

    async fn wait_until_up(&self) {
        wait_until(
            Duration::from_secs(40),
            "bazaar up prints its banner",
            || async { self.output().contains("Bazaar is up") },
        )
        .await;
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal sent");
    }

    async fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        wait_for(Duration::from_secs(30), "bazaar up exits", || {
            let exited = self.child.try_wait().ok().flatten();
            async move { exited }
        })
        .await
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // What a killed `bazaar up` left running (up.json stays then).
        for pid in pids(&self.sandbox.up_json().unwrap_or_default()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The services' and the broker's pids in `up.json`.
fn pids(up: &serde_json::Value) -> Vec<i32> {
    let services = up["services"].as_array().cloned().unwrap_or_default();
    services
        .iter()
        .filter_map(|s| s["pid"].as_i64())
        .chain(up["nats_pid"].as_i64())
        .map(|p| p as i32)
        .collect()
}

/// True while the process runs (a zombie left for a parent that does not
/// reap it has stopped).
fn is_running(pid: i32) -> bool {
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    kill(Pid::from_raw(pid), None).is_ok() && !zombie
}

#[tokio::test]
async fn up_restarts_its_nats_server_when_it_dies() {
    let up = Up::start(Sandbox::new(true), &[]);
    up.wait_until_up().await;
    let state = up.sandbox.up_json().expect("up.json written");
    let old = state["nats_pid"]
        .as_i64()
        .expect("up.json names the broker") as i32;
    let url = state["nats_url"].as_str().unwrap_or_default().to_owned();
    let addr = url.trim_start_matches("nats://").to_owned();

    kill(Pid::from_raw(old), Signal::SIGKILL).expect("broker killed");

    wait_until(
        Duration::from_secs(30),
        "a new nats-server answers on the same address",
        || async {
            let new = up.sandbox.up_json().and_then(|s| s["nats_pid"].as_i64());
            let restarted = new.is_some_and(|p| p as i32 != old && is_running(p as i32));
            restarted && std::net::TcpStream::connect(&addr).is_ok()
        },
    )
    .await;
    assert!(
        up.output().contains("nats-server exited; restarting it"),
        "{}",
        up.output()
    );
    stop(up).await;
}

#[tokio::test]
async fn a_killed_ups_services_keep_the_data_dir_locked_and_the_next_up_stops_its_broker() {
    let mut first = Up::start(Sandbox::new(true), &[]);
    first.wait_until_up().await;
    let state = first.sandbox.up_json().expect("up.json written");
    let nats = state["nats_pid"].as_i64().expect("broker pid") as i32;

    // `bazaar up` dies; its broker (and these stand-in services, which do
    // not watch their parent as the real ones do) run on.
    first.signal(Signal::SIGKILL);
    first.wait_for_exit().await;
    let second = first.sandbox.up_once();

    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(
        err.contains("still in use by processes of an earlier `bazaar up`")
            && err.contains(&nats.to_string()),
        "{err}"
    );
    assert!(is_running(nats), "a refused up stops nothing");

    // Once only the broker is left (real services stop by themselves when
    // their `bazaar up` is gone), the next `up` stops it and starts afresh.
    let services: Vec<i32> = pids(&state).into_iter().filter(|p| *p != nats).collect();
    for pid in &services {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    wait_until(
        Duration::from_secs(10),
        "the stand-in services are gone",
        || {
            let gone = services.iter().all(|pid| !is_running(*pid));
            async move { gone }
        },
    )
    .await;
    first.start_again(&[]);
    first.wait_until_up().await;
    assert!(
        first
            .output()
            .contains("stopping the nats-server that a killed `bazaar up` left running"),
        "{}",
        first.output()
    );
    let new = first.sandbox.up_json().and_then(|s| s["nats_pid"].as_i64());
    assert!(
        new.is_some_and(|p| p as i32 != nats),
        "a new broker: {new:?}"
    );
    wait_until(
        Duration::from_secs(10),
        "the left broker has exited",
        || async { !is_running(nats) },
    )
    .await;
    stop(first).await;
}

fn pid_of(up: &serde_json::Value, instance: &str) -> Option<i64> {
    up["services"]
        .as_array()?
        .iter()
        .find(|s| s["instance"] == instance)?["pid"]
        .as_i64()
}

#[tokio::test]
async fn up_runs_every_service_restarts_a_killed_one_and_stops_everything_on_ctrl_c() {
    let mut up = Up::start(Sandbox::new(true), &["--shards", "2"]);
    up.wait_until_up().await;
    let data = up.sandbox.data();
    let state = up.sandbox.up_json().expect("up.json written");
    let instances: Vec<&str> = state["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["instance"].as_str())
        .collect();
    assert_eq!(
        instances,
        [
            "product-svc-0",
            "product-svc-1",
            "checkout-svc-0",
            "warehouse-svc-0",
            "finance-svc-0",
            "edge-api-0"
        ]
    );
    assert_eq!(state["nats_user"], "ops");
    // Its databases and logs hold customers' names and addresses.
    let mode = fs::metadata(&data).expect("the data dir").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700,
        "a new data dir is its owner's alone"
    );
    let secrets: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(data.join("secrets.json")).expect("secrets"))
            .expect("json");
    assert_eq!(state["nats_password"], secrets["nats_passwords"]["ops"]);

    let edge = fake_started_with(&data, "edge-api-0").expect("edge started");
    assert_eq!(edge["env"]["NATS_USER"], "edge-api");
    assert_eq!(
        edge["env"]["NATS_PASSWORD"],
        secrets["nats_passwords"]["edge-api"]
    );
    assert_eq!(edge["env"]["BAZAAR_JWT_SECRET"], secrets["jwt_secret"]);
    assert_eq!(
        format!(
            "http://{}",
            edge["env"]["BAZAAR_HTTP_ADDR"].as_str().unwrap_or_default()
        ),
        state["http_url"].as_str().unwrap_or_default()
    );
    let product = fake_started_with(&data, "product-svc-1").expect("product started");
    assert_eq!(product["args"], serde_json::json!(["--shard", "1/2"]));
    assert_eq!(product["env"]["BAZAAR_INSTANCE"], "product-svc-1");
    assert_eq!(
        product["env"]["BAZAAR_DATA_DIR"],
        data.canonicalize().expect("data dir").display().to_string()
    );

    // A customer token verifies with the secret the edge was given.
    let token = run(
        &up.sandbox.bin(),
        &[
            "token",
            "--customer",
            "alice",
            "--data-dir",
            &up.sandbox.data_arg(),
        ],
    );
    assert!(token.status.success(), "{}", stderr(&token));
    let secret = edge["env"]["BAZAAR_JWT_SECRET"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let claims = decode::<Claims>(
        String::from_utf8_lossy(&token.stdout).trim(),
        &DecodingKey::from_secret(&secret),
        &Validation::default(),
    )
    .expect("the edge's secret verifies the token")
    .claims;
    assert_eq!(
        (claims.sub.as_str(), claims.role),
        ("alice", Role::Customer)
    );

    // A second shop on the same data dir is refused.
    let second = up.sandbox.up_once();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("a shop is already running from this data dir"),
        "{}",
        stderr(&second)
    );

    // A killed child comes back.
    let old = pid_of(&state, "checkout-svc-0").expect("checkout pid");
    kill(Pid::from_raw(old as i32), Signal::SIGKILL).expect("killed");
    let health = state["services"][2]["health_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_until(
        Duration::from_secs(20),
        "checkout-svc-0 is restarted and ready",
        || async {
            let restarted = up
                .sandbox
                .up_json()
                .and_then(|s| pid_of(&s, "checkout-svc-0"))
                .is_some_and(|p| p != old);
            let ready = reqwest::get(format!("{health}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200);
            restarted && ready
        },
    )
    .await;
    // The log says it is back, not only that it was started.
    wait_until(
        Duration::from_secs(20),
        "bazaar up says checkout-svc-0 is ready again",
        || async {
            up.output()
                .lines()
                .any(|l| l.contains("ready again") && l.contains("checkout-svc-0"))
        },
    )
    .await;

    // Ctrl-C stops everything and removes up.json.
    let running = pids(&up.sandbox.up_json().expect("up.json"));
    up.signal(Signal::SIGINT);
    let status = up.wait_for_exit().await;

    assert!(status.success(), "{status}: {}", up.output());
    assert!(up.sandbox.up_json().is_none(), "up.json is removed");
    for pid in running {
        assert!(
            kill(Pid::from_raw(pid), None).is_err(),
            "pid {pid} still runs"
        );
    }
    assert!(
        up.output().contains("nats-server stopped"),
        "{}",
        up.output()
    );
}

#[test]
fn configuration_mistakes_exit_with_2_and_say_what_is_wrong() {
    let sandbox = Sandbox::new(true);
    let file = sandbox.dir.path().join("not-a-dir");
    fs::write(&file, "x").expect("file written");
    fs::create_dir_all(sandbox.data()).expect("data dir");
    fs::write(sandbox.data().join("secrets.json"), "{ not json").expect("secrets written");
    let data = sandbox.data_arg();
    let file = file.display().to_string();
    let marked = sandbox.dir.path().join("marked");
    fs::create_dir_all(&marked).expect("marked dir");
    fs::write(marked.join("database"), "garbage\n").expect("marker written");
    let marked = marked.display().to_string();
    let cases: [(&[&str], &str); 7] = [
        (
            &["up", "--data-dir", &marked, "--http-addr", "127.0.0.1:0"],
            "should name where the shop keeps its state",
        ),
        (
            &["up", "--data-dir", &file, "--http-addr", "127.0.0.1:0"],
            "cannot use",
        ),
        (
            &[
                "up",
                "--data-dir",
                &data,
                "--scale",
                "edge-api=2",
                "--http-addr",
                "127.0.0.1:0",
            ],
            "--scale edge-api",
        ),
        (
            &["up", "--data-dir", &data, "--http-addr", "127.0.0.1:0"],
            "not valid secrets JSON",
        ),
        (
            &["token", "--customer", "alice", "--data-dir", &data],
            "not valid secrets JSON",
        ),
        (
            &[
                "token",
                "--customer",
                "alice",
                "--ttl",
                "500ms",
                "--data-dir",
                &data,
            ],
            "--ttl",
        ),
        (
            &[
                "replay",
                "edge-api",
                "--from-seq",
                "4",
                "--discard-lost-history",
                "--data-dir",
                &data,
            ],
            "--discard-lost-history goes with --from-start only",
        ),
    ];
    for (args, says) in cases {
        let output = run(&sandbox.bin(), args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(
        !sandbox.data().join("logs").exists(),
        "a refused up left a logs directory"
    );
}

#[tokio::test]
async fn up_fails_clearly_when_the_http_addr_is_busy() {
    let sandbox = Sandbox::new(true);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let addr = busy.local_addr().expect("addr").to_string();

    let output = run(
        &sandbox.bin(),
        &[
            "up",
            "--data-dir",
            &sandbox.data_arg(),
            "--http-addr",
            &addr,
        ],
    );

    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("already in use") && err.contains("--http-addr 127.0.0.1:0"),
        "{err}"
    );
}

#[tokio::test]
async fn up_on_a_nats_url_nobody_answers_says_so_and_exits_3_before_starting_services() {
    let sandbox = Sandbox::new(true);
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("nats://127.0.0.1:{port}");

    let output = sandbox.up_once_with(&[
        "--nats-url",
        &url,
        "--nats-user",
        "ops",
        "--nats-password",
        "secret",
    ]);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("cannot reach NATS at {url}"))
            && err.contains("leave out --nats-url"),
        "{err}"
    );
    assert!(!err.contains("started"), "no service was started: {err}");
    assert!(
        sandbox.up_json().is_none(),
        "no up.json for a shop that never ran"
    );
}

#[tokio::test]
async fn up_names_the_missing_service_binaries_and_how_to_build_them() {
    let sandbox = Sandbox::new(false);

    let output = sandbox.up_once();

    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("product-svc") && err.contains("cargo build --release --workspace"),
        "{err}"
    );
}

#[test]
fn token_without_a_data_dir_says_to_run_up_first_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().display().to_string();
    let args = ["token", "--customer", "alice", "--data-dir", &data];

    let output = bazaar(Path::new(BAZAAR))
        .args(args)
        .env_remove("BAZAAR_JWT_SECRET")
        .output()
        .expect("bazaar runs");

    assert_eq!(output.status.code(), Some(2), "a configuration error");
    assert!(
        stderr(&output)
            .contains("run `bazaar up` first, pass --data-dir, or give the edge's secret"),
        "{}",
        stderr(&output)
    );

    // A shop `bazaar up` did not start (compose): the edge's secret given.
    let output = bazaar(Path::new(BAZAAR))
        .args(args)
        .env("BAZAAR_JWT_SECRET", "the-edges-secret")
        .output()
        .expect("bazaar runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let claims = decode::<Claims>(
        String::from_utf8_lossy(&output.stdout).trim(),
        &DecodingKey::from_secret(b"the-edges-secret"),
        &Validation::default(),
    )
    .expect("signed with the given secret")
    .claims;
    assert_eq!(
        (claims.sub.as_str(), claims.role),
        ("alice", Role::Customer)
    );
}

#[test]
fn token_refuses_a_subject_the_edge_would_refuse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().display().to_string();
    let too_long = "c".repeat(129);

    for customer in ["", "  ", too_long.as_str()] {
        let output = run(
            Path::new(BAZAAR),
            &["token", "--customer", customer, "--data-dir", &data_dir],
        );

        assert_eq!(output.status.code(), Some(2), "{customer:?}");
        assert!(
            stderr(&output).contains("--customer must be 1 to 128 bytes"),
            "{}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "no token is printed");
    }
}

#[test]
fn ops_commands_without_a_shop_exit_with_2_and_say_how_to_find_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().display().to_string();
    for args in [
        vec!["streams"],
        vec!["tail"],
        vec!["replay", "edge-api", "--from-start"],
        vec!["dlq", "list"],
    ] {
        let mut args = args.clone();
        args.extend(["--json", "--data-dir", &data_dir]);
        let output = run(Path::new(BAZAAR), &args);

        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains("no shop found") && stderr(&output).contains("up.json"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn help_lists_every_command_with_examples() {
    let output = run(Path::new(BAZAAR), &["--help"]);

    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "up",
        "token",
        "streams",
        "tail",
        "replay",
        "dlq",
        "seed",
        "load",
        "Examples:",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

/// The CPUs a process may run on, as the kernel lists them ("0-1", "3").
fn cpus_of(pid: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_default()
}

/// Each instance of `up.json` with the CPUs its process may run on.
fn instance_cpus(state: &serde_json::Value) -> Vec<(String, String)> {
    state["services"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let pid = s["pid"].as_i64().unwrap_or_default().to_string();
            (
                s["instance"].as_str().unwrap_or_default().to_owned(),
                cpus_of(&pid),
            )
        })
        .collect()
}

async fn stop(mut up: Up) {
    up.signal(Signal::SIGINT);
    let status = up.wait_for_exit().await;
    assert!(status.success(), "{status}: {}", up.output());
}

#[tokio::test]
async fn up_keeps_each_single_threaded_service_on_one_cpu_unless_told_not_to() {
    let all = cpus_of("self");
    let several = all.contains('-') || all.contains(',');

    // Default: round-robin, product-svc left free.
    let up = Up::start(Sandbox::new(true), &["--scale", "checkout-svc=2"]);
    up.wait_until_up().await;
    let pinned = instance_cpus(&up.sandbox.up_json().expect("up.json"));
    stop(up).await;

    for (instance, cpus) in &pinned {
        let expected_free = instance.starts_with("product-svc") || !several;
        if expected_free {
            assert_eq!(cpus, &all, "{instance} may run on every CPU");
        } else {
            assert!(
                !cpus.is_empty() && cpus.parse::<usize>().is_ok(),
                "{instance} is kept to one CPU, not {cpus:?} (all: {all})"
            );
        }
    }
    if several {
        let cpu = |name: &str| {
            pinned
                .iter()
                .find(|(instance, _)| instance == name)
                .map(|(_, cpus)| cpus.clone())
        };
        assert_ne!(
            cpu("checkout-svc-0"),
            cpu("checkout-svc-1"),
            "two instances of one service are kept to different CPUs: {pinned:?}"
        );
    }

    // Off: every service on every CPU.
    let up = Up::start(Sandbox::new(true), &["--cpu-affinity", "off"]);
    up.wait_until_up().await;
    let free = instance_cpus(&up.sandbox.up_json().expect("up.json"));
    stop(up).await;
    assert!(!free.is_empty());
    for (instance, cpus) in &free {
        assert_eq!(cpus, &all, "{instance} with --cpu-affinity off");
    }
}

#[path = "cli/data_dir.rs"]
mod data_dir;
#[path = "cli/postgres.rs"]
mod postgres;
