//! The table on stdout, and the last line: one JSON object with every figure.

use std::collections::BTreeMap;

use serde_json::json;

use super::{ceiling, edge, reads, round, RateRun};

pub fn print(
    ceiling: &ceiling::Bracket,
    max: &RateRun,
    half: &RateRun,
    (hello, products, orders): (&edge::Reads, &edge::Reads, &edge::Reads),
    rss: &[(String, f64)],
) {
    let ratio = max.events_per_s() / ceiling.events_per_s();
    let (before, after) = (&ceiling.before, &ceiling.after);
    let (lm, lh) = (max.latency(), half.latency());
    println!(
        "| what | orders/s | events/s | p50 ms | p90 ms | p99 ms | in flight |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    println!(
        "| ceiling: JetStream publish + pull/ack, {} B (mean of {:.0} before and {:.0} after the shop) | - | {:.0} | - | - | - | {} acks |",
        before.payload_bytes,
        before.events_per_s,
        after.events_per_s,
        ceiling.events_per_s(),
        4_096
    );
    for (name, run, l) in [("shop, max rate", max, lm), ("shop, half rate", half, lh)] {
        let in_flight = match run.rate {
            Some(rate) => format!(
                "at most {} (started at {rate:.0}/s, {} late)",
                run.concurrency, run.report.late
            ),
            None => run.concurrency.to_string(),
        };
        println!(
            "| {name} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {in_flight} |",
            run.report.settled_per_s,
            run.events_per_s(),
            l.p50,
            l.p90,
            l.p99,
        );
    }
    for (name, run) in [("max rate", max), ("half rate", half)] {
        let saga = run.saga_latency();
        println!(
            "\n{name}: order.placed → order.confirmed by the events' own times (the saga \
             without HTTP, the edge's view and the updates stream): p50 {:.1} ms, p90 {:.1} ms, \
             p99 {:.1} ms",
            saga.p50, saga.p90, saga.p99
        );
    }
    println!("\nshop / ceiling (events/s): {:.3}", ratio);
    println!("reads/s: {}", edge::reads_line(hello, products, orders));
    let rss_text: Vec<String> = rss.iter().map(|(n, m)| format!("{n} {m:.1}")).collect();
    println!("peak RSS MiB: {}", rss_text.join(", "));
    let rss_json: BTreeMap<&str, f64> = rss.iter().map(|(n, m)| (n.as_str(), round(*m))).collect();
    let summary = json!({
        "ceiling_events_per_s": round(ceiling.events_per_s()),
        "ceiling_before_events_per_s": round(before.events_per_s),
        "ceiling_after_events_per_s": round(after.events_per_s),
        "ceiling_publish_per_s": round(ceiling.publish_per_s()),
        "ceiling_messages": before.messages,
        "ceiling_seconds": round(before.seconds + after.seconds),
        "payload_bytes": before.payload_bytes,
        "shop_events_per_s": round(max.events_per_s()),
        "ratio": round(ratio),
        "orders_per_s": round(max.report.settled_per_s),
        "events_per_order": round(max.events as f64 / (max.report.settled.max(1)) as f64),
        "p50_ms": lm.p50,
        "p90_ms": lm.p90,
        "p99_ms": lm.p99,
        "max_rate": max.json(),
        "half_rate": half.json(),
        "reads_per_s": reads::summary(hello, products, orders),
        "rss_mib": rss_json,
    });
    println!("{summary}");
}
