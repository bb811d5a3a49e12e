//! `bazaar dlq`: the dead letters in the `DLQ` stream (one per message a
//! consumer gave up on, with the `Bazaar-Dlq-*` headers that say who failed
//! and why). `retry` reads the dead letter and sends it to the failing
//! service (no service may read the DLQ itself), which runs it again
//! through the consumer that failed it — only that one; the dead letter is
//! deleted once that went through. `drop` deletes without retrying.

mod letters;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use async_nats::RequestErrorKind;
use contracts::subjects::{ops, DLQ_STREAM};
use platform::control::{ControlErrorKind, ControlReply, RedeliverRequest, Redelivered};
use serde::Serialize;

use crate::connect::ConnectArgs;
use crate::duration::parse_duration;
use crate::exit;
use letters::DeadLetter;

const EXAMPLES: &str = "\
Examples:
  bazaar dlq list                        every dead letter: who failed, on what, why
  bazaar dlq show 42                     one in full, with its payload
  bazaar dlq retry 42 43                 run them again through the consumer that failed
  bazaar dlq retry --all --json
  bazaar dlq drop 42                     delete after confirming (on a terminal)
  bazaar dlq drop --all --yes            delete every one, no questions

ID is the dead letter's sequence in the DLQ stream (the first column of `list`).";

/// `bazaar dlq`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
    #[command(flatten)]
    connect: ConnectArgs,
    /// JSON on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// List the dead letters, oldest first
    #[command(after_help = "Examples:\n  bazaar dlq list\n  bazaar dlq list --json | jq '.[].id'")]
    List,
    /// Show one dead letter: its headers and payload
    #[command(after_help = "Examples:\n  bazaar dlq show 42\n  bazaar dlq show 42 --json")]
    Show {
        /// The dead letter (its DLQ stream sequence, from 1)
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
    },
    /// Run dead letters again through the consumer that failed them; each
    /// one that goes through is deleted, the others are kept
    #[command(
        after_help = "Examples:\n  bazaar dlq retry 42 43\n  bazaar dlq retry --all --timeout 10m --json\n\n\
        Letters are retried in the order their events happened (the events' own\n\
        time, then FROM in `list`), whatever the order given; retry an order's\n\
        letters together (ABOUT in `list`): a later event retried alone first is\n\
        handled as arriving late."
    )]
    Retry {
        #[command(flatten)]
        which: Which,
        /// How long one retry may take (a projection's is a replay from it)
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Delete dead letters without retrying them
    #[command(
        after_help = "Examples:\n  bazaar dlq drop 42          asks first (on a terminal)\n  bazaar dlq drop --all --yes\n\n\
        A dropped event is never handled by the consumer that failed it. Dropping one\n\
        of an order's events can leave that order half done (an order.rejected that\n\
        finance never saw leaves its payment authorised if its order.placed is\n\
        retried); prefer retry, and run `bazaar check --settled` after a drop."
    )]
    Drop {
        #[command(flatten)]
        which: Which,
        /// Do not ask (required when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// Dead letters by ID (from 1; the first column of `list`)
    #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
    ids: Vec<u64>,
    /// Every dead letter
    #[arg(long)]
    all: bool,
}

/// What `retry` and `drop` did, for `--json`.
#[derive(Debug, Default, Serialize)]
struct Done {
    done: Vec<u64>,
    failed: Vec<FailedLetter>,
}

#[derive(Debug, Serialize)]
struct FailedLetter {
    id: u64,
    error: String,
    /// The service did not answer (as opposed to: it ran and failed).
    unreachable: bool,
}

pub fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    exit::block_on(async move {
        let client = args.connect.connect().await?;
        let js = jetstream::new(client.clone());
        match args.command {
            DlqCommand::List => list(&js, args.json).await,
            DlqCommand::Show { id } => show(&js, id, args.json).await,
            DlqCommand::Retry { which, timeout } => {
                let mut ids = chosen(&js, &which).await?;
                ids.sort_unstable();
                ids.dedup();
                let all = letters::read_all(&js).await.unwrap_or_default();
                in_event_order(&mut ids, &all);
                warn_of_letters_left_behind(&all, &ids);
                let mut done = Done::default();
                for id in ids {
                    match retry(&client, &js, id, timeout).await {
                        Ok(r) => {
                            if !args.json {
                                outln!(
                                    "{id}: {} by {} ({}#{}); dead letter deleted",
                                    r.how,
                                    r.consumer,
                                    r.stream,
                                    r.stream_seq
                                );
                            }
                            done.done.push(id);
                        }
                        Err((error, unreachable)) => {
                            if !args.json {
                                let held = all.iter().any(|l| l.id == id);
                                let what = if held { "failed, kept" } else { "not retried" };
                                outln!("{id}: {what}: {error}");
                            }
                            done.failed.push(FailedLetter {
                                id,
                                error,
                                unreachable,
                            });
                        }
                    }
                }
                finish(&done, args.json)
            }
            DlqCommand::Drop { which, yes } => {
                let ids = chosen(&js, &which).await?;
                if ids.is_empty() {
                    return finish(&Done::default(), args.json);
                }
                if !yes && !confirm(&js, &ids).await? {
                    errln!("nothing dropped");
                    return Ok(ExitCode::from(exit::FAILED));
                }
                let stream = dlq_stream(&js).await?;
                let mut done = Done::default();
                for id in ids {
                    match drop_one(&stream, id).await {
                        Ok(()) => {
                            if !args.json {
                                outln!("{id}: dropped");
                            }
                            done.done.push(id);
                        }
                        Err(error) => {
                            if !args.json {
                                outln!("{id}: not dropped: {error}");
                            }
                            done.failed.push(FailedLetter {
                                id,
                                error,
                                unreachable: false,
                            });
                        }
                    }
                }
                finish(&done, args.json)
            }
        }
    })
}

/// Deletes dead letter `id`, or says why not. For a sequence the DLQ does
/// not hold the broker answers "stream store EOF", which helps no one.
async fn drop_one(stream: &jetstream::stream::Stream, id: u64) -> Result<(), String> {
    let Err(error) = stream.delete_message(id).await else {
        return Ok(());
    };
    if letters::is_missing(stream, id).await {
        return Err(letters::missing(id));
    }
    Err(error.to_string())
}

async fn dlq_stream(js: &Context) -> anyhow::Result<jetstream::stream::Stream> {
    js.get_stream(DLQ_STREAM)
        .await
        .map_err(|e| crate::streams::unreadable(DLQ_STREAM, &e))
}

async fn list(js: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let letters = letters::read_all(js).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&letters)?);
        return Ok(ExitCode::SUCCESS);
    }
    if letters.is_empty() {
        outln!("no dead letters");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<6} {:<24} {:<14} {:<16} {:<20} {:<40} {:<36} {:>5}  ERROR",
        "ID",
        "TIME",
        "SERVICE",
        "CONSUMER",
        "FROM",
        "SUBJECT",
        "ABOUT",
        "TRIES"
    );
    for l in &letters {
        outln!(
            "{:<6} {:<24} {:<14} {:<16} {:<20} {:<40} {:<36} {:>5}  {}",
            l.id,
            l.time,
            l.service,
            l.consumer,
            format!("{}#{}", l.stream, l.stream_seq),
            l.subject,
            l.about.as_deref().unwrap_or("?"),
            l.deliveries,
            letters::shorten(&l.error, 80)
        );
    }
    outln!(
        "\n{} dead letter(s); `bazaar dlq show ID` for one in full",
        letters.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn show(js: &Context, id: u64, json: bool) -> anyhow::Result<ExitCode> {
    let letter = letters::read_one(js, id).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&letter)?);
        return Ok(ExitCode::SUCCESS);
    }
    let DeadLetter {
        id,
        time,
        service,
        consumer,
        stream,
        stream_seq,
        subject,
        deliveries,
        error,
        event_type,
        event_id,
        event_time,
        about,
        payload,
    } = letter;
    outln!("dead letter {id}, stored {time}");
    outln!("  service     {service}");
    outln!("  consumer    {consumer}");
    outln!("  from        {stream}#{stream_seq} on {subject}");
    outln!("  deliveries  {deliveries}");
    outln!("  error       {error}");
    if let Some(t) = event_type {
        outln!("  event       {t} {}", event_id.unwrap_or_default());
    }
    if let Some(at) = event_time {
        outln!("  happened    {at}");
    }
    if let Some(about) = about {
        outln!("  about       {about}");
    }
    outln!("payload:");
    let pretty = serde_json::from_str::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(payload);
    outln!("{pretty}");
    Ok(ExitCode::SUCCESS)
}

/// Orders `ids` as their events happened: a dead letter filed later may be
/// of an earlier event (a retry waiting frees its lane), and an order's
/// events must be handled in the order they happened. By the events' own
/// time (an order's events come from several streams), then by stream
/// position; a letter whose event says no time keeps its filing time. Ids
/// the DLQ does not hold (`all` read without them) go last, as asked.
fn in_event_order(ids: &mut [u64], all: &[DeadLetter]) {
    let when = |l: &DeadLetter| {
        l.event_time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .or_else(|| chrono::DateTime::parse_from_rfc3339(&l.time).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    ids.sort_by_key(|id| match all.iter().find(|l| l.id == *id) {
        Some(l) => (0, when(l), l.stream.clone(), l.stream_seq, *id),
        None => (1, None, String::new(), 0, *id),
    });
}

/// Warns (on stderr) of letters about the same order or product, for the
/// same service, that are not being retried with `ids`: an order's events
/// must be handled in the order they happened, so retrying one and leaving another
/// (an `order.rejected` after the `order.placed`) can leave that order
/// half-handled.
fn warn_of_letters_left_behind(all: &[DeadLetter], ids: &[u64]) {
    let retried: Vec<&DeadLetter> = all.iter().filter(|l| ids.contains(&l.id)).collect();
    for letter in &retried {
        let Some(about) = &letter.about else { continue };
        let others: Vec<String> = all
            .iter()
            .filter(|o| {
                !ids.contains(&o.id)
                    && o.service == letter.service
                    && o.about.as_ref() == Some(about)
            })
            .map(|o| o.id.to_string())
            .collect();
        if !others.is_empty() {
            let mut together: Vec<u64> = all
                .iter()
                .filter(|o| o.service == letter.service && o.about.as_ref() == Some(about))
                .map(|o| o.id)
                .collect();
            together.sort_unstable();
            let together: Vec<String> = together.iter().map(u64::to_string).collect();
            errln!(
                "warning: dead letter(s) {} of {} about {about} stay behind; retry them \
                 together (bazaar dlq retry {}): they are handled in the order their \
                 events came",
                others.join(", "),
                letter.service,
                together.join(" ")
            );
        }
    }
}

/// The IDs asked for, or every dead letter's.
async fn chosen(js: &Context, which: &Which) -> anyhow::Result<Vec<u64>> {
    if which.all {
        Ok(letters::read_all(js).await?.iter().map(|l| l.id).collect())
    } else {
        Ok(which.ids.clone())
    }
}

/// Asks the failing service to run the dead letter again; deletes it when
/// that went through. The dead letter travels inside the request: no
/// service may read the DLQ. The error says why not, and whether the
/// service could not be reached at all.
async fn retry(
    client: &async_nats::Client,
    js: &Context,
    id: u64,
    timeout: Duration,
) -> Result<Redelivered, (String, bool)> {
    let (service, letter) = letters::read_for_retry(js, id)
        .await
        .map_err(|e| (format!("{e:#}"), false))?;
    let payload_len = letter.payload.len();
    let body = serde_json::to_vec(&RedeliverRequest {
        dlq_seq: id,
        letter,
    })
    .map_err(|e| (format!("encoding the request: {e}"), false))?;
    fits(body.len(), client.max_payload()).map_err(|e| {
        (
            format!("dead letter {id} (payload {payload_len} bytes in base64): {e}"),
            false,
        )
    })?;
    let subject = ops::redeliver(&service);
    let request = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(timeout));
    let answer = match client.send_request(subject.clone(), request).await {
        Ok(answer) => answer,
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {
            return Err((
                format!("no {service} instance answers on {subject} (is it running?)"),
                true,
            ))
        }
        Err(e) if e.kind() == RequestErrorKind::TimedOut => {
            return Err((format!("{service} did not answer within {timeout:?}"), true))
        }
        Err(e) if e.kind() == RequestErrorKind::MaxPayloadExceeded => {
            return Err((format!("dead letter {id} is too large to send: {e}"), false))
        }
        Err(e) => return Err((format!("asking {service}: {e}"), true)),
    };
    match serde_json::from_slice::<ControlReply<Redelivered>>(&answer.payload) {
        Ok(ControlReply::Ok { value }) => {
            let stream = dlq_stream(js)
                .await
                .map_err(|e| (format!("{e:#}"), false))?;
            stream.delete_message(id).await.map_err(|e| {
                (
                    format!("went through, but deleting the dead letter failed: {e}"),
                    false,
                )
            })?;
            Ok(value)
        }
        Ok(ControlReply::Error { kind, message }) => {
            let message = match kind {
                // It ran and failed: the message says why.
                ControlErrorKind::Failed => message,
                ControlErrorKind::Invalid => format!("refused: {message}"),
                ControlErrorKind::NotFound => format!("not found: {message}"),
                ControlErrorKind::Busy => format!("busy: {message}"),
            };
            Err((message, false))
        }
        Err(e) => Err((format!("odd answer from {service}: {e}"), false)),
    }
}

/// Whether a redeliver request of `size` bytes fits the broker's
/// `max_payload`. A dead letter may be as large as that itself, and base64
/// inside JSON makes it a third larger: such a one cannot be retried this
/// way, and is kept.
fn fits(size: usize, max_payload: usize) -> Result<(), String> {
    if size <= max_payload {
        return Ok(());
    }
    Err(format!(
        "too large to retry: the request would be {size} bytes, over the broker's \
         max_payload of {max_payload} bytes (raise it in the broker's config to retry this \
         one; `bazaar dlq show` shows it)"
    ))
}

/// Shows what `drop` would delete and asks; refuses without a terminal.
async fn confirm(js: &Context, ids: &[u64]) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(exit::usage(
            "dropping deletes dead letters for good: pass --yes to drop without a terminal",
        ));
    }
    for id in ids {
        match letters::read_one(js, *id).await {
            Ok(l) => errln!(
                "  {id}: {}/{} {} ({})",
                l.service,
                l.consumer,
                l.subject,
                letters::shorten(&l.error, 60)
            ),
            Err(e) => errln!("  {id}: {e:#}"),
        }
    }
    errout!("Drop {} dead letter(s) for good? [y/N] ", ids.len());
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn finish(done: &Done, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(done)?);
    }
    let code = if done.failed.is_empty() {
        ExitCode::SUCCESS
    } else if done.failed.iter().all(|f| f.unreachable) {
        ExitCode::from(exit::UNREACHABLE)
    } else {
        ExitCode::from(exit::FAILED)
    };
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_over_the_brokers_max_payload_is_refused_with_both_sizes() {
        assert!(fits(1024, 1024).is_ok());
        let error = fits(1_398_200, 1_048_576).expect_err("too large");
        assert!(error.contains("1398200"), "{error}");
        assert!(error.contains("1048576"), "{error}");
        assert!(error.contains("max_payload"), "{error}");
    }

    #[test]
    fn the_largest_dead_letter_the_broker_takes_does_not_fit_a_request() {
        // A dead letter may be as large as max_payload; in base64 inside
        // JSON it is a third larger, so `fits` must catch it before sending.
        let max_payload = 1_048_576;
        let letter = platform::dlq::Letter::new(
            &contracts::subjects::dlq_subject("a", "b"),
            None,
            &vec![0u8; max_payload],
        );
        let body = serde_json::to_vec(&RedeliverRequest { dlq_seq: 1, letter })
            .expect("a request serializes");
        assert!(fits(body.len(), max_payload).is_err());
    }

    #[test]
    fn letters_are_retried_in_the_order_their_events_happened() {
        let letter = |id: u64, stream: &str, stream_seq: u64| DeadLetter {
            id,
            time: String::new(),
            service: "finance-svc".to_owned(),
            consumer: "finance-svc".to_owned(),
            stream: stream.to_owned(),
            stream_seq,
            subject: String::new(),
            deliveries: 6,
            error: String::new(),
            event_type: None,
            event_id: None,
            event_time: None,
            about: None,
            payload: String::new(),
        };
        let at = |mut l: DeadLetter, time: &str| {
            l.event_time = Some(time.to_owned());
            l
        };
        // Letter 7 was filed first, of the later event; the warehouse's
        // event (letter 9) happened between the two.
        let all = [
            at(letter(7, "EVT_CHECKOUT", 1810), "2026-12-07T10:00:03Z"),
            at(letter(8, "EVT_CHECKOUT", 1809), "2026-12-07T10:00:01Z"),
            at(
                letter(9, "EVT_WAREHOUSE", 12),
                "2026-12-07T10:00:02.5+00:00",
            ),
        ];
        let mut ids = vec![7, 8, 9, 99];
        in_event_order(&mut ids, &all);
        assert_eq!(ids, vec![8, 9, 7, 99]);
    }
}
