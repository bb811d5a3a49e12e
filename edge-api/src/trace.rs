//! The trace each HTTP request belongs to: the client's W3C `traceparent`
//! header continued when it sends a valid one, a new trace otherwise. The
//! request is then the root of everything it causes: the command it sends
//! carries a child of this trace, and every team's events after it keep the
//! trace id.

use axum::extract::Request;
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
    let trace = TraceParent::continue_or_start(incoming);
    let span = tracing::info_span!("http", method = %request.method(), path = %request.uri().path(),
        trace_id = %trace.trace_id);
    TRACE.scope(trace, next.run(request).instrument(span)).await
}

/// The trace context for a message sent on behalf of the current request: a
/// child span of the request's trace (a new trace outside any request).
pub fn child_of_current() -> TraceParent {
    TRACE
        .try_with(TraceParent::child)
        .unwrap_or_else(|_| TraceParent::new_root())
}
