//! The trace each HTTP request belongs to: the client's W3C `traceparent`
//! header continued when it sends a valid one, a new trace otherwise. The
//! request is then the root of everything it causes: the command it sends
//! carries a child of this trace, and every team's events after it keep the
//! trace id. When spans are exported (see [`platform::telemetry`]) the
//! request's span is the exported root (or the child of the client's span),
//! and commands carry its span id.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use platform::telemetry::{TraceParent, TRACEPARENT};
use tracing::Instrument;

tokio::task_local! {
    static TRACE: TraceParent;
}

/// Runs the request inside its trace (and a span that logs its trace id).
pub async fn middleware(request: Request, next: Next) -> Response {
    let incoming = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    let span = tracing::info_span!("http", method = %request.method(), path = %request.uri().path(),
        trace_id = tracing::field::Empty, otel.name = tracing::field::Empty, otel.kind = "server",
        http.route = tracing::field::Empty, http.response.status_code = tracing::field::Empty);
    let exporting = platform::telemetry::exporting();
    if exporting {
        // Named after the route, not the path, so spans group by endpoint.
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        span.record("otel.name", format!("{} {route}", request.method()));
        span.record("http.route", route);
        platform::telemetry::continue_from(&span, incoming);
    }
    // With export the span is the trace's node for this request; without,
    // a child of the client's trace stands for it.
    let trace = platform::telemetry::traceparent_of(&span)
        .unwrap_or_else(|| TraceParent::continue_or_start(incoming));
    span.record("trace_id", trace.trace_id.as_str());
    let response = TRACE
        .scope(trace, next.run(request).instrument(span.clone()))
        .await;
    if exporting {
        span.record("http.response.status_code", response.status().as_u16());
    }
    response
}

/// The trace context for a message sent on behalf of the current request:
/// the current span when spans are exported, else a child span of the
/// request's trace (a new trace outside any request).
pub fn child_of_current() -> TraceParent {
    if let Some(here) = platform::telemetry::current() {
        return here;
    }
    TRACE
        .try_with(TraceParent::child)
        .unwrap_or_else(|_| TraceParent::new_root())
}
