//! `bazaar tail`: decoded events as they were stored, one line each (or one
//! CloudEvents JSON document per line), from every stream the subject filter
//! reaches, merged in time order. Reads through ordered (ephemeral)
//! consumers, so it leaves nothing behind on the broker.

mod subjects;
mod summary;

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Context};
use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use contracts::subjects::{DLQ_STREAM, DLQ_SUBJECTS};
use contracts::Team;
use futures::StreamExt;
use platform::dlq;
use tokio::sync::mpsc;

use crate::connect::ConnectArgs;
use crate::duration::parse_duration;
use crate::exit;
use crate::time::{format_time, parse_time, to_chrono};

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
    #[arg(long, value_name = "ID")]
    order: Option<String>,
    /// Start at this stream sequence (the filter must reach one stream)
    #[arg(long, value_name = "N", group = "start")]
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
    /// Stop after printing this many events
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// One stored message.
struct Item {
    source: usize,
    seq: u64,
    time: DateTime<Utc>,
    subject: String,
    payload: Bytes,
    headers: Option<HeaderMap>,
    /// Messages of the filter after this one, when it was delivered.
    pending: u64,
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
                start_sequence: seq.max(1),
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

/// Stops a reader when the tail ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Reader {
    index: usize,
    js: Context,
    stream: String,
    filter_subjects: Vec<String>,
    /// Where the first consumer started; a consumer made again after an
    /// interruption starts after the last message read instead.
    policy: DeliverPolicy,
    consumer: Option<jetstream::consumer::Consumer<OrderedConfig>>,
}

/// Creates the stream's ordered consumer: the stream's end sequence, what
/// the consumer owes, and its reader.
async fn open(
    js: &Context,
    index: usize,
    stream: &str,
    filter: &str,
    deliver_policy: DeliverPolicy,
) -> anyhow::Result<(u64, u64, Reader)> {
    let mut handle = js
        .get_stream(stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {stream}: {e}"))?;
    let end_seq = handle
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("stream {stream}: {e}"))?
        .state
        .last_sequence;
    // A filter that covers the whole stream is left out: the server wants
    // a consumer's filter to lie within the stream's subjects.
    let filter_subjects = if subjects::subset(stream_subjects(stream), filter) {
        Vec::new()
    } else {
        vec![filter.to_owned()]
    };
    // `New` would skip what is published while a consumer is made again.
    let policy = match deliver_policy {
        DeliverPolicy::New => DeliverPolicy::ByStartSequence {
            start_sequence: end_seq + 1,
        },
        other => other,
    };
    let consumer = ordered(js, stream, &filter_subjects, deliver_policy).await?;
    let owed = consumer.cached_info().num_pending;
    let reader = Reader {
        index,
        js: js.clone(),
        stream: stream.to_owned(),
        filter_subjects,
        policy,
        consumer: Some(consumer),
    };
    Ok((end_seq, owed, reader))
}

async fn ordered(
    js: &Context,
    stream: &str,
    filter_subjects: &[String],
    deliver_policy: DeliverPolicy,
) -> anyhow::Result<jetstream::consumer::Consumer<OrderedConfig>> {
    js.create_consumer_on_stream(
        OrderedConfig {
            filter_subjects: filter_subjects.to_vec(),
            deliver_policy,
            ..Default::default()
        },
        stream,
    )
    .await
    .map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))
}

/// Interruptions in a row (a broker restart, a lost consumer) a reader
/// rides out, a second apart, before the tail fails.
const READER_RETRIES: u32 = 30;

impl Reader {
    /// Sends every message to `sender`. When the broker loses its consumer
    /// (a restart), makes another that starts after the last message read,
    /// so a `--follow` carries on where it was.
    async fn run(mut self, sender: mpsc::Sender<anyhow::Result<Item>>) {
        let mut last_seq: Option<u64> = None;
        let mut failures: u32 = 0;
        loop {
            let error = match self.read(&sender, &mut last_seq, &mut failures).await {
                Ok(()) => return,
                Err(error) => error,
            };
            failures += 1;
            let resume = last_seq.map_or(String::new(), |seq| {
                format!("; the last event read was {}#{seq}", self.stream)
            });
            if failures > READER_RETRIES {
                let hint = last_seq.map_or(String::new(), |seq| {
                    format!(" (resume with --from-seq {})", seq + 1)
                });
                let _ = sender
                    .send(Err(anyhow::anyhow!("{error:#}{resume}{hint}")))
                    .await;
                return;
            }
            eprintln!(
                "tail: reading {} interrupted ({error:#}){resume}; resuming",
                self.stream
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Reads until the consumer fails (Err) or the tail ends (Ok).
    async fn read(
        &mut self,
        sender: &mpsc::Sender<anyhow::Result<Item>>,
        last_seq: &mut Option<u64>,
        failures: &mut u32,
    ) -> anyhow::Result<()> {
        let consumer = match self.consumer.take() {
            Some(consumer) => consumer,
            None => {
                let policy = match *last_seq {
                    Some(seq) => DeliverPolicy::ByStartSequence {
                        start_sequence: seq + 1,
                    },
                    None => self.policy,
                };
                ordered(&self.js, &self.stream, &self.filter_subjects, policy).await?
            }
        };
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("reading: {e}"))?;
        while let Some(next) = messages.next().await {
            let message = next.map_err(|e| anyhow::anyhow!("reading: {e}"))?;
            let info = message
                .info()
                .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
            *last_seq = Some(info.stream_sequence);
            *failures = 0;
            let item = Item {
                source: self.index,
                seq: info.stream_sequence,
                time: to_chrono(info.published),
                pending: info.pending,
                subject: message.subject.to_string(),
                payload: message.payload.clone(),
                headers: message.headers.clone(),
            };
            if sender.send(Ok(item)).await.is_err() {
                return Ok(());
            }
        }
        anyhow::bail!("the stream's messages ended")
    }
}

/// Filters and prints items; counts toward `--limit`.
struct Printer {
    event_type: Option<String>,
    order: Option<String>,
    json: bool,
    limit: Option<u64>,
    printed: u64,
}

impl Printer {
    fn new(args: &TailArgs) -> Printer {
        Printer {
            event_type: args.event_type.clone(),
            order: args.order.clone(),
            json: args.json,
            limit: args.limit,
            printed: 0,
        }
    }

    /// Prints the oldest queued item; false when the tail should stop.
    fn print_next(&mut self, sources: &mut [Source]) -> anyhow::Result<bool> {
        let oldest = sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.queue.front().map(|item| (item.time, i)))
            .min();
        let Some((_, index)) = oldest else {
            return Ok(true);
        };
        let stream = sources[index].stream.clone();
        match sources[index].queue.pop_front() {
            Some(item) => self.print(&stream, item),
            None => Ok(true),
        }
    }

    /// Prints one item if it passes the filters; false when the tail
    /// should stop (limit reached, or nobody reads stdout any more).
    fn print(&mut self, stream: &str, item: Item) -> anyhow::Result<bool> {
        if self.limit.is_some_and(|limit| self.printed >= limit) {
            return Ok(false);
        }
        let line = match contracts::catalog::decode_any(&item.payload) {
            Ok(envelope) => {
                if !self.wanted(&envelope) {
                    return Ok(true);
                }
                if self.json {
                    // The stored document, compacted to one line: unknown
                    // fields of newer versions survive.
                    let value: serde_json::Value = serde_json::from_slice(&item.payload)?;
                    match dead_letter_json(&item) {
                        // A dead letter: where it came from, and the event.
                        Some(mut letter) => {
                            letter["event"] = value;
                            serde_json::to_string(&letter)?
                        }
                        None => serde_json::to_string(&value)?,
                    }
                } else {
                    let short = envelope
                        .event_type
                        .strip_prefix("bazaar.")
                        .unwrap_or(&envelope.event_type)
                        .to_owned();
                    let mut summary = summary::summarize(&envelope.data, &envelope.subject);
                    if let Some(dead) = dead_letter_note(&item) {
                        summary = format!("{dead} | {summary}");
                    }
                    format!(
                        "{}  {stream}#{}  {short}  {}  {summary}",
                        format_time(&envelope.time),
                        item.seq,
                        envelope.subject
                    )
                }
            }
            Err(error) => {
                if self.event_type.is_some() || self.order.is_some() {
                    return Ok(true);
                }
                if self.json {
                    // Undecodable is what many dead letters are: shown, with
                    // why, rather than left out.
                    let mut line = dead_letter_json(&item).unwrap_or_else(|| {
                        serde_json::json!({
                            "stream": stream,
                            "seq": item.seq,
                            "subject": item.subject,
                            "time": format_time(&item.time),
                        })
                    });
                    line["error"] = format!("not a Bazaar event: {error}").into();
                    line["payload"] = String::from_utf8_lossy(&item.payload).into();
                    serde_json::to_string(&line)?
                } else {
                    let dead = dead_letter_note(&item).unwrap_or_default();
                    format!(
                        "{}  {stream}#{}  ?  {}  undecodable: {error} {dead}",
                        format_time(&item.time),
                        item.seq,
                        item.subject
                    )
                }
            }
        };
        self.printed += 1;
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{line}") {
            Ok(()) => Ok(self.limit.is_none_or(|limit| self.printed < limit)),
            // `bazaar tail | head`: the reader is gone, which ends the tail.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn wanted(&self, envelope: &contracts::RawEnvelope) -> bool {
        if let Some(wanted) = &self.event_type {
            if !type_matches(&envelope.event_type, wanted) {
                return false;
            }
        }
        if let Some(order) = &self.order {
            let data_order = envelope.data.get("order_id").and_then(|v| v.as_str());
            if envelope.subject != *order && data_order != Some(order.as_str()) {
                return false;
            }
        }
        true
    }
}

/// A dead letter's stored place and origin, from its headers, as JSON.
fn dead_letter_json(item: &Item) -> Option<serde_json::Value> {
    let headers = item.headers.as_ref()?;
    let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let consumer = get(dlq::H_CONSUMER)?;
    Some(serde_json::json!({
        "stream": DLQ_STREAM,
        "seq": item.seq,
        "subject": item.subject,
        "time": format_time(&item.time),
        "dead_letter": {
            "service": get(dlq::H_SERVICE),
            "consumer": consumer,
            "stream": get(dlq::H_STREAM),
            "seq": get(dlq::H_SEQ).and_then(|s| s.parse::<u64>().ok()),
            "subject": get(dlq::H_SUBJECT),
            "deliveries": get(dlq::H_DELIVERIES).and_then(|s| s.parse::<u64>().ok()),
            "error": get(dlq::H_ERROR),
        },
    }))
}

/// Where a dead letter came from and why, from its headers.
fn dead_letter_note(item: &Item) -> Option<String> {
    let headers = item.headers.as_ref()?;
    let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let consumer = get(dlq::H_CONSUMER)?;
    Some(format!(
        "dead letter of {}/{consumer} ({}#{}): {}",
        get(dlq::H_SERVICE).unwrap_or_default(),
        get(dlq::H_STREAM).unwrap_or_default(),
        get(dlq::H_SEQ).unwrap_or_default(),
        get(dlq::H_ERROR).unwrap_or_default()
    ))
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
