//! The figures of a load run: counts that add up, rates, latency
//! percentiles; printed as text or as one JSON object.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::mix::Kind;
use super::order::Outcome;
use crate::progress::rate;

/// Different error messages printed one by one; the rest are only counted.
const SHOWN_ERRORS: usize = 5;

/// The run's parameters, echoed in the report.
#[derive(Debug, Serialize)]
pub struct Setup {
    pub url: String,
    pub requested: u64,
    pub concurrency: u16,
    pub customers: u32,
    pub mix: BTreeMap<Kind, u32>,
    pub follow: super::order::Follow,
    /// `--rate`: orders started per second on a fixed schedule.
    pub rate: Option<f64>,
    pub timeout_s: f64,
}

/// What the run waited for besides the shop's answers.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Waits {
    /// Answers of 429 (over the edge's per-customer rate limit) that were
    /// waited out, for their `Retry-After`, and asked again.
    pub throttled: u64,
    /// With --rate: orders that started more than `LATE_AFTER` behind the
    /// schedule, because every one of --concurrency was still in flight.
    pub late: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct KindFigures {
    pub orders: u64,
    /// Settled with the status this kind is meant to get.
    pub as_expected: u64,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    /// From sending the POST to seeing the order settled.
    pub settle: Option<Percentiles>,
    /// The POST's round trip.
    pub place: Option<Percentiles>,
    /// From the `order.placed` event's time to `order.confirmed`'s, as
    /// checkout stamped them (confirmed orders only): the saga alone,
    /// without HTTP, the edge's view and the updates stream.
    pub saga: Option<Percentiles>,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Every order of the plan was placed and followed.
    Done,
    /// --timeout passed first.
    Timeout,
    /// The shop stopped answering.
    ShopGone,
    /// Ctrl-C: the orders in flight were left to the shop.
    Interrupted,
}

impl Ended {
    /// "before …" for the orders the run did not get to.
    fn before(self) -> &'static str {
        match self {
            Ended::Done | Ended::Timeout => "before --timeout",
            Ended::ShopGone => "before the shop stopped answering",
            Ended::Interrupted => "before Ctrl-C",
        }
    }
}

/// Invariants: `placed + failed + not_placed == requested`,
/// `settled + unsettled == placed`, the statuses add up to `settled`.
#[derive(Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub setup: Setup,
    pub placed: u64,
    pub settled: u64,
    pub unsettled: u64,
    pub failed: u64,
    pub not_placed: u64,
    pub elapsed_s: f64,
    pub placed_per_s: f64,
    pub settled_per_s: f64,
    /// Milliseconds.
    pub latency_ms: Latency,
    pub statuses: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    #[serde(flatten)]
    pub waits: Waits,
    pub kinds: BTreeMap<Kind, KindFigures>,
    /// Every requested order was placed and settled.
    pub ok: bool,
    pub ended: Ended,
    #[serde(skip)]
    first_errors: Vec<String>,
}

impl Report {
    pub fn new(
        setup: Setup,
        outcomes: Vec<(Kind, Outcome)>,
        waits: Waits,
        elapsed: Duration,
        stopped: Option<Ended>,
    ) -> Report {
        let mut report = Report {
            placed: 0,
            settled: 0,
            unsettled: 0,
            failed: 0,
            not_placed: setup.requested.saturating_sub(outcomes.len() as u64),
            elapsed_s: round(elapsed.as_secs_f64()),
            placed_per_s: 0.0,
            settled_per_s: 0.0,
            latency_ms: Latency {
                settle: None,
                place: None,
                saga: None,
            },
            statuses: BTreeMap::new(),
            reasons: BTreeMap::new(),
            errors: BTreeMap::new(),
            waits,
            kinds: BTreeMap::new(),
            ok: false,
            ended: Ended::Done,
            first_errors: Vec::new(),
            setup,
        };
        let mut place = Vec::new();
        let mut settle = Vec::new();
        let mut saga = Vec::new();
        for (kind, outcome) in outcomes {
            let figures = report.kinds.entry(kind).or_default();
            figures.orders += 1;
            match outcome {
                Outcome::Failed { label, message } => {
                    report.failed += 1;
                    *report.errors.entry(label).or_default() += 1;
                    if report.first_errors.len() < SHOWN_ERRORS
                        && !report.first_errors.contains(&message)
                    {
                        report.first_errors.push(message);
                    }
                }
                Outcome::Settled {
                    status,
                    reason,
                    place: p,
                    settle: s,
                    saga: g,
                } => {
                    report.placed += 1;
                    report.settled += 1;
                    if kind.expects(&status) {
                        figures.as_expected += 1;
                    }
                    *report.statuses.entry(status).or_default() += 1;
                    if let Some(reason) = reason {
                        *report.reasons.entry(reason).or_default() += 1;
                    }
                    place.push(p);
                    settle.push(s);
                    saga.extend(g);
                }
                Outcome::Unsettled { place: p } => {
                    report.placed += 1;
                    report.unsettled += 1;
                    place.push(p);
                }
            }
        }
        report.placed_per_s = round(rate(report.placed, elapsed));
        report.settled_per_s = round(rate(report.settled, elapsed));
        report.latency_ms = Latency {
            settle: percentiles(settle),
            place: percentiles(place),
            saga: percentiles(saga),
        };
        report.ok = report.settled == report.setup.requested;
        report.ended = if let Some(stopped) = stopped {
            stopped
        } else if report.unsettled + report.not_placed > 0 {
            Ended::Timeout
        } else {
            Ended::Done
        };
        report
    }

    pub fn print_text(&self) {
        let s = &self.setup;
        let mix: Vec<String> = s
            .mix
            .iter()
            .map(|(k, w)| format!("{}={w}", k.name()))
            .collect();
        outln!(
            "load against {}: {} orders, {} in flight, {} customers, mix {}",
            s.url,
            s.requested,
            s.concurrency,
            s.customers,
            mix.join(",")
        );
        outln!(
            "placed    {:>7} in {:.2} s   {:.1} orders/s",
            self.placed,
            self.elapsed_s,
            self.placed_per_s
        );
        outln!(
            "settled   {:>7}              {:.1} orders/s",
            self.settled,
            self.settled_per_s
        );
        if self.unsettled + self.failed + self.not_placed > 0 {
            outln!(
                "missing   {} unsettled, {} failed to place, {} not placed {}",
                self.unsettled,
                self.failed,
                self.not_placed,
                self.ended.before()
            );
        }
        if let Some(p) = &self.latency_ms.settle {
            outln!("latency   placed→settled  {}", ms(p));
        }
        if let Some(p) = &self.latency_ms.place {
            outln!("          POST /orders    {}", ms(p));
        }
        if let Some(p) = &self.latency_ms.saga {
            outln!(
                "          saga (events)   {}   order.placed→order.confirmed",
                ms(p)
            );
        }
        outln!("statuses  {}", counts(&self.statuses));
        if !self.reasons.is_empty() {
            outln!("reasons   {}", counts(&self.reasons));
        }
        if !self.errors.is_empty() {
            outln!("errors    {}", counts(&self.errors));
            for message in &self.first_errors {
                outln!("          e.g. {message}");
            }
        }
        if let Some(rate) = s.rate {
            outln!(
                "schedule  {rate} orders/s; {} started more than {} ms late (all {} in flight busy)",
                self.waits.late,
                super::LATE_AFTER.as_millis(),
                s.concurrency
            );
        }
        if self.waits.throttled > 0 {
            outln!(
                "throttled {} answers of 429 waited out: each customer is held to the edge's rate \
                 limit, so the rates above are the limit's; spread the orders over more \
                 customers (--customers)",
                self.waits.throttled
            );
        }
        let kinds: Vec<String> = Kind::ALL
            .iter()
            .filter_map(|k| self.kinds.get(k).map(|f| (k, f)))
            .map(|(k, f)| format!("{} {}/{} as expected", k.name(), f.as_expected, f.orders))
            .collect();
        outln!("kinds     {}", kinds.join(", "));
    }
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    let parts: Vec<String> = map.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(", ")
}

fn ms(p: &Percentiles) -> String {
    format!(
        "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        p.p50, p.p90, p.p99, p.max
    )
}

/// Nearest-rank percentiles in milliseconds; `None` without samples.
fn percentiles(mut samples: Vec<Duration>) -> Option<Percentiles> {
    samples.sort_unstable();
    let at = |q: f64| -> f64 {
        let rank = (q * samples.len() as f64).ceil() as usize;
        let index = rank.clamp(1, samples.len()) - 1;
        round(samples[index].as_secs_f64() * 1000.0)
    };
    let max = round(samples.last()?.as_secs_f64() * 1000.0);
    Some(Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max,
    })
}

/// Three decimals are more than the clock's precision here.
fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_absent_without_samples() {
        let samples = (1..=100).map(Duration::from_millis).collect();

        let p = percentiles(samples).expect("samples");

        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert!(percentiles(Vec::new()).is_none());
    }

    #[test]
    fn counts_add_up_over_settled_unsettled_failed_and_not_placed_orders() {
        let setup = Setup {
            url: "http://shop".into(),
            requested: 5,
            concurrency: 2,
            customers: 2,
            mix: BTreeMap::new(),
            follow: super::super::order::Follow::Poll,
            rate: None,
            timeout_s: 60.0,
        };
        let settled = |status: &str| Outcome::Settled {
            status: status.into(),
            reason: None,
            place: Duration::from_millis(5),
            settle: Duration::from_millis(50),
            saga: Some(Duration::from_millis(20)),
        };
        let outcomes = vec![
            (Kind::Succeed, settled("confirmed")),
            (Kind::Decline, settled("confirmed")),
            (
                Kind::Succeed,
                Outcome::Unsettled {
                    place: Duration::from_millis(5),
                },
            ),
            (
                Kind::Succeed,
                Outcome::Failed {
                    label: "503 unavailable".into(),
                    message: "503 unavailable: checkout is down".into(),
                },
            ),
        ];

        let report = Report::new(
            setup,
            outcomes,
            Waits::default(),
            Duration::from_secs(1),
            None,
        );

        assert_eq!(
            (
                report.placed,
                report.settled,
                report.unsettled,
                report.failed,
                report.not_placed
            ),
            (3, 2, 1, 1, 1)
        );
        assert_eq!(report.statuses.get("confirmed"), Some(&2));
        assert_eq!(
            report.kinds.get(&Kind::Decline).map(|f| f.as_expected),
            Some(0)
        );
        assert!(!report.ok);
        assert_eq!(report.ended, Ended::Timeout);
    }
}
