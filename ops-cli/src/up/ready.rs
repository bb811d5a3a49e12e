//! Waiting for every instance to be ready, and telling the user the shop is up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::Instant;
use tracing::info;

use super::children::{self, ChildSpec};

/// Polls every instance's `GET /readyz` until all answer 200, then once
/// more: an instance found ready before another team's service had created
/// the stream it consumes is ready only once it declared its consumer there.
pub async fn wait_until_ready(specs: &[ChildSpec], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    wait_all(specs, deadline, timeout, true).await?;
    wait_all(specs, deadline, timeout, false).await
}

async fn wait_all(
    specs: &[ChildSpec],
    deadline: Instant,
    timeout: Duration,
    announce: bool,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("cannot build an HTTP client")?;
    let mut waiting: Vec<&ChildSpec> = specs.iter().collect();
    let mut last_error: BTreeMap<String, String> = BTreeMap::new();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for spec in waiting {
            match http.get(format!("{}/readyz", spec.health_url)).send().await {
                Ok(answer) if answer.status() == reqwest::StatusCode::OK => {
                    if announce {
                        info!(instance = %spec.instance, "ready")
                    }
                }
                Ok(answer) => {
                    last_error.insert(
                        spec.instance.clone(),
                        format!("answered {}", answer.status()),
                    );
                    still.push(spec);
                }
                Err(e) => {
                    last_error.insert(spec.instance.clone(), error_chain(&e));
                    still.push(spec);
                }
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let spec = waiting[0];
            let names: Vec<&str> = waiting.iter().map(|s| s.instance.as_str()).collect();
            bail!(
                "not ready after {timeout:?}: {} (GET {}/readyz: {}); the end of {}:\n{}",
                names.join(", "),
                spec.health_url,
                last_error
                    .get(&spec.instance)
                    .map_or("no answer", String::as_str),
                spec.log.display(),
                children::log_tail(&spec.log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Whether `GET <health_url>/readyz` answers 200 within `within`.
pub async fn ready_within(health_url: &str, within: Duration) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let answer = http.get(format!("{health_url}/readyz")).send().await;
        if answer.is_ok_and(|a| a.status() == reqwest::StatusCode::OK) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// An error and its sources, e.g. `error sending request: connection refused`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

pub fn print_banner(
    edge: SocketAddr,
    nats_url: &str,
    data_dir: &Path,
    postgres: Option<&str>,
    demo_token: &str,
) {
    let bazaar = std::env::args()
        .next()
        .unwrap_or_else(|| "bazaar".to_owned());
    let data = data_dir.display();
    let databases = match postgres {
        Some(place) => place.to_owned(),
        None => format!("SQLite, {data}/*.db"),
    };
    outln!(
        "\nBazaar is up.\n\n  \
         storefront  http://{edge}/\n  \
         sign in     http://{edge}/#token={demo_token}\n              \
         (the storefront as customer \"demo\")\n  \
         API docs    http://{edge}/docs\n  \
         NATS        {nats_url}  (user ops; password in {data}/up.json)\n  \
         databases   {databases}\n  \
         logs        {data}/logs/\n  \
         a token     {bazaar} token --customer alice --data-dir {data}\n              \
         (add --admin for catalog and stock writes)\n\n\
         Stop with Ctrl-C.\n"
    );
}
