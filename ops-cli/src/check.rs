//! `bazaar check`: invariants over the whole event history. Reads every
//! event of the four `EVT_*` streams through ordered (ephemeral) consumers,
//! decodes them with the contracts and reports each order that breaks a
//! rule of the order saga (exit 1 when any does, 0 when none).
//!
//! With `--settled` it also asks the broker whether every durable consumer
//! the code declares has been delivered and has acknowledged every event of
//! its filter (`consumers-caught-up`): every stored event is then accounted
//! for in its consumers' state.
//!
//! An envelope id seen before in the same stream is a duplicate delivery of
//! one event (a republished copy), not a new event: it is counted in
//! `duplicates` and otherwise ignored, as every consumer's inbox ignores it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Context};
use contracts::checkout::decode_order_placed;
use contracts::envelope::RawEnvelope;
use contracts::subjects::evt;
use contracts::Team;
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use crate::connect::ConnectArgs;
use crate::exit;

const EXAMPLES: &str = "\
Examples:
  bazaar check                      every rule over the stored history
  bazaar check --settled --json     pending orders count as violations; one JSON object

Exit code 0 when no rule is violated, 1 when one is (each violation is
listed), 2 on a usage error or no shop, 3 when NATS does not answer.";

/// How long a stream may stay silent while it still owes events.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The rules, by name.
pub const RULES: [&str; 9] = [
    "one-terminal-outcome",
    "unsettled",
    "not-confirmed-and-rejected",
    "shipped-once",
    "no-open-reservation",
    "no-open-payment",
    "invoice-numbers",
    "stock-on-hand",
    "consumers-caught-up",
];

/// `bazaar check`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CheckArgs {
    /// Orders still pending count as violations (`unsettled`)
    #[arg(long)]
    settled: bool,
    /// One JSON object `{orders, unsettled, duplicates, checked_rules, violations, notes}` on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub order_id: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    orders: usize,
    unsettled: usize,
    /// Stored copies of an event already seen (same envelope id).
    duplicates: usize,
    checked_rules: Vec<&'static str>,
    violations: Vec<Violation>,
    /// What the history could not show, so was not checked.
    notes: Vec<String>,
}

/// What the history says about one order: counts of each event type.
#[derive(Debug, Default)]
struct Order {
    placed: u32,
    confirmed: u32,
    rejected: u32,
    cancelled: u32,
    reserved: u32,
    released: u32,
    dispatched: u32,
    authorized: u32,
    voided: u32,
    captured: u32,
    refunded: u32,
    invoiced: u32,
}

/// One product's stock: the first adjustment's on_hand, what changed it
/// since, and the on_hand of its last stock event.
#[derive(Debug, Default)]
struct Stock {
    first_on_hand: Option<i64>,
    /// Later adjustments' deltas minus dispatched quantities.
    change: i64,
    last_on_hand: i64,
}

/// Everything the rules look at.
#[derive(Debug, Default)]
pub struct History {
    orders: BTreeMap<Uuid, Order>,
    /// Invoice number -> the orders it was issued for.
    invoices: BTreeMap<String, Vec<Uuid>>,
    /// Per product, what its stock events say, in stream order.
    stock: BTreeMap<Uuid, Stock>,
    /// Events that did not decode: (subject, error).
    undecodable: Vec<(String, String)>,
    /// The envelope ids seen so far.
    seen: HashSet<Uuid>,
    /// Events skipped because their envelope id was seen before.
    duplicates: usize,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    exit::block_on(async move {
        let client = args.connect.connect().await?;
        let js = jetstream::new(client);
        let mut history = History::default();
        for team in Team::ALL {
            read_stream(&js, team.stream(), &mut history).await?;
        }
        let (mut violations, unsettled) = history.check(args.settled);
        if args.settled {
            violations.extend(consumer_violations(&consumer_lags(&js).await?));
        }
        let report = Report {
            orders: history.orders.values().filter(|o| o.placed > 0).count(),
            unsettled,
            duplicates: history.duplicates,
            checked_rules: RULES.to_vec(),
            violations,
            notes: history
                .first_invoices()
                .into_iter()
                .map(|(year, low)| {
                    format!(
                        "the history's invoices of {year} start at number {low}: the earlier \
                         ones are not in the streams (a stream created anew, or cut by its \
                         limits) and are not checked"
                    )
                })
                .collect(),
        };
        if args.json {
            outln!("{}", serde_json::to_string(&report)?);
        } else {
            for v in &report.violations {
                outln!("{}  order {}  {}", v.rule, v.order_id, v.detail);
            }
            outln!(
                "{} orders, {} unsettled, {} duplicates skipped, {} violations",
                report.orders,
                report.unsettled,
                report.duplicates,
                report.violations.len()
            );
        }
        for (subject, error) in &history.undecodable {
            errln!("warning: {subject}: {error}");
        }
        for note in &report.notes {
            errln!("note: {note}");
        }
        Ok(if report.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::FAILED)
        })
    })
}

/// Reads the stream from its first message up to its last sequence now.
async fn read_stream(js: &Context, stream: &str, history: &mut History) -> anyhow::Result<()> {
    let end_seq = platform::streams::info(js, stream)
        .await
        .map_err(|e| exit::unreachable(format!("stream {stream}: {e}")))?
        .state
        .last_sequence;
    let consumer = js
        .create_consumer_on_stream(
            OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
            stream,
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(());
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))?;
    loop {
        let next = match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
            Ok(Some(next)) => next.map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))?,
            Ok(None) => anyhow::bail!("{stream}: the reader stopped"),
            Err(_) => anyhow::bail!("{stream}: no event for {READ_TIMEOUT:?} while some are owed"),
        };
        let info = next
            .info()
            .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        history.record_stored(stream, seq, next.subject.as_str(), &next.payload);
        if seq >= end_seq || pending == 0 {
            return Ok(());
        }
    }
}

/// How far behind one durable consumer is: (name, not yet delivered,
/// delivered but not acknowledged); `None` counts when it does not exist.
type Lag = (String, Option<(u64, u64)>);

/// Every durable consumer the services declare, and how far behind it is.
pub async fn consumer_lags(js: &Context) -> anyhow::Result<Vec<Lag>> {
    let mut lags = Vec::new();
    for spec in platform::streams::declared_durables() {
        let name = format!("{}/{}", spec.stream, spec.durable);
        let stream = js
            .get_stream(spec.stream)
            .await
            .map_err(|e| exit::unreachable(format!("stream {}: {e}", spec.stream)))?;
        let lag = stream
            .consumer_info(&spec.durable)
            .await
            .ok()
            .map(|info| (info.num_pending, info.num_ack_pending as u64));
        lags.push((name, lag));
    }
    Ok(lags)
}

/// A settled shop's durable consumers have handled everything stored.
fn consumer_violations(lags: &[Lag]) -> Vec<Violation> {
    lags.iter()
        .filter_map(|(name, lag)| {
            let detail = match lag {
                None => format!("{name}: the consumer does not exist"),
                Some((0, 0)) => return None,
                Some((pending, unacked)) => {
                    format!("{name}: {pending} events not delivered, {unacked} not acknowledged")
                }
            };
            Some(Violation {
                rule: "consumers-caught-up",
                order_id: String::new(),
                detail,
            })
        })
        .collect()
}

/// The `order_id` of an event's data.
fn order_id(raw: &RawEnvelope) -> Option<Uuid> {
    raw.data
        .get("order_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
}

impl History {
    /// Adds one event (the tests' way in; the reader uses
    /// [`History::record_stored`]).
    #[cfg(test)]
    pub fn record(&mut self, subject: &str, payload: &[u8]) {
        let outcome = self.try_record(subject, payload);
        if let Err(error) = outcome {
            self.undecodable.push((subject.to_owned(), error));
        }
    }

    /// [`History::record`] of the event at `seq` in `stream`, which a
    /// warning about it names, so an operator can look at it
    /// (`bazaar tail <subject> --from-seq <seq>`).
    fn record_stored(&mut self, stream: &str, seq: u64, subject: &str, payload: &[u8]) {
        let outcome = self.try_record(subject, payload);
        if let Err(error) = outcome {
            self.undecodable
                .push((format!("{subject} ({stream} #{seq})"), error));
        }
    }

    fn try_record(&mut self, subject: &str, payload: &[u8]) -> Result<(), String> {
        // Duplicates are skipped before decoding: a copy of an event is the
        // same event, whatever its subject and version.
        if let Ok(raw) = RawEnvelope::parse(payload) {
            if !self.seen.insert(raw.id) {
                self.duplicates += 1;
                return Ok(());
            }
        }
        if subject == evt::ORDER_PLACED_V1 || subject == evt::ORDER_PLACED_V2 {
            let placed = decode_order_placed(payload).map_err(|e| e.to_string())?;
            self.orders.entry(placed.data.order_id).or_default().placed += 1;
            return Ok(());
        }
        let raw = RawEnvelope::parse(payload).map_err(|e| e.to_string())?;
        if subject == evt::INVOICE_ISSUED_V1 {
            let issued = raw
                .decode::<contracts::finance::InvoiceIssuedV1>()
                .map_err(|e| e.to_string())?;
            let id = issued.data.order_id;
            self.orders.entry(id).or_default().invoiced += 1;
            self.invoices
                .entry(issued.data.number)
                .or_default()
                .push(id);
            return Ok(());
        }
        if subject == evt::STOCK_ADJUSTED_V1 {
            let adjusted = raw
                .decode::<contracts::warehouse::StockAdjustedV1>()
                .map_err(|e| e.to_string())?;
            let stock = self.stock.entry(adjusted.data.product_id).or_default();
            match stock.first_on_hand {
                None => stock.first_on_hand = Some(adjusted.data.on_hand),
                Some(_) => stock.change += adjusted.data.delta,
            }
            stock.last_on_hand = adjusted.data.on_hand;
            return Ok(());
        }
        if let Some(lines) = raw.data.get("lines").filter(|_| {
            matches!(
                subject,
                evt::STOCK_RESERVED_V1 | evt::STOCK_RELEASED_V1 | evt::SHIPMENT_DISPATCHED_V1
            )
        }) {
            let lines: Vec<contracts::warehouse::StockLevelV1> =
                serde_json::from_value(lines.clone()).map_err(|e| e.to_string())?;
            for line in lines {
                let stock = self.stock.entry(line.product_id).or_default();
                if stock.first_on_hand.is_none() {
                    continue;
                }
                if subject == evt::SHIPMENT_DISPATCHED_V1 {
                    stock.change -= line.quantity;
                }
                stock.last_on_hand = line.on_hand;
            }
        }
        let Some(id) = order_id(&raw) else {
            return Ok(()); // stock.adjusted, products, baskets: no order
        };
        let order = self.orders.entry(id).or_default();
        let counter = match subject {
            evt::ORDER_CONFIRMED_V1 => &mut order.confirmed,
            evt::ORDER_REJECTED_V1 => &mut order.rejected,
            evt::ORDER_CANCELLED_V1 => &mut order.cancelled,
            evt::STOCK_RESERVED_V1 => &mut order.reserved,
            evt::STOCK_RELEASED_V1 => &mut order.released,
            evt::SHIPMENT_DISPATCHED_V1 => &mut order.dispatched,
            evt::PAYMENT_AUTHORIZED_V1 => &mut order.authorized,
            evt::PAYMENT_VOIDED_V1 => &mut order.voided,
            evt::PAYMENT_CAPTURED_V1 => &mut order.captured,
            evt::PAYMENT_REFUNDED_V1 => &mut order.refunded,
            _ => return Ok(()),
        };
        *counter += 1;
        Ok(())
    }

    /// The violations, and how many placed orders are still pending.
    pub fn check(&self, settled: bool) -> (Vec<Violation>, usize) {
        let mut out = Vec::new();
        let mut unsettled = 0;
        for (id, o) in &self.orders {
            let mut v = |rule: &'static str, detail: String| {
                out.push(Violation {
                    rule,
                    order_id: id.to_string(),
                    detail,
                });
            };
            if o.placed == 0 {
                v(
                    "one-terminal-outcome",
                    "events about an order that was never placed".to_owned(),
                );
                continue;
            }
            if o.placed > 1 {
                v("one-terminal-outcome", format!("placed {} times", o.placed));
            }
            let terminals = o.confirmed + o.rejected;
            let pending = terminals == 0 && o.cancelled == 0;
            if pending {
                unsettled += 1;
                if settled {
                    v(
                        "unsettled",
                        "placed, but neither confirmed, rejected nor cancelled".to_owned(),
                    );
                }
            }
            let rejected_and_cancelled = o.rejected > 0 && o.cancelled > 0;
            if o.confirmed > 1
                || o.rejected > 1
                || o.cancelled > 1
                || terminals > 1
                || rejected_and_cancelled
            {
                v(
                    "one-terminal-outcome",
                    format!(
                        "confirmed {}, rejected {}, cancelled {}",
                        o.confirmed, o.rejected, o.cancelled
                    ),
                );
            }
            if o.confirmed > 0 && o.rejected > 0 {
                v(
                    "not-confirmed-and-rejected",
                    format!("confirmed {} and rejected {}", o.confirmed, o.rejected),
                );
            }
            if o.dispatched > 0
                && (o.dispatched != 1
                    || o.reserved != 1
                    || o.captured != 1
                    || o.invoiced != 1
                    || o.released != 0)
            {
                v(
                    "shipped-once",
                    format!(
                        "dispatched {}, reserved {}, captured {}, invoiced {}, released {}",
                        o.dispatched, o.reserved, o.captured, o.invoiced, o.released
                    ),
                );
            }
            if o.dispatched > 0 && (o.cancelled > 0 || o.refunded > 0) {
                v(
                    "shipped-once",
                    format!(
                        "dispatched {}, but cancelled {} and refunded {}",
                        o.dispatched, o.cancelled, o.refunded
                    ),
                );
            }
            let failed = o.rejected > 0 || o.cancelled > 0;
            if failed && o.reserved > o.released + o.dispatched {
                v(
                    "no-open-reservation",
                    format!(
                        "reserved {}, released {}, dispatched {}",
                        o.reserved, o.released, o.dispatched
                    ),
                );
            }
            if failed && o.authorized > o.voided + o.captured {
                v(
                    "no-open-payment",
                    format!(
                        "authorized {}, voided {}, captured {}",
                        o.authorized, o.voided, o.captured
                    ),
                );
            }
            if o.cancelled > 0 && o.captured > o.refunded {
                v(
                    "no-open-payment",
                    format!(
                        "cancelled, but captured {} and refunded {}",
                        o.captured, o.refunded
                    ),
                );
            }
        }
        out.extend(self.invoice_violations());
        for (product, stock) in &self.stock {
            let Some(first) = stock.first_on_hand else {
                continue;
            };
            if first + stock.change != stock.last_on_hand {
                out.push(Violation {
                    rule: "stock-on-hand",
                    order_id: String::new(),
                    detail: format!(
                        "product {product}: on_hand {} at the end, expected {} (first \
                         adjusted on_hand {first}, later deltas minus dispatched {:+})",
                        stock.last_on_hand,
                        first + stock.change,
                        stock.change
                    ),
                });
            }
        }
        (out, unsettled)
    }

    /// Invoice numbers `YYYY-NNNNNN`: unique, and per year no gap from the
    /// lowest number the history holds to the highest (below it, the
    /// numbers were issued in a history the streams no longer hold:
    /// [`History::first_invoices`], reported as notes).
    fn invoice_violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut years: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        for (number, orders) in &self.invoices {
            let order_id = orders.first().map(Uuid::to_string).unwrap_or_default();
            if orders.len() > 1 {
                out.push(Violation {
                    rule: "invoice-numbers",
                    order_id: order_id.clone(),
                    detail: format!("invoice {number} issued {} times", orders.len()),
                });
            }
            let parsed = number
                .split_once('-')
                .and_then(|(year, seq)| seq.parse::<u64>().ok().map(|seq| (year, seq)));
            match parsed {
                Some((year, seq)) => {
                    years.entry(year).or_default().insert(seq);
                }
                None => out.push(Violation {
                    rule: "invoice-numbers",
                    order_id,
                    detail: format!("invoice number {number:?} is not YYYY-NNNNNN"),
                }),
            }
        }
        for (year, seqs) in years {
            let (Some(&min), Some(&max)) = (seqs.first(), seqs.last()) else {
                continue;
            };
            // Numbers below the lowest in the history are not in the
            // streams (a stream created anew, or a history cut by limits):
            // gaps are only looked for from there ([`History::first_invoices`]).
            let missing: Vec<u64> = (min..=max).filter(|n| !seqs.contains(n)).collect();
            if !missing.is_empty() {
                let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
                out.push(Violation {
                    rule: "invoice-numbers",
                    order_id: String::new(),
                    detail: format!(
                        "{year}: {} numbers missing between {min} and {max}: {}",
                        missing.len(),
                        shown.join(", ")
                    ),
                });
            }
        }
        out
    }

    /// The years whose invoice numbers in the history start above 1, with
    /// the lowest: the numbers below it were issued in a history the
    /// streams no longer hold, so they are not checked.
    fn first_invoices(&self) -> Vec<(String, u64)> {
        let mut lowest: BTreeMap<&str, u64> = BTreeMap::new();
        for number in self.invoices.keys() {
            if let Some((year, seq)) = number
                .split_once('-')
                .and_then(|(year, seq)| seq.parse::<u64>().ok().map(|seq| (year, seq)))
            {
                let low = lowest.entry(year).or_insert(seq);
                *low = (*low).min(seq);
            }
        }
        lowest
            .into_iter()
            .filter(|(_, low)| *low > 1)
            .map(|(year, low)| (year.to_owned(), low))
            .collect()
    }
}

#[cfg(test)]
mod tests;
