//! Printing the tail: filters, text lines or JSON, `--limit`.

use std::io::Write;

use contracts::subjects::DLQ_STREAM;
use platform::dlq;

use super::reader::Item;
use super::{summary, type_matches, Source, TailArgs};
use crate::time::format_time;

/// Filters and prints items; counts toward `--limit`.
pub struct Printer {
    event_type: Option<String>,
    order: Option<String>,
    json: bool,
    limit: Option<u64>,
    printed: u64,
}

impl Printer {
    pub fn new(args: &TailArgs) -> Printer {
        Printer {
            event_type: args.event_type.clone(),
            order: args.order.map(|id| id.to_string()),
            json: args.json,
            limit: args.limit,
            printed: 0,
        }
    }

    /// Prints the oldest queued item; false when the tail should stop.
    pub fn print_next(&mut self, sources: &mut [Source]) -> anyhow::Result<bool> {
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
    pub fn print(&mut self, stream: &str, item: Item) -> anyhow::Result<bool> {
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

/// Where a dead letter came from and why: its DLQ headers.
struct Origin {
    service: Option<String>,
    consumer: String,
    stream: Option<String>,
    seq: Option<String>,
    subject: Option<String>,
    deliveries: Option<String>,
    error: Option<String>,
}

impl Origin {
    /// None for a message that is no dead letter.
    fn of(item: &Item) -> Option<Origin> {
        let headers = item.headers.as_ref()?;
        let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        Some(Origin {
            consumer: get(dlq::H_CONSUMER)?,
            service: get(dlq::H_SERVICE),
            stream: get(dlq::H_STREAM),
            seq: get(dlq::H_SEQ),
            subject: get(dlq::H_SUBJECT),
            deliveries: get(dlq::H_DELIVERIES),
            error: get(dlq::H_ERROR),
        })
    }
}

/// A dead letter's stored place and origin, as JSON.
fn dead_letter_json(item: &Item) -> Option<serde_json::Value> {
    let o = Origin::of(item)?;
    Some(serde_json::json!({
        "stream": DLQ_STREAM,
        "seq": item.seq,
        "subject": item.subject,
        "time": format_time(&item.time),
        "dead_letter": {
            "service": o.service,
            "consumer": o.consumer,
            "stream": o.stream,
            "seq": o.seq.and_then(|s| s.parse::<u64>().ok()),
            "subject": o.subject,
            "deliveries": o.deliveries.and_then(|s| s.parse::<u64>().ok()),
            "error": o.error,
        },
    }))
}

/// Where a dead letter came from and why, as text.
fn dead_letter_note(item: &Item) -> Option<String> {
    let o = Origin::of(item)?;
    Some(format!(
        "dead letter of {}/{} ({}#{}): {}",
        o.service.unwrap_or_default(),
        o.consumer,
        o.stream.unwrap_or_default(),
        o.seq.unwrap_or_default(),
        o.error.unwrap_or_default()
    ))
}
