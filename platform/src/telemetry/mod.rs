//! Structured logs, W3C trace context carried on messages, and spans
//! exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.
//!
//! Without an endpoint nothing below the logs runs: no exporter, no
//! OpenTelemetry layer, and the span helpers here return at once. With one,
//! every `tracing` span becomes an OpenTelemetry span; the handler spans are
//! continued from the incoming `traceparent`, and an event written inside a
//! handler carries that handler's span id, so one order is one tree of spans
//! across the edge and every service.

mod otlp;
mod traceparent;

use std::io::IsTerminal;

use contracts::{Envelope, Event};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::LogFormat;

pub use otlp::shutdown;
pub use traceparent::{TraceParent, TRACEPARENT};

/// Installs the global log subscriber; `RUST_LOG` overrides the default
/// level. When an OTLP endpoint is configured it also starts the span
/// exporter (call it inside the Tokio runtime: export runs on it).
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn,sqlx=warn,tower_http=info"));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => fmt::layer()
            .with_ansi(colour())
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (spans, problems) = otlp::tracer();
    let spans = spans.map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer));
    // A second init (as in tests) is harmless; ignore it.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(filter)
        .with(spans)
        .try_init();
    // Only now can they be logged.
    for problem in problems {
        tracing::warn!("{problem}");
    }
}

/// Whether text logs on stderr are coloured: only at a terminal, and not
/// when `NO_COLOR` is set (https://no-color.org). `bazaar up` and the tests
/// send each service's stderr to a file, where escape codes are noise. The
/// `bazaar` CLI's own logs ask here too.
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether spans are being exported.
pub fn exporting() -> bool {
    otlp::enabled()
}

/// Makes `span` continue the trace of an incoming `traceparent` (a message
/// header, a command, an HTTP request): its exported parent becomes the
/// sender's span. Without export, or without a valid traceparent, nothing.
pub fn continue_from(span: &tracing::Span, incoming: Option<&str>) {
    if !exporting() {
        return;
    }
    if let Some(parent) = incoming.and_then(TraceParent::parse) {
        let _ = span.set_parent(
            opentelemetry::Context::new().with_remote_span_context(span_context_of(&parent)),
        );
    }
}

/// The current span as a `traceparent` (what a message sent from here
/// should carry), when spans are exported and there is a current span.
pub fn current() -> Option<TraceParent> {
    if !exporting() {
        return None;
    }
    traceparent_of(&tracing::Span::current())
}

/// `span` as a `traceparent`, when spans are exported.
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| TraceParent {
        trace_id: span_context.trace_id().to_string(),
        span_id: span_context.span_id().to_string(),
        flags: format!("{:02x}", span_context.trace_flags().to_u8()),
    })
}

/// The JSON of an outgoing event and the `traceparent` it carries (in its
/// envelope and its message header). While a handler span is exported, an
/// event of the same trace is re-parented to that span, so the next service
/// continues from this hop rather than from the first one; otherwise the
/// envelope is written as it is.
pub fn stamp<T: Event>(envelope: &Envelope<T>) -> (Vec<u8>, Option<String>) {
    let given = envelope.traceparent.as_deref();
    let Some(here) = current() else {
        return (envelope.to_json(), envelope.traceparent.clone());
    };
    // A handler may emit an event caused by another flow (a timer releasing
    // an old reservation); such an event keeps its own trace.
    let same_trace = given
        .and_then(TraceParent::parse)
        .is_none_or(|t| t.trace_id == here.trace_id);
    if !same_trace {
        return (envelope.to_json(), envelope.traceparent.clone());
    }
    let here = here.to_string();
    match serde_json::to_value(envelope) {
        Ok(mut json) => {
            json["traceparent"] = serde_json::Value::String(here.clone());
            let bytes = serde_json::to_vec(&json).unwrap_or_else(|_| envelope.to_json());
            (bytes, Some(here))
        }
        Err(_) => (envelope.to_json(), envelope.traceparent.clone()),
    }
}

/// A span that exists only for export (an outbox publish, a projection
/// apply): disabled, and free, when spans are not exported. `parent` is the
/// `traceparent` of the message it works on.
pub fn export_span(kind: ExportSpan, name: &str, parent: Option<&str>) -> tracing::Span {
    if !exporting() {
        return tracing::Span::none();
    }
    let span = match kind {
        ExportSpan::Publish => {
            tracing::info_span!("publish", otel.name = %format!("publish {name}"),
            otel.kind = "producer", messaging.destination = %name)
        }
        ExportSpan::Project => {
            tracing::info_span!("project", otel.name = %format!("project {name}"),
            projection = %name)
        }
    };
    continue_from(&span, parent);
    span
}

/// One [`export_span`] per message, for work done on many at once (a
/// projection's batch); nothing, not even the vector, without export.
pub fn export_spans<'a>(
    kind: ExportSpan,
    name: &str,
    parents: impl Iterator<Item = Option<&'a str>>,
) -> Vec<tracing::Span> {
    if !exporting() {
        return Vec::new();
    }
    parents
        .map(|parent| export_span(kind, name, parent))
        .collect()
}

/// What an [`export_span`] stands for.
#[derive(Debug, Clone, Copy)]
pub enum ExportSpan {
    /// An event published by the outbox relay; `name` is its subject.
    Publish,
    /// An event applied to a view; `name` is the projection.
    Project,
}

fn span_context_of(parent: &TraceParent) -> SpanContext {
    let flags = u8::from_str_radix(&parent.flags, 16).unwrap_or(1);
    SpanContext::new(
        TraceId::from_hex(&parent.trace_id).unwrap_or(TraceId::INVALID),
        SpanId::from_hex(&parent.span_id).unwrap_or(SpanId::INVALID),
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    )
}
