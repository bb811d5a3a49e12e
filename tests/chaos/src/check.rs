//! `bazaar check` after a chaos run: its report, and on a violation the
//! order's events and log lines, so a failure explains itself.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use bazaar_testkit::Shop;

use crate::bazaar_bin;

/// What `bazaar check --settled --json` found, and the dead letters.
#[derive(Debug)]
pub struct Check {
    pub orders: u64,
    pub duplicates: u64,
    pub violations: usize,
    /// Messages in the `DLQ` stream: what some consumer gave up on.
    pub dead_letters: u64,
    pub report: serde_json::Value,
}

/// Runs `bazaar check --settled --json` as `ops` against `nats_url` and
/// asserts it finds no violation and at least `placed` orders.
pub async fn check(
    nats_url: &str,
    ops_password: &str,
    placed: usize,
    explain_with: (&jetstream::Context, &Path),
) -> Check {
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(bazaar_bin())
            .args(["check", "--settled", "--json"])
            .env_remove("BAZAAR_DATA_DIR")
            .env("NATS_URL", nats_url)
            .env("NATS_USER", "ops")
            .env("NATS_PASSWORD", ops_password)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("bazaar check finishes within 3 minutes")
    .expect("bazaar check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check's output is not JSON ({e}):\n{stdout}\n{stderr}"));
    let violations = report["violations"].as_array().map_or(usize::MAX, Vec::len);
    let dead_letters = match explain_with.0.get_stream("DLQ").await {
        Ok(mut dlq) => dlq.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    };
    let check = Check {
        orders: report["orders"].as_u64().unwrap_or(0),
        duplicates: report["duplicates"].as_u64().unwrap_or(0),
        violations,
        dead_letters,
        report: report.clone(),
    };
    if violations > 0 {
        eprintln!("chaos: {dead_letters} dead letters");
        explain(&report, explain_with).await;
    }
    assert_eq!(violations, 0, "violations after chaos: {report}");
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        check.orders >= placed as u64,
        "the history holds {} orders, the edge accepted {placed}: {report}",
        check.orders
    );
    check
}

/// Prints, for each order a violation names, its events in every stream
/// and the service log lines that mention it (`logs`: the shop's log
/// directory), so a failure can be diagnosed after the shop is gone.
async fn explain(report: &serde_json::Value, (js, logs): (&jetstream::Context, &Path)) {
    let ids: Vec<String> = report["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["order_id"].as_str())
        .filter(|id| !id.is_empty())
        .take(3)
        .map(str::to_owned)
        .collect();
    for id in &ids {
        eprintln!("chaos: the history of order {id}:");
        for stream in contracts::Team::ALL
            .iter()
            .map(|t| t.stream())
            .chain(["DLQ"])
        {
            let Ok(mut handle) = js.get_stream(stream).await else {
                continue;
            };
            let Ok(info) = handle.info().await else {
                continue;
            };
            let (first, last) = (info.state.first_sequence, info.state.last_sequence);
            for seq in first..=last {
                let Ok(message) = handle.get_raw_message(seq).await else {
                    continue;
                };
                if String::from_utf8_lossy(&message.payload).contains(id.as_str()) {
                    let envelope: serde_json::Value =
                        serde_json::from_slice(&message.payload).unwrap_or_default();
                    eprintln!(
                        "  {stream} #{seq} {} {} id {} time {}",
                        message.subject, envelope["source"], envelope["id"], envelope["time"]
                    );
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(logs) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                for line in text.lines().filter(|l| l.contains(id.as_str())) {
                    eprintln!("  {}: {line}", entry.file_name().to_string_lossy());
                }
            }
        }
    }
}

/// [`check`] against the shop's own broker, explained with its logs.
pub async fn check_shop(shop: &Shop, js: &jetstream::Context, placed: usize) -> Check {
    let nats = shop.nats();
    check(
        &nats.url(),
        nats.password_for("ops"),
        placed,
        (js, &shop.data_dir().join("logs")),
    )
    .await
}
