//! A fake OpenTelemetry collector: an OTLP/HTTP endpoint on a free port that
//! accepts `POST /v1/traces` in http/protobuf or http/json and keeps every
//! span with the `service.name` of the process that sent it.
//!
//! It runs on its own thread and runtime, so a test that blocks its own
//! runtime (stopping the shop waits synchronously) does not stall exports.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

/// One exported span, ids in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSpan {
    /// The `service.name` resource attribute of the sender.
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
}

#[derive(Default)]
struct Received {
    spans: Vec<ExportedSpan>,
    /// The `Content-Type` of every export request.
    content_types: Vec<String>,
}

/// The running collector; stopped when dropped.
pub struct FakeCollector {
    endpoint: String,
    received: Arc<Mutex<Received>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCollector {
    /// Starts a collector on `127.0.0.1` and a free port.
    pub fn start() -> FakeCollector {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("fake collector: binding a port: {e}"));
        let endpoint = match listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(e) => panic!("fake collector: its address: {e}"),
        };
        if let Err(e) = listener.set_nonblocking(true) {
            panic!("fake collector: non-blocking listener: {e}");
        }
        let received = Arc::new(Mutex::new(Received::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = received.clone();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => panic!("fake collector: runtime: {e}"),
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => panic!("fake collector: listener: {e}"),
                };
                let app = Router::new()
                    .route("/v1/traces", post(export))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        FakeCollector {
            endpoint,
            received,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ExportedSpan> {
        self.lock().spans.clone()
    }

    /// The spans of one trace.
    pub fn spans_of_trace(&self, trace_id: &str) -> Vec<ExportedSpan> {
        self.lock()
            .spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// The `Content-Type` of every export request received.
    pub fn content_types(&self) -> Vec<String> {
        self.lock().content_types.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        // A panicking handler cannot leave the lists half-written.
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn export(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let json = content_type.starts_with("application/json");
    let request = if json {
        serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|e| e.to_string())
    } else {
        ExportTraceServiceRequest::decode(body).map_err(|e| e.to_string())
    };
    let Ok(request) = request else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            b"undecodable export request".to_vec(),
        );
    };
    let spans = spans_of(&request);
    {
        let mut received = received.lock().unwrap_or_else(|e| e.into_inner());
        received.content_types.push(content_type);
        received.spans.extend(spans);
    }
    // An empty ExportTraceServiceResponse: full success.
    if json {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            b"{}".to_vec(),
        )
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
    }
}

fn spans_of(request: &ExportTraceServiceRequest) -> Vec<ExportedSpan> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
            spans.push(ExportedSpan {
                service: service.clone(),
                name: span.name.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: (!span.parent_span_id.is_empty())
                    .then(|| hex(&span.parent_span_id)),
            });
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
