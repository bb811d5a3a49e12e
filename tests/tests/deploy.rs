//! What deploys Bazaar must stay consistent with the workspace.
//! compose.yaml: every service binary runs there with every variable it
//! requires, on the 3-node cluster with 3 replicas, each with its own
//! database and NATS user (no Docker engine runs in CI, so this is what
//! keeps the file honest). The Grafana dashboard: every metric it charts is
//! one the code exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_yaml::{Mapping, Value};

const BINARIES: [&str; 5] = [
    "product-svc",
    "checkout-svc",
    "warehouse-svc",
    "finance-svc",
    "edge-api",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn compose() -> Mapping {
    let value: Value =
        serde_yaml::from_str(&read("compose.yaml")).expect("compose.yaml is valid YAML");
    let mut value = value;
    value
        .apply_merge()
        .expect("compose.yaml merge keys resolve");
    value
        .get("services")
        .and_then(Value::as_mapping)
        .cloned()
        .expect("compose.yaml has services")
}

/// (service name, binary, environment) of every service that runs a Bazaar binary.
fn app_services() -> Vec<(String, String, Mapping)> {
    compose()
        .into_iter()
        .filter_map(|(name, service)| {
            let name = name.as_str()?.to_owned();
            let command = service.get("command")?.as_sequence()?;
            let binary = command.first()?.as_str()?.to_owned();
            let env = service.get("environment")?.as_mapping()?.clone();
            BINARIES
                .contains(&binary.as_str())
                .then_some((name, binary, env))
        })
        .collect()
}

fn env<'a>(env: &'a Mapping, key: &str) -> Option<&'a str> {
    env.get(key).and_then(Value::as_str)
}

#[test]
fn every_service_binary_runs_in_compose_at_least_twice() {
    let services = app_services();
    for binary in BINARIES {
        let instances = services.iter().filter(|(_, b, _)| b == binary).count();
        assert!(instances >= 2, "{binary} runs {instances} time(s) in compose.yaml; every service should run at least two instances");
    }
}

#[test]
fn the_dockerfile_builds_every_binary_compose_runs() {
    let dockerfile = read("Dockerfile");
    for binary in BINARIES.iter().chain(["bazaar"].iter()) {
        assert!(
            dockerfile.contains(&format!("target/release/{binary}")),
            "the Dockerfile does not copy {binary} into the image"
        );
    }
}

#[test]
fn every_service_gets_its_own_user_database_and_the_cluster() {
    let databases = read("deploy/postgres/init.sql");
    for (name, binary, environment) in app_services() {
        assert_eq!(
            env(&environment, "NATS_USER"),
            Some(binary.as_str()),
            "{name}: NATS_USER must be its own user"
        );
        let password = format!(
            "${{BAZAAR_NATS_PASSWORD_{}:?",
            binary.to_uppercase().replace('-', "_")
        );
        assert!(
            env(&environment, "NATS_PASSWORD").is_some_and(|p| p.starts_with(&password)),
            "{name}: NATS_PASSWORD must come from {password}…}}"
        );
        let url = env(&environment, "NATS_URL").unwrap_or_default();
        assert_eq!(
            url.split(',').count(),
            3,
            "{name}: NATS_URL must list the three cluster nodes"
        );
        assert_eq!(
            env(&environment, "BAZAAR_STREAM_REPLICAS"),
            Some("3"),
            "{name}: streams need 3 replicas on the cluster"
        );
        let database = env(&environment, "DATABASE_URL").unwrap_or_default();
        let db_name = database.rsplit('/').next().unwrap_or_default();
        assert!(
            database.starts_with("postgres://"),
            "{name}: DATABASE_URL must be PostgreSQL"
        );
        assert!(
            databases.contains(&format!("CREATE DATABASE {db_name};")),
            "{name}: database {db_name:?} is not created by deploy/postgres/init.sql"
        );
    }
    let mut owners: Vec<(String, String)> = app_services()
        .into_iter()
        .map(|(_, binary, e)| {
            (
                env(&e, "DATABASE_URL")
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                binary,
            )
        })
        .collect();
    owners.sort();
    owners.dedup();
    let databases: BTreeSet<_> = owners.iter().map(|(db, _)| db.clone()).collect();
    assert_eq!(
        databases.len(),
        owners.len(),
        "two services share a database: {owners:?}"
    );
}

#[test]
fn every_nats_password_the_users_need_is_given_to_every_node_and_documented() {
    let users = read("nats/users.conf");
    let example = read("compose.env.example");
    let needed: BTreeSet<String> = users
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .filter_map(|word| word.strip_prefix('$'))
        .filter(|word| word.starts_with("BAZAAR_NATS_PASSWORD_"))
        .map(str::to_owned)
        .collect();
    assert!(
        !needed.is_empty(),
        "nats/users.conf names no password variables"
    );
    let services = compose();
    for node in ["nats-1", "nats-2", "nats-3"] {
        let environment = services
            .get(node)
            .and_then(|s| s.get("environment"))
            .and_then(Value::as_mapping)
            .unwrap_or_else(|| panic!("{node} has no environment"));
        for variable in &needed {
            assert!(
                env(environment, variable).is_some(),
                "{node} does not get {variable}, which nats/users.conf needs"
            );
        }
    }
    for variable in needed {
        assert!(
            example.contains(&format!("{variable}=")),
            "compose.env.example does not document {variable}"
        );
    }
}

/// The variables a binary cannot start without: options in its usage line
/// (required, no default) that have an environment fallback.
fn required_env(binary: &str) -> Vec<String> {
    let dir = std::env::var_os("BAZAAR_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test executable path");
            exe.parent()
                .and_then(|d| d.parent())
                .map(PathBuf::from)
                .expect("target dir")
        });
    let output = Command::new(dir.join(binary))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("running {binary} --help (build the binaries first: cargo build --workspace --bins): {e}"));
    let help = String::from_utf8_lossy(&output.stdout).to_string();
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_default();
    let required_flags: Vec<&str> = usage
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    let mut variables = Vec::new();
    let lines: Vec<&str> = help.lines().collect();
    for flag in required_flags {
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("{binary} --help does not describe {flag}"));
        let env = lines[start..]
            .iter()
            .take(8)
            .find_map(|l| l.split("[env: ").nth(1))
            .and_then(|rest| rest.split(['=', ']']).next())
            .unwrap_or_else(|| panic!("{binary}: required {flag} has no environment fallback"));
        variables.push(env.to_owned());
    }
    variables
}

#[test]
fn every_variable_a_binary_requires_is_set_for_it() {
    for (name, binary, environment) in app_services() {
        for variable in required_env(&binary) {
            assert!(
                env(&environment, &variable).is_some(),
                "{name}: {binary} requires {variable} but compose.yaml does not set it"
            );
        }
    }
}

#[test]
fn every_metric_the_dashboard_charts_is_exported_by_the_code() {
    let dashboard = read("deploy/grafana/bazaar-dashboard.json");
    let code = ["platform/src/metrics.rs", "edge-api/src/routes/mod.rs"]
        .map(read)
        .join("\n");
    let mut charted: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("bazaar_"))
        .collect();
    charted.sort();
    charted.dedup();
    assert!(
        !charted.is_empty(),
        "the dashboard charts no bazaar_ metric"
    );
    for metric in charted {
        let base = metric.strip_suffix("_bucket").unwrap_or(metric);
        assert!(
            code.contains(&format!("\"{base}\"")),
            "the dashboard charts {metric}, but no code exports {base}"
        );
    }
}
