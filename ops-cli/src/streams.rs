//! `bazaar streams`: what the broker holds and how far each durable
//! consumer is behind, read as the `ops` user; `bazaar streams apply`
//! declares them as the code does.

mod apply;

use std::process::ExitCode;

use async_nats::jetstream::{self, consumer, stream};
use contracts::subjects::DLQ_STREAM;
use contracts::Team;
use futures::TryStreamExt;
use serde::Serialize;

use crate::connect::ConnectArgs;
use crate::exit;
use crate::time::{format_time, to_chrono};

const EXAMPLES: &str = "\
Examples:
  bazaar streams                       every stream and its durable consumers
  bazaar streams --json | jq '.streams[] | {name, messages}'
  bazaar streams apply --dry-run       what differs from the streams and consumers in the code
  bazaar streams --nats-url nats://127.0.0.1:4222 --nats-user ops --nats-password …";

/// `bazaar streams`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct StreamsArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    connect: ConnectArgs,
    /// One JSON document on stdout instead of the table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create or update every stream and durable consumer as the code declares them
    Apply(apply::ApplyArgs),
}

#[derive(Debug, Serialize)]
struct StreamsView {
    streams: Vec<StreamView>,
    /// Streams the code declares that the broker does not have (deleted,
    /// or their owning service never started): `bazaar streams apply`
    /// creates them.
    missing: Vec<String>,
}

#[derive(Debug, Serialize)]
struct StreamView {
    name: String,
    subjects: Vec<String>,
    messages: u64,
    bytes: u64,
    first_seq: u64,
    first_time: Option<String>,
    last_seq: u64,
    last_time: Option<String>,
    /// How many copies the stream keeps (its `num_replicas`).
    replicas: usize,
    /// On a cluster: the server leading the stream's RAFT group.
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<String>,
    /// On a cluster: the other copies and whether they keep up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<PeerView>,
    consumers: Vec<ConsumerView>,
}

#[derive(Debug, Serialize)]
struct PeerView {
    name: String,
    /// Caught up with the leader.
    current: bool,
    offline: bool,
    /// Operations behind the leader, if the leader knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    lag: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ConsumerView {
    name: String,
    /// False for ordered (ephemeral) readers: projections, tails.
    durable: bool,
    filter_subjects: Vec<String>,
    /// Messages of its filter not yet delivered.
    pending: u64,
    /// Delivered, not yet acknowledged.
    ack_pending: u64,
    /// Delivered more than once.
    redelivered: u64,
    /// Stream sequence of the last message delivered.
    delivered_seq: u64,
    /// Everything up to this stream sequence is acknowledged.
    ack_floor_seq: u64,
    /// Messages of its filter not yet handled: pending + ack pending.
    lag: u64,
    /// Pull requests waiting at the broker: a running consumer loop keeps
    /// one open, so 0 means no instance is pulling (down, stopped, stuck;
    /// a pull expires 30 s after its reader stopped renewing it).
    waiting_pulls: usize,
}

pub fn run(args: StreamsArgs) -> anyhow::Result<ExitCode> {
    if let Some(Action::Apply(apply)) = args.action {
        return apply::run(&args.connect, apply);
    }
    exit::block_on(async move {
        let client = args.connect.connect().await?;
        let view = read(&jetstream::new(client)).await?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&view)?);
        } else {
            print_table(&view);
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn read(js: &jetstream::Context) -> anyhow::Result<StreamsView> {
    let mut infos: Vec<stream::Info> = js
        .streams()
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!("listing streams: {e}"))?;
    infos.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let mut streams = Vec::with_capacity(infos.len());
    for info in infos {
        let handle = js
            .get_stream(&info.config.name)
            .await
            .map_err(|e| anyhow::anyhow!("reading stream {}: {e}", info.config.name))?;
        let mut consumers: Vec<consumer::Info> = handle
            .consumers()
            .try_collect()
            .await
            .map_err(|e| anyhow::anyhow!("listing consumers of {}: {e}", info.config.name))?;
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        let state = &info.state;
        let has_messages = state.messages > 0;
        streams.push(StreamView {
            name: info.config.name.clone(),
            subjects: info.config.subjects.clone(),
            messages: state.messages,
            bytes: state.bytes,
            first_seq: state.first_sequence,
            first_time: has_messages.then(|| format_time(&to_chrono(state.first_timestamp))),
            last_seq: state.last_sequence,
            last_time: has_messages.then(|| format_time(&to_chrono(state.last_timestamp))),
            replicas: info.config.num_replicas,
            leader: info.cluster.as_ref().and_then(|c| c.leader.clone()),
            peers: info
                .cluster
                .as_ref()
                .map(|c| {
                    c.replicas
                        .iter()
                        .map(|p| PeerView {
                            name: p.name.clone(),
                            current: p.current,
                            offline: p.offline,
                            lag: p.lag,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            consumers: consumers.iter().map(consumer_view).collect(),
        });
    }
    let mut declared: Vec<String> = Team::ALL
        .into_iter()
        .map(|team| team.stream().to_owned())
        .collect();
    declared.push(DLQ_STREAM.to_owned());
    let missing = declared
        .into_iter()
        .filter(|name| !streams.iter().any(|s| s.name == *name))
        .collect();
    Ok(StreamsView { streams, missing })
}

fn consumer_view(c: &consumer::Info) -> ConsumerView {
    let mut filter_subjects = c.config.filter_subjects.clone();
    if !c.config.filter_subject.is_empty() {
        filter_subjects.insert(0, c.config.filter_subject.clone());
    }
    let ack_pending = c.num_ack_pending as u64;
    ConsumerView {
        name: c.name.clone(),
        durable: c.config.durable_name.is_some(),
        filter_subjects,
        pending: c.num_pending,
        ack_pending,
        redelivered: c.num_redelivered as u64,
        delivered_seq: c.delivered.stream_sequence,
        ack_floor_seq: c.ack_floor.stream_sequence,
        lag: c.num_pending.saturating_add(ack_pending),
        waiting_pulls: c.num_waiting,
    }
}

/// Where the copies of a replicated stream are and whether they keep up;
/// nothing for a stream kept once (one server).
fn replicas_line(s: &StreamView) -> Option<String> {
    if s.replicas <= 1 && s.peers.is_empty() {
        return None;
    }
    let mut parts = vec![format!(
        "leader {}",
        s.leader.as_deref().unwrap_or("NONE (no quorum?)")
    )];
    for p in &s.peers {
        let state = if p.offline {
            "OFFLINE".to_owned()
        } else if p.current {
            "current".to_owned()
        } else {
            match p.lag {
                Some(lag) => format!("BEHIND by {lag}"),
                None => "BEHIND".to_owned(),
            }
        };
        parts.push(format!("{} {state}", p.name));
    }
    Some(format!("replicas {}: {}", s.replicas, parts.join(", ")))
}

fn print_table(view: &StreamsView) {
    if view.streams.is_empty() {
        outln!("no streams yet (has the shop started?)");
        return;
    }
    print_streams(view);
    if !view.missing.is_empty() {
        outln!();
        outln!(
            "MISSING: {} (declared, not on the broker; `bazaar streams apply` creates them)",
            view.missing.join(", ")
        );
    }
}

fn print_streams(view: &StreamsView) {
    for (n, s) in view.streams.iter().enumerate() {
        if n > 0 {
            outln!();
        }
        outln!(
            "{}  ({})  {} messages, {}",
            s.name,
            s.subjects.join(", "),
            s.messages,
            human_bytes(s.bytes)
        );
        match (&s.first_time, &s.last_time) {
            (Some(first), Some(last)) => outln!(
                "  first #{} at {first}, last #{} at {last}",
                s.first_seq,
                s.last_seq
            ),
            _ => outln!("  empty (last sequence {})", s.last_seq),
        }
        if let Some(line) = replicas_line(s) {
            outln!("  {line}");
        }
        let durable: Vec<&ConsumerView> = s.consumers.iter().filter(|c| c.durable).collect();
        if !durable.is_empty() {
            outln!(
                "  {:<24} {:>9} {:>12} {:>12} {:>9} {:>10}  PULLING",
                "CONSUMER",
                "PENDING",
                "ACK PENDING",
                "REDELIVERED",
                "LAG",
                "DELIVERED"
            );
            for c in durable {
                // Nobody pulling is what a dead or stopped service looks
                // like; with nothing pending it would otherwise read idle.
                let pulling = if c.waiting_pulls > 0 {
                    "yes"
                } else {
                    "NO (service down or stuck?)"
                };
                outln!(
                    "  {:<24} {:>9} {:>12} {:>12} {:>9} {:>10}  {pulling}",
                    c.name,
                    c.pending,
                    c.ack_pending,
                    c.redelivered,
                    c.lag,
                    format!("#{}", c.delivered_seq)
                );
            }
        }
        let ephemeral = s.consumers.iter().filter(|c| !c.durable).count();
        if ephemeral > 0 {
            outln!("  + {ephemeral} ordered reader(s): projections, tails (--json lists them)");
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Why `stream` cannot be read, saying what to do when it is missing
/// (`tail`, `dlq`).
pub fn unreadable(stream: &str, error: &jetstream::context::GetStreamError) -> anyhow::Error {
    use jetstream::context::GetStreamErrorKind;
    use jetstream::ErrorCode;
    match error.kind() {
        GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND => {
            let meanwhile = if stream == DLQ_STREAM {
                "; messages that could not be dead-lettered meanwhile are redelivered until \
                 they can"
            } else {
                ""
            };
            anyhow::anyhow!(
                "the {stream} stream does not exist (deleted, or the shop never started): \
                 `bazaar streams apply` creates it{meanwhile}"
            )
        }
        _ => anyhow::anyhow!("the {stream} stream: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }

    fn stream(replicas: usize, leader: Option<&str>, peers: Vec<PeerView>) -> StreamView {
        StreamView {
            name: contracts::Team::Checkout.stream().to_owned(),
            subjects: vec![contracts::Team::Checkout.event_prefix().to_owned()],
            messages: 0,
            bytes: 0,
            first_seq: 0,
            first_time: None,
            last_seq: 0,
            last_time: None,
            replicas,
            leader: leader.map(str::to_owned),
            peers,
            consumers: Vec::new(),
        }
    }

    fn peer(name: &str, current: bool, offline: bool, lag: Option<u64>) -> PeerView {
        PeerView {
            name: name.into(),
            current,
            offline,
            lag,
        }
    }

    #[test]
    fn a_replicated_stream_shows_its_leader_and_each_copy() {
        assert_eq!(replicas_line(&stream(1, None, Vec::new())), None);
        let line = replicas_line(&stream(
            3,
            Some("nats-1"),
            vec![
                peer("nats-2", true, false, None),
                peer("nats-3", false, true, None),
            ],
        ));
        assert_eq!(
            line.as_deref(),
            Some("replicas 3: leader nats-1, nats-2 current, nats-3 OFFLINE")
        );
        let lagging = replicas_line(&stream(
            3,
            None,
            vec![peer("nats-2", false, false, Some(7))],
        ));
        assert_eq!(
            lagging.as_deref(),
            Some("replicas 3: leader NONE (no quorum?), nats-2 BEHIND by 7")
        );
    }
}
