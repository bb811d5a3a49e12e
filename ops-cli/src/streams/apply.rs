//! `bazaar streams apply`: makes the broker's streams and durable consumers
//! exactly what the code declares (DESIGN §4), as the `ops` user. Services
//! do the same for their own stream at start-up; this is for operators: a
//! new cluster before the services start, a changed replica count, the DLQ
//! (which services may create but not change), or a check (`--dry-run`)
//! that nothing has drifted.

use std::process::ExitCode;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, consumer, stream, ErrorCode};
use contracts::Team;
use futures::TryStreamExt;
use platform::streams::{declared_durables, dlq_stream, event_stream, ConsumerSpec};
use serde::Serialize;

use crate::connect::ConnectArgs;
use crate::exit;

const EXAMPLES: &str = "\
Examples:
  bazaar streams apply --dry-run         what would change, changing nothing
  bazaar streams apply                   create what is missing, update what drifted
  bazaar streams apply --replicas 3      the same, with every stream on three nodes
  bazaar streams apply --json | jq '.items[] | select(.action != \"unchanged\")'

Exit code 0 when every stream and consumer is as declared (or, with
--dry-run, could be made so), 1 when the broker refused a change.";

/// `bazaar streams apply`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ApplyArgs {
    /// Replicas of every stream (1 on one node, 3 on a cluster); default:
    /// what each stream has now, 1 for a new one
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    replicas: Option<u8>,
    /// Show what would be created or updated; change nothing
    #[arg(long)]
    dry_run: bool,
    /// One JSON object `{dry_run, items: [{kind, name, action, changes, error}]}` on stdout
    #[arg(long)]
    json: bool,
}

/// What happened to one stream or consumer.
#[derive(Debug, Serialize)]
struct Item {
    /// `stream` or `consumer`.
    kind: &'static str,
    /// The stream's name, or `<stream>/<durable>`.
    name: String,
    /// `created`, `updated`, `unchanged`, `would create`, `would update` or `failed`.
    action: &'static str,
    /// The fields that differ from the declaration, `field: now → declared`.
    changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    items: Vec<Item>,
}

pub fn run(connect: &ConnectArgs, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    exit::block_on(async move {
        let client = connect.connect().await?;
        // One node cannot hold more than one replica: say so before
        // anything, in a dry run too (the broker would refuse each stream).
        if let Some(replicas) = args.replicas.filter(|r| *r > 1) {
            if client.server_info().cluster.is_none() {
                return Err(exit::usage(format!(
                    "--replicas {replicas}: the broker is a single node, not part of a cluster; \
                     streams on it have 1 replica"
                )));
            }
        }
        let js = jetstream::new(client);
        let mut items = Vec::new();
        let mut configs: Vec<stream::Config> = Team::ALL
            .into_iter()
            .map(|team| event_stream(team, 1))
            .collect();
        configs.push(dlq_stream(1));
        for config in configs {
            items.push(apply_stream(&js, config, &args).await);
        }
        for spec in declared_durables() {
            let stream_ok = items
                .iter()
                .any(|i| i.kind == "stream" && i.name == spec.stream && i.action != "failed");
            items.push(apply_consumer(&js, &spec, args.dry_run, stream_ok).await);
        }
        let failed = items.iter().any(|i| i.action == "failed");
        let report = Report {
            dry_run: args.dry_run,
            items,
        };
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&report);
        }
        Ok(if failed {
            ExitCode::from(exit::FAILED)
        } else {
            ExitCode::SUCCESS
        })
    })
}

async fn apply_stream(
    js: &jetstream::Context,
    mut wanted: stream::Config,
    args: &ApplyArgs,
) -> Item {
    let name = wanted.name.clone();
    let current = match platform::streams::info(js, &name).await {
        Ok(info) => Some(info.config),
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
            if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            None
        }
        Err(e) => return failed("stream", name, Vec::new(), format!("looking it up: {e}")),
    };
    wanted.num_replicas = args
        .replicas
        .map(usize::from)
        .or(current.as_ref().map(|c| c.num_replicas))
        .unwrap_or(1);
    let Some(current) = current else {
        if args.dry_run {
            return item("stream", name, "would create", Vec::new());
        }
        return match js.create_stream(wanted).await {
            Ok(_) => item("stream", name, "created", Vec::new()),
            Err(e) => failed("stream", name, Vec::new(), e.to_string()),
        };
    };
    let changes = stream_changes(&current, &wanted);
    if changes.is_empty() {
        return item("stream", name, "unchanged", changes);
    }
    if args.dry_run {
        return item("stream", name, "would update", changes);
    }
    match js.update_stream(wanted).await {
        Ok(_) => item("stream", name, "updated", changes),
        Err(e) => failed("stream", name, changes, e.to_string()),
    }
}

async fn apply_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
    dry_run: bool,
    stream_ok: bool,
) -> Item {
    let name = format!("{}/{}", spec.stream, spec.durable);
    let wanted = spec.config();
    let current = match js.get_stream(spec.stream).await {
        Ok(stream) => {
            let infos: Result<Vec<consumer::Info>, _> = stream.consumers().try_collect().await;
            match infos {
                Ok(infos) => infos
                    .into_iter()
                    .find(|i| i.name == spec.durable)
                    .map(|i| i.config),
                Err(e) => {
                    return failed(
                        "consumer",
                        name,
                        Vec::new(),
                        format!("listing consumers: {e}"),
                    )
                }
            }
        }
        // A dry run of a stream still to be created: its consumers too.
        Err(_) if dry_run && stream_ok => None,
        Err(e) => return failed("consumer", name, Vec::new(), format!("its stream: {e}")),
    };
    let changes = match &current {
        Some(current) => consumer_changes(current, &wanted),
        None => Vec::new(),
    };
    let action = match (&current, changes.is_empty(), dry_run) {
        (Some(_), true, _) => return item("consumer", name, "unchanged", changes),
        (None, _, true) => return item("consumer", name, "would create", changes),
        (Some(_), false, true) => return item("consumer", name, "would update", changes),
        (None, _, false) => "created",
        (Some(_), false, false) => "updated",
    };
    let created: Result<consumer::PullConsumer, _> =
        js.create_consumer_on_stream(wanted, spec.stream).await;
    match created {
        Ok(_) => item("consumer", name, action, changes),
        Err(e) => failed("consumer", name, changes, e.to_string()),
    }
}

fn item(kind: &'static str, name: String, action: &'static str, changes: Vec<String>) -> Item {
    Item {
        kind,
        name,
        action,
        changes,
        error: None,
    }
}

/// A refusal, with the differences it was meant to mend (if any).
fn failed(kind: &'static str, name: String, changes: Vec<String>, error: String) -> Item {
    Item {
        error: Some(error),
        ..item(kind, name, "failed", changes)
    }
}

/// Differences from the declaration, each `field: now → declared`.
#[derive(Default)]
struct Diff(Vec<String>);

impl Diff {
    fn text(&mut self, field: &str, now: String, declared: String) -> &mut Self {
        if now != declared {
            self.0.push(format!("{field}: {now} → {declared}"));
        }
        self
    }

    fn debug<T: std::fmt::Debug>(&mut self, field: &str, now: &T, declared: &T) -> &mut Self {
        self.text(field, format!("{now:?}"), format!("{declared:?}"))
    }
}

/// The declared fields of a stream that differ.
fn stream_changes(now: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    // Not compared: `deny_delete` and `deny_purge`, which an update can set
    // but never clear again (the server refuses), so reporting them would
    // make every later apply fail on that stream.
    let mut diff = Diff::default();
    diff.text(
        "subjects",
        now.subjects.join(","),
        wanted.subjects.join(","),
    )
    .debug("retention", &now.retention, &wanted.retention)
    .debug("storage", &now.storage, &wanted.storage)
    .debug("replicas", &now.num_replicas, &wanted.num_replicas)
    .debug(
        "duplicate_window",
        &now.duplicate_window,
        &wanted.duplicate_window,
    )
    .text(
        "max_message_size",
        limit(now.max_message_size.into()),
        limit(wanted.max_message_size.into()),
    )
    .text("max_age", age(now.max_age), age(wanted.max_age))
    .text(
        "max_msgs",
        limit(now.max_messages),
        limit(wanted.max_messages),
    )
    .text("max_bytes", limit(now.max_bytes), limit(wanted.max_bytes))
    .text(
        "max_msgs_per_subject",
        limit(now.max_messages_per_subject),
        limit(wanted.max_messages_per_subject),
    )
    .text(
        "max_consumers",
        limit(now.max_consumers.into()),
        limit(wanted.max_consumers.into()),
    )
    .debug("discard", &now.discard, &wanted.discard)
    .debug(
        "discard_new_per_subject",
        &now.discard_new_per_subject,
        &wanted.discard_new_per_subject,
    )
    .debug("allow_rollup", &now.allow_rollup, &wanted.allow_rollup);
    diff.0
}

/// A count or size limit as the server and a config may spell it: the
/// server reports "no limit" as -1 where a config leaves it 0.
fn limit(n: i64) -> String {
    if n <= 0 {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

/// A stream's `max_age`: zero is no limit.
fn age(max_age: std::time::Duration) -> String {
    if max_age.is_zero() {
        "unlimited".to_owned()
    } else {
        format!("{max_age:?}")
    }
}

/// The declared fields of a durable consumer that differ.
fn consumer_changes(now: &consumer::Config, wanted: &consumer::pull::Config) -> Vec<String> {
    let mut filters = now.filter_subjects.clone();
    if !now.filter_subject.is_empty() {
        filters.push(now.filter_subject.clone());
    }
    filters.sort();
    let mut wanted_filters = wanted.filter_subjects.clone();
    wanted_filters.sort();
    let mut diff = Diff::default();
    diff.text(
        "filter_subjects",
        filters.join(","),
        wanted_filters.join(","),
    )
    .debug("ack_policy", &now.ack_policy, &wanted.ack_policy)
    .debug("ack_wait", &now.ack_wait, &wanted.ack_wait)
    .debug("max_deliver", &now.max_deliver, &wanted.max_deliver)
    .debug(
        "max_ack_pending",
        &now.max_ack_pending,
        &wanted.max_ack_pending,
    );
    diff.0
}

fn print_report(report: &Report) {
    if report.dry_run {
        outln!("dry run: nothing changed");
    }
    for i in &report.items {
        outln!("{:<8} {:<36} {}", i.kind, i.name, i.action);
        for change in &i.changes {
            outln!("           {change}");
        }
        if let Some(error) = &i.error {
            outln!("           error: {error}");
        }
    }
}
