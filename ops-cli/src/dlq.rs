//! `bazaar dlq`: the dead letters in the `DLQ` stream (one per message a
//! consumer gave up on, with the `Bazaar-Dlq-*` headers that say who failed
//! and why). `retry` asks the failing service to run the message again
//! through the consumer that failed it — only that one — and deletes the
//! dead letter once it went through; `drop` deletes without retrying.

mod letters;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use async_nats::RequestErrorKind;
use contracts::subjects::{ops, DLQ_STREAM};
use platform::control::{ControlReply, RedeliverRequest, Redelivered};
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
    List,
    /// Show one dead letter: its headers and payload
    Show {
        /// The dead letter (its DLQ stream sequence)
        id: u64,
    },
    /// Run dead letters again through the consumer that failed them; each
    /// one that goes through is deleted, the others are kept
    Retry {
        #[command(flatten)]
        which: Which,
        /// How long one retry may take (a projection's is a replay from it)
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Delete dead letters without retrying them
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
    /// Dead letters by ID
    #[arg(value_name = "ID")]
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
                let ids = chosen(&js, &which).await?;
                let mut done = Done::default();
                for id in ids {
                    match retry(&client, &js, id, timeout).await {
                        Ok(r) => {
                            if !args.json {
                                println!(
                                    "{id}: {} by {} ({}#{}); dead letter deleted",
                                    r.how, r.consumer, r.stream, r.stream_seq
                                );
                            }
                            done.done.push(id);
                        }
                        Err((error, unreachable)) => {
                            if !args.json {
                                println!("{id}: failed, kept: {error}");
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
                    eprintln!("nothing dropped");
                    return Ok(ExitCode::from(exit::FAILED));
                }
                let stream = dlq_stream(&js).await?;
                let mut done = Done::default();
                for id in ids {
                    match stream.delete_message(id).await {
                        Ok(_) => {
                            if !args.json {
                                println!("{id}: dropped");
                            }
                            done.done.push(id);
                        }
                        Err(e) => {
                            if !args.json {
                                println!("{id}: not dropped: {e}");
                            }
                            done.failed.push(FailedLetter {
                                id,
                                error: e.to_string(),
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

async fn dlq_stream(js: &Context) -> anyhow::Result<jetstream::stream::Stream> {
    js.get_stream(DLQ_STREAM)
        .await
        .map_err(|e| anyhow::anyhow!("the {DLQ_STREAM} stream: {e} (has the shop ever started?)"))
}

async fn list(js: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let letters = letters::read_all(js).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
        return Ok(ExitCode::SUCCESS);
    }
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<6} {:<24} {:<14} {:<16} {:<20} {:<40} {:>5}  ERROR",
        "ID", "TIME", "SERVICE", "CONSUMER", "FROM", "SUBJECT", "TRIES"
    );
    for l in &letters {
        println!(
            "{:<6} {:<24} {:<14} {:<16} {:<20} {:<40} {:>5}  {}",
            l.id,
            l.time,
            l.service,
            l.consumer,
            format!("{}#{}", l.stream, l.stream_seq),
            l.subject,
            l.deliveries,
            letters::shorten(&l.error, 80)
        );
    }
    println!(
        "\n{} dead letter(s); `bazaar dlq show ID` for one in full",
        letters.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn show(js: &Context, id: u64, json: bool) -> anyhow::Result<ExitCode> {
    let letter = letters::read_one(js, id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letter)?);
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
        payload,
    } = letter;
    println!("dead letter {id}, stored {time}");
    println!("  service     {service}");
    println!("  consumer    {consumer}");
    println!("  from        {stream}#{stream_seq} on {subject}");
    println!("  deliveries  {deliveries}");
    println!("  error       {error}");
    if let Some(t) = event_type {
        println!("  event       {t} {}", event_id.unwrap_or_default());
    }
    println!("payload:");
    let pretty = serde_json::from_str::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(payload);
    println!("{pretty}");
    Ok(ExitCode::SUCCESS)
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
/// that went through. The error says why not, and whether the service
/// could not be reached at all.
async fn retry(
    client: &async_nats::Client,
    js: &Context,
    id: u64,
    timeout: Duration,
) -> Result<Redelivered, (String, bool)> {
    let letter = letters::read_one(js, id)
        .await
        .map_err(|e| (format!("{e:#}"), false))?;
    let body = serde_json::to_vec(&RedeliverRequest { dlq_seq: id }).unwrap_or_default();
    let subject = ops::redeliver(&letter.service);
    let request = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(timeout));
    let answer = match client.send_request(subject.clone(), request).await {
        Ok(answer) => answer,
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {
            return Err((
                format!(
                    "no {} instance answers on {subject} (is it running?)",
                    letter.service
                ),
                true,
            ))
        }
        Err(e) if e.kind() == RequestErrorKind::TimedOut => {
            return Err((
                format!("{} did not answer within {timeout:?}", letter.service),
                true,
            ))
        }
        Err(e) => return Err((format!("asking {}: {e}", letter.service), true)),
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
        Ok(ControlReply::Error { kind, message }) => Err((format!("{message} ({kind:?})"), false)),
        Err(e) => Err((format!("odd answer from {}: {e}", letter.service), false)),
    }
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
            Ok(l) => eprintln!(
                "  {id}: {}/{} {} ({})",
                l.service,
                l.consumer,
                l.subject,
                letters::shorten(&l.error, 60)
            ),
            Err(e) => eprintln!("  {id}: {e:#}"),
        }
    }
    eprint!("Drop {} dead letter(s) for good? [y/N] ", ids.len());
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn finish(done: &Done, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(done)?);
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
