//! The OTLP/HTTP span exporter: configured from the standard `OTEL_*`
//! environment variables, batching on the SDK's own thread, sending through
//! hyper on the service's Tokio runtime, and flushed at shutdown.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;

/// The provider, once export has started; flushed and shut down at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// How long one export request may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// What the environment asks of the exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub protocol: Protocol,
    pub service_name: String,
    /// Configuration that was not honoured, to log once logging is up.
    pub problems: Vec<String>,
}

/// The export settings, or `None` when no OTLP endpoint is set.
pub(super) fn settings(env: impl Fn(&str) -> Option<String>) -> Option<Settings> {
    let set = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
    let mut problems = Vec::new();
    let asked =
        set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match asked.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Protocol::HttpBinary,
        Some("http/json") => Protocol::HttpJson,
        Some("grpc") => {
            problems.push(
                "OTLP over gRPC is not supported, only over HTTP: exporting with http/protobuf \
                 (point the endpoint at the collector's HTTP port, usually 4318)"
                    .to_owned(),
            );
            Protocol::HttpBinary
        }
        Some(other) => {
            problems.push(format!(
                "unknown OTLP protocol {other:?} (expected http/protobuf or http/json): \
                 exporting with http/protobuf"
            ));
            Protocol::HttpBinary
        }
    };
    let service_name = set("OTEL_SERVICE_NAME").unwrap_or_else(program_name);
    Some(Settings {
        protocol,
        service_name,
        problems,
    })
}

/// The executable's name: each service's binary is named after it.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bazaar".to_owned())
}

/// Starts export when configured: the tracer for the OpenTelemetry layer,
/// and what went wrong (export off, or on with a fallback), to be logged.
pub(super) fn tracer() -> (Option<Tracer>, Vec<String>) {
    let Some(settings) = settings(|key| std::env::var(key).ok()) else {
        return (None, Vec::new());
    };
    let mut problems = settings.problems.clone();
    match start(&settings) {
        Ok(tracer) => (Some(tracer), problems),
        Err(error) => {
            problems.push(format!("OTLP trace export is off: {error}"));
            (None, problems)
        }
    }
}

fn start(settings: &Settings) -> Result<Tracer, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "telemetry was initialised outside the Tokio runtime".to_owned())?;
    let client = OnRuntime {
        client: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        runtime,
    };
    // The endpoint, headers and timeout come from the standard variables,
    // read by the exporter itself (it appends /v1/traces to the base one).
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(settings.protocol)
        .with_http_client(client)
        .build()
        .map_err(|e| e.to_string())?;
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("bazaar");
    PROVIDER
        .set(provider)
        .map_err(|_| "telemetry was initialised twice".to_owned())?;
    Ok(tracer)
}

/// Exports what is left and stops the exporter; spans ended after this are
/// dropped. Part of a service's graceful shutdown.
pub async fn shutdown() {
    let Some(provider) = PROVIDER.get() else {
        return;
    };
    let provider = provider.clone();
    // The SDK blocks until its thread has exported, and the export itself
    // runs on this runtime: wait off the workers.
    let done =
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
    match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), done).await {
        Ok(Ok(Ok(()))) => tracing::debug!("spans flushed at shutdown"),
        Ok(Ok(Err(error))) => tracing::warn!(%error, "spans not all exported at shutdown"),
        Ok(Err(error)) => tracing::warn!(%error, "span exporter shutdown failed"),
        Err(_) => tracing::warn!("span exporter did not stop in time; spans may be lost"),
    }
}

/// The SDK exports from its own thread, outside any Tokio runtime, while
/// hyper needs one: each request is sent as a task on the service's runtime.
#[derive(Debug)]
struct OnRuntime {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let send = async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(Request::from_parts(parts, Full::new(body)))
                .await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        self.runtime
            .spawn(async move {
                tokio::time::timeout(EXPORT_TIMEOUT, send)
                    .await
                    .map_err(|_| HttpError::from("the OTLP export request timed out"))?
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_from(vars: &[(&str, &str)]) -> Option<Settings> {
        settings(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn export_is_off_without_an_endpoint() {
        assert_eq!(settings_from(&[]), None);
        assert_eq!(settings_from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), None);
        assert_eq!(
            settings_from(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
            None
        );
    }

    #[test]
    fn protobuf_is_the_default_and_json_is_honoured() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let default = settings_from(&[base]).expect("on");
        assert_eq!(default.protocol, Protocol::HttpBinary);
        assert!(default.problems.is_empty());
        let json = settings_from(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        assert_eq!(json.expect("on").protocol, Protocol::HttpJson);
        let traces_only = settings_from(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/v1/traces",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ]);
        assert_eq!(traces_only.expect("on").protocol, Protocol::HttpJson);
    }

    #[test]
    fn grpc_falls_back_to_http_protobuf_with_a_warning() {
        let settings = settings_from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .expect("on");
        assert_eq!(settings.protocol, Protocol::HttpBinary);
        assert_eq!(settings.problems.len(), 1);
        assert!(
            settings.problems[0].contains("gRPC"),
            "{:?}",
            settings.problems
        );
    }

    #[test]
    fn the_service_name_is_the_program_unless_overridden() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(
            settings_from(&[base]).expect("on").service_name,
            program_name()
        );
        let named = settings_from(&[base, ("OTEL_SERVICE_NAME", "shop-edge")]);
        assert_eq!(named.expect("on").service_name, "shop-edge");
    }
}
