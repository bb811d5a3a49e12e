//! `bazaar replay`: asks a service to rebuild its projections from their
//! streams (`ops.<service>.replay`, see `platform::control`), shows the
//! progress it reports, and prints what it did. The service does the work:
//! only it knows its projectors, and only it can pause its own followers;
//! its reactions are never run.

mod progress;

use std::process::ExitCode;
use std::time::Duration;

use async_nats::RequestErrorKind;
use chrono::{DateTime, Utc};
use contracts::subjects::{ops, SERVICES};
use futures::StreamExt;
use platform::control::{ControlErrorKind, ControlReply, ReplayProgress, ReplayRequest};
use platform::replay::{Report, Start};
use serde::Serialize;

use crate::connect::ConnectArgs;
use crate::duration::parse_duration;
use crate::exit;
use crate::time::parse_time;
use progress::Display;

const EXAMPLES: &str = "\
Examples:
  bazaar replay edge-api --from-start --dry-run          what a rebuild would do
  bazaar replay edge-api --from-start                    rebuild every edge view
  bazaar replay edge-api --projection edge.product --from-seq 1200
  bazaar replay edge-api --from-time 2025-11-24T07:00:00Z --json

Readers keep the old view until the rebuilt one is committed; live events
wait and are applied after. From the start, a projection that shares a table
with the one asked for is rebuilt with it (the dry run says so).

A view whose stream was created anew (deleted, or <data-dir>/nats lost), or
cut from below (limits, a purge) since the view was built, holds rows the
stream can no longer rebuild: from the start it is refused unless
--discard-lost-history; --projection NAME --from-seq 1 re-applies
what the new stream holds and keeps the rest.";

/// How long the service may stay silent during a replay before the CLI
/// gives up on it (it reports progress four times a second).
const SILENCE: Duration = Duration::from_secs(30);

/// `bazaar replay`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ReplayArgs {
    /// The service whose projections to rebuild (today: edge-api)
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(SERVICES))]
    service: String,
    /// Only this projection (and, from the start, those sharing its tables)
    #[arg(long, value_name = "NAME")]
    projection: Option<String>,
    #[command(flatten)]
    start: StartArgs,
    /// Say what would happen (projections, stream ranges, event counts); change nothing
    #[arg(long)]
    dry_run: bool,
    /// With --from-start: also rebuild views whose stream was created anew
    /// (deleted, or the broker's store lost), emptying for good what they
    /// hold from the events that are gone. Refused without it.
    #[arg(long)]
    discard_lost_history: bool,
    /// The report as JSON on stdout (progress lines still go to stderr)
    #[arg(long)]
    json: bool,
    /// Give up waiting for the report after this long (the replay goes on)
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct StartArgs {
    /// Empty the views and apply each stream from its first event
    #[arg(long)]
    from_start: bool,
    /// Re-apply from this stream sequence on top of the views
    #[arg(long, value_name = "N")]
    from_seq: Option<u64>,
    /// Re-apply from the first event at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from_time: Option<DateTime<Utc>>,
}

impl StartArgs {
    fn start(&self) -> Start {
        match (self.from_seq, self.from_time) {
            (Some(seq), _) => Start::Sequence { seq },
            (_, Some(time)) => Start::Time { time },
            _ => Start::Beginning,
        }
    }
}

/// `--json` output.
#[derive(Debug, Serialize)]
struct Output<'a> {
    service: &'a str,
    dry_run: bool,
    #[serde(flatten)]
    report: &'a Report,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    // clap's `requires` takes an unset flag for a given one.
    if args.discard_lost_history && !args.start.from_start {
        return Err(exit::usage(
            "--discard-lost-history goes with --from-start only: a replay from a sequence \
             or a time keeps what the views hold",
        ));
    }
    exit::block_on(async move {
        let client = args.connect.connect().await?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let request = ReplayRequest {
            id: id.clone(),
            projection: args.projection.clone(),
            start: args.start.start(),
            dry_run: args.dry_run,
            discard_lost_history: args.discard_lost_history,
        };
        let mut progress = client
            .subscribe(ops::replay_progress(&args.service, &id))
            .await
            .map_err(|e| exit::unreachable(format!("subscribing to the replay's progress: {e}")))?;
        let subject = ops::replay(&args.service);
        let ask = client.send_request(
            subject.clone(),
            async_nats::Request::new()
                .payload(serde_json::to_vec(&request)?.into())
                .timeout(Some(args.timeout)),
        );
        tokio::pin!(ask);
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let mut display = Display::new(args.json || args.dry_run);
        let answer = loop {
            tokio::select! {
                answer = &mut ask => break answer,
                _ = &mut interrupted => {
                    display.abandon();
                    if !args.dry_run {
                        // The service replays in its own transactions; the
                        // CLI only watches. Say so rather than vanish.
                        errln!(
                            "interrupted: the replay goes on in {} and commits when done \
                             (its log says \"replay done\"); readers keep the old view until then",
                            args.service
                        );
                    }
                    return Ok(ExitCode::from(exit::INTERRUPTED));
                }
                next = tokio::time::timeout(SILENCE, progress.next()), if !args.dry_run => match next {
                    Ok(Some(message)) => {
                        if let Ok(p) = serde_json::from_slice::<ReplayProgress>(&message.payload) {
                            display.update(p);
                        }
                    }
                    Ok(None) => {}
                    Err(_) => {
                        display.abandon();
                        return Err(anyhow::anyhow!(
                            "{} said nothing for {SILENCE:?}; the replay may still be running \
                             (its logs say), or that instance died and nothing changed",
                            args.service
                        ));
                    }
                },
            }
        };
        display.finish();
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                return Err(exit::unreachable(format!(
                    "no {} instance answers on {subject} (is it running?)",
                    args.service
                )))
            }
            Err(e) if e.kind() == RequestErrorKind::TimedOut => {
                return Err(anyhow::anyhow!(
                    "no report within {:?}; the replay may still be running",
                    args.timeout
                ))
            }
            Err(e) => return Err(exit::unreachable(format!("asking {}: {e}", args.service))),
        };
        let report = match serde_json::from_slice::<ControlReply<Report>>(&answer.payload)? {
            ControlReply::Ok { value } => value,
            ControlReply::Error { kind, message } => {
                return Err(match kind {
                    ControlErrorKind::Invalid | ControlErrorKind::NotFound => exit::usage(message),
                    ControlErrorKind::Busy | ControlErrorKind::Failed => {
                        anyhow::anyhow!("replay of {} failed: {message}", args.service)
                    }
                })
            }
        };
        if args.json {
            let output = Output {
                service: &args.service,
                dry_run: args.dry_run,
                report: &report,
            };
            outln!("{}", serde_json::to_string_pretty(&output)?);
        } else {
            print_report(&args.service, args.dry_run, &report);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_report(service: &str, dry_run: bool, report: &Report) {
    let from = match &report.plan.start {
        Start::Beginning => "the start".to_owned(),
        Start::Sequence { seq } => format!("sequence {seq}"),
        Start::Time { time } => format!("{time}"),
    };
    if dry_run {
        outln!("dry run, nothing changed: a replay of {service} from {from} would");
    } else {
        let took = if report.elapsed_ms < 1000 {
            format!("{} ms", report.elapsed_ms)
        } else {
            format!("{:.1} s", report.elapsed_ms as f64 / 1000.0)
        };
        outln!(
            "replayed {service} from {from}: {} event(s) in {took} ({:.0} events/s)",
            report.applied + report.skipped,
            report.events_per_sec
        );
    }
    for p in &report.plan.projections {
        let range = if p.from_seq > p.to_seq {
            "nothing to re-apply".to_owned()
        } else {
            format!(
                "{}#{}..#{}: {} event(s)",
                p.stream, p.from_seq, p.to_seq, p.events
            )
        };
        let clears = if p.clears.is_empty() {
            String::new()
        } else {
            format!(
                ", {} {}",
                if dry_run { "emptying" } else { "emptied" },
                p.clears.join(", ")
            )
        };
        outln!(
            "  {:<16} checkpoint {} → {}; {range}{clears}",
            p.name,
            p.checkpoint,
            p.to_seq
        );
        if let Some(note) = &p.note {
            outln!("  {:<16} ({note})", "");
        }
    }
    if report.skipped > 0 {
        outln!(
            "skipped {} poison event(s), as the live projection did (dead-lettered when first met; `bazaar dlq list`):",
            report.skipped
        );
        for s in &report.skipped_events {
            outln!("  {} #{}: {}", s.projection, s.stream_seq, s.error);
        }
    }
}
