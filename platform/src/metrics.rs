//! Prometheus metrics: one recorder per process, typed helpers per event so
//! metric names are spelled in one place.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (first call wins) labelled with `service`.
pub fn install(service: &str) {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .add_global_label("service", service)
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .ok()
            .and_then(|b| b.install_recorder().ok())
    });
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
        .unwrap_or_default()
}

pub fn message_handled(consumer: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!("bazaar_messages_handled_total", "consumer" => consumer.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("bazaar_handler_seconds", "consumer" => consumer.to_owned())
        .record(elapsed.as_secs_f64());
}

/// Deliveries that committed together in one transaction (group commit).
pub fn committed_together(consumer: &str, deliveries: usize) {
    metrics::counter!("bazaar_deliveries_committed_together_total", "consumer" => consumer.to_owned())
        .increment(deliveries as u64);
}

/// A group commit's lot of commands that committed (`pieces` in it).
pub fn lot_committed(pieces: usize) {
    metrics::counter!("bazaar_group_commits_total").increment(1);
    metrics::counter!("bazaar_group_commit_pieces_total").increment(pieces as u64);
}

pub fn dead_lettered(consumer: &str) {
    metrics::counter!("bazaar_messages_dead_lettered_total", "consumer" => consumer.to_owned())
        .increment(1);
}

pub fn duplicate_skipped(consumer: &str) {
    metrics::counter!("bazaar_duplicates_skipped_total", "consumer" => consumer.to_owned())
        .increment(1);
}

pub fn consumer_pending(consumer: &str, pending: u64) {
    metrics::gauge!("bazaar_consumer_pending", "consumer" => consumer.to_owned())
        .set(pending as f64);
}

pub fn outbox_published(count: usize) {
    metrics::counter!("bazaar_outbox_published_total").increment(count as u64);
}

pub fn outbox_backlog(rows: i64) {
    metrics::gauge!("bazaar_outbox_backlog").set(rows as f64);
}

pub fn command_handled(subject: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!("bazaar_commands_total", "subject" => subject.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("bazaar_command_seconds", "subject" => subject.to_owned())
        .record(elapsed.as_secs_f64());
}

pub fn projection_position(projection: &str, seq: u64) {
    metrics::gauge!("bazaar_projection_position", "projection" => projection.to_owned())
        .set(seq as f64);
}
