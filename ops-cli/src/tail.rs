//! `bazaar tail`: decoded events as they were stored, one line each (or one
//! CloudEvents JSON document per line), from every stream the subject filter
//! reaches, merged in time order. Reads through ordered (ephemeral)
//! consumers, so it leaves nothing behind on the broker.

mod printer;
mod reader;
mod subjects;
mod summary;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Context};
use chrono::{DateTime, Utc};
use contracts::subjects::{DLQ_STREAM, DLQ_SUBJECTS};
use contracts::Team;
use tokio::sync::mpsc;

use crate::connect::ConnectArgs;
use crate::duration::parse_duration;
use crate::exit;
use crate::time::parse_time;
use printer::Printer;
use reader::{open, AbortOnDrop, Item};

const EXAMPLES: &str = "\
Examples:
  bazaar tail                               every event stored so far, oldest first
  bazaar tail --since 10m --follow          the last ten minutes, then what comes
  bazaar tail 'evt.checkout.>' --type order.placed --limit 5
  bazaar tail --order 0193a1b2-… --json     one order's story across teams, as CloudEvents
  bazaar tail 'evt.warehouse.>' --from-seq 120
  bazaar tail 'dlq.>'                       the dead letters (see also `bazaar dlq list`)

Quote filters with `>` or `*`: the shell reads them otherwise.";

/// How long a stream may stay silent while it still owes events.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `bazaar tail`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct TailArgs {
    /// Subject filter, e.g. `evt.checkout.>` or `evt.*.order.placed.v2`
    /// (default: every event; `dlq.>` reads the dead letters)
    #[arg(value_name = "SUBJECT-FILTER")]
    filter: Option<String>,
    /// Only this event type: `bazaar.checkout.order.placed.v2`, or a part
    /// of it such as `order.placed`
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Only events about this order: its aggregate id or `data.order_id`
    #[arg(long, value_name = "ID", value_parser = order_id)]
    order: Option<uuid::Uuid>,
    /// Start at this stream sequence, 1 or more (the filter must reach one
    /// stream)
    #[arg(long, value_name = "N", group = "start",
          value_parser = clap::value_parser!(u64).range(1..))]
    from_seq: Option<u64>,
    /// Start this long ago: 90s, 10m, 2h, 1d
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, group = "start")]
    since: Option<Duration>,
    /// Start at this time (RFC 3339)
    #[arg(long, value_name = "TIME", value_parser = parse_time, group = "start")]
    from_time: Option<DateTime<Utc>>,
    /// Keep printing new events (default: stop at the end of the streams;
    /// without a start, --follow prints only new events)
    #[arg(long, short = 'f')]
    follow: bool,
    /// Each event as one CloudEvents JSON document per line; a dead letter,
    /// or a message that is no Bazaar event, as `{stream, seq, subject,
    /// time, dead_letter?, error?, event | payload}`
    #[arg(long)]
    json: bool,
    /// Stop after printing this many events (at least 1)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    #[command(flatten)]
    connect: ConnectArgs,
}

struct Source {
    stream: String,
    /// The stream's last sequence when the tail began: where "the end" is.
    end_seq: u64,
    caught_up: bool,
    queue: VecDeque<Item>,
}

pub fn run(args: TailArgs) -> anyhow::Result<ExitCode> {
    exit::block_on(async move {
        let filter = args.filter.clone().unwrap_or_else(|| "evt.>".to_owned());
        if !subjects::valid(&filter) {
            return Err(exit::usage(format!(
                "{filter:?} is not a subject filter (tokens separated by dots; * for one \
                 token, > for the rest)"
            )));
        }
        let streams = streams_for(&filter)?;
        if let Some(wanted) = &args.event_type {
            known_type(wanted)?;
        }
        if args.from_seq.is_some() && streams.len() > 1 {
            return Err(exit::usage(format!(
                "--from-seq needs a filter within one stream, but {filter} reaches {}; \
                 e.g. 'evt.checkout.>'",
                streams.join(", ")
            )));
        }
        let policy = match (args.from_seq, args.since, args.from_time) {
            (Some(seq), _, _) => DeliverPolicy::ByStartSequence {
                start_sequence: seq,
            },
            (_, Some(ago), _) => by_time(Utc::now() - ago)?,
            (_, _, Some(time)) => by_time(time)?,
            _ if args.follow => DeliverPolicy::New,
            _ => DeliverPolicy::All,
        };
        let client = args.connect.connect().await?;
        let js = jetstream::new(client.clone());
        let mut printer = Printer::new(&args);
        let live = args.follow.then_some(&client);
        tail(&js, &filter, &streams, policy, live, &mut printer).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The streams whose subjects the filter reaches.
fn streams_for(filter: &str) -> anyhow::Result<Vec<String>> {
    let mut streams: Vec<String> = Team::ALL
        .into_iter()
        .filter(|t| subjects::overlap(filter, t.event_prefix()))
        .map(|t| t.stream().to_owned())
        .collect();
    if subjects::overlap(filter, DLQ_SUBJECTS) {
        streams.push(DLQ_STREAM.to_owned());
    }
    if streams.is_empty() {
        return Err(exit::usage(format!(
            "no stream holds subjects matching {filter}: events are evt.<team>.…, dead letters dlq.…"
        )));
    }
    Ok(streams)
}

fn stream_subjects(stream: &str) -> &'static str {
    Team::ALL
        .into_iter()
        .find(|t| t.stream() == stream)
        .map_or(DLQ_SUBJECTS, |t| t.event_prefix())
}

fn by_time(time: DateTime<Utc>) -> anyhow::Result<DeliverPolicy> {
    let nanos = time
        .timestamp_nanos_opt()
        .ok_or_else(|| exit::usage(format!("{time} is out of range")))?;
    let start_time = async_nats::datetime::from_nanos(i128::from(nanos))
        .map_err(|e| exit::usage(format!("{time}: {e}")))?;
    Ok(DeliverPolicy::ByStartTime { start_time })
}

/// How long `--follow` waits for a lost broker before it gives up: a
/// restarted `bazaar up` listens on another port, so waiting longer rarely
/// helps.
const FOLLOW_LOST_AFTER: Duration = Duration::from_secs(15);

/// Reads `streams`; with `live` (`--follow`: the connection, to notice when
/// the shop is gone) goes on with new events until the broker is lost.
async fn tail(
    js: &Context,
    filter: &str,
    streams: &[String],
    policy: DeliverPolicy,
    live: Option<&async_nats::Client>,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    let follow = live.is_some();
    let (sender, mut receiver) = mpsc::channel::<anyhow::Result<Item>>(1024);
    let mut sources = Vec::with_capacity(streams.len());
    let mut readers = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let (end_seq, owed, reader) = open(js, index, stream, filter, policy).await?;
        if let DeliverPolicy::ByStartSequence { start_sequence } = policy {
            if start_sequence > end_seq && !follow {
                errln!(
                    "note: {stream} ends at #{end_seq}: nothing from #{start_sequence} yet \
                     (--follow waits for it)"
                );
            }
        }
        sources.push(Source {
            stream: stream.clone(),
            end_seq,
            caught_up: owed == 0,
            queue: VecDeque::new(),
        });
        readers.push(AbortOnDrop(tokio::spawn(reader.run(sender.clone()))));
    }
    drop(sender);

    // History: merge the streams by time until each reaches its end.
    while sources.iter().any(|s| !s.caught_up) {
        let waiting = sources.iter().any(|s| !s.caught_up && s.queue.is_empty());
        if waiting {
            let item = match tokio::time::timeout(READ_TIMEOUT, receiver.recv()).await {
                Ok(Some(item)) => item?,
                Ok(None) => anyhow::bail!("the streams' readers stopped"),
                Err(_) => anyhow::bail!(
                    "no event arrived for {READ_TIMEOUT:?} from a stream that owes some"
                ),
            };
            let source = &mut sources[item.source];
            if source.caught_up && !follow {
                continue;
            }
            if item.seq >= source.end_seq || item.pending == 0 {
                source.caught_up = true;
            }
            if item.seq <= source.end_seq || follow {
                source.queue.push_back(item);
            }
            continue;
        }
        if !printer.print_next(&mut sources)? {
            return Ok(());
        }
    }
    while sources.iter().any(|s| !s.queue.is_empty()) {
        if !printer.print_next(&mut sources)? {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    // Live: as they come, while the broker is there.
    let Some(client) = live else {
        return Ok(());
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut lost_since: Option<tokio::time::Instant> = None;
    loop {
        let item = tokio::select! {
            item = receiver.recv() => item,
            _ = ticks.tick() => {
                let connected =
                    client.connection_state() == async_nats::connection::State::Connected;
                let since = *lost_since.get_or_insert_with(tokio::time::Instant::now);
                if connected {
                    lost_since = None;
                } else if since.elapsed() >= FOLLOW_LOST_AFTER {
                    return Err(exit::unreachable(format!(
                        "lost the shop's broker {FOLLOW_LOST_AFTER:?} ago; is the shop still running?"
                    )));
                }
                continue;
            }
        };
        let Some(item) = item else {
            return Ok(());
        };
        let item = item?;
        let stream = sources[item.source].stream.clone();
        if !printer.print(&stream, item)? {
            return Ok(());
        }
    }
}

/// Refuses a `--type` that no event of the catalog has: it would print
/// nothing, as if the stream held no such event.
fn known_type(wanted: &str) -> anyhow::Result<()> {
    let types: Vec<String> = contracts::catalog::EVENTS
        .iter()
        .map(|e| e.event_type())
        .collect();
    if types.iter().any(|t| type_matches(t, wanted)) {
        return Ok(());
    }
    let mut short: Vec<String> = types
        .iter()
        .filter_map(|t| {
            let tokens: Vec<&str> = t.split('.').collect();
            // bazaar.<team>.<entity>.<action>.v<N> → <entity>.<action>
            (tokens.len() >= 4).then(|| tokens[2..tokens.len() - 1].join("."))
        })
        .collect();
    short.sort();
    short.dedup();
    Err(exit::usage(format!(
        "no event has the type {wanted:?}; one of {}, or a whole type such as {}",
        short.join(", "),
        types
            .first()
            .map(String::as_str)
            .unwrap_or("bazaar.checkout.order.placed.v2")
    )))
}

/// `wanted` is the whole type, or a dotted run of its tokens
/// (`order.placed` matches `bazaar.checkout.order.placed.v1`).
fn type_matches(event_type: &str, wanted: &str) -> bool {
    let tokens: Vec<&str> = event_type.split('.').collect();
    let want: Vec<&str> = wanted.split('.').collect();
    !want.is_empty() && tokens.windows(want.len()).any(|w| w == want.as_slice())
}

/// `--order`: an order id is a UUID, as the API and `tail` show it.
fn order_id(text: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(text.trim())
        .map_err(|_| "an order id is a UUID, e.g. 0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_matches_whole_or_by_a_run_of_its_tokens() {
        let t = "bazaar.checkout.order.placed.v1";
        assert!(type_matches(t, t));
        assert!(type_matches(t, "order.placed"));
        assert!(type_matches(t, "checkout.order.placed.v1"));
        assert!(!type_matches(t, "order.plac"));
        assert!(!type_matches(t, "order.confirmed"));
    }

    #[test]
    fn a_type_no_event_has_is_refused_and_the_known_ones_are_listed() {
        assert!(known_type("order.placed").is_ok());
        assert!(known_type("bazaar.checkout.order.placed.v2").is_ok());
        let err = known_type("order.plaecd").expect_err("refused").to_string();
        assert!(
            err.contains("\"order.plaecd\"") && err.contains("order.placed"),
            "{err}"
        );
    }

    #[test]
    fn a_filter_reaches_the_streams_whose_subjects_it_overlaps() {
        assert_eq!(
            streams_for("evt.>").expect("some"),
            [
                "EVT_PRODUCT",
                "EVT_CHECKOUT",
                "EVT_WAREHOUSE",
                "EVT_FINANCE"
            ]
        );
        assert_eq!(streams_for("evt.*.order.placed.v1").expect("some").len(), 4);
        assert_eq!(streams_for("dlq.>").expect("some"), ["DLQ"]);
        assert_eq!(streams_for(">").expect("some").len(), 5);
        assert!(streams_for("cmd.>").is_err());
    }
}
