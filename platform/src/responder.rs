//! Commands and queries over request/reply, through the async-nats
//! `service` API (queue group per service, so instances share the load and
//! `$SRV.PING|INFO|STATS` discovery works). A handler gets a typed
//! [`Request`] and returns a [`Reply`]; decoding errors are answered here.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_nats::service::Service;
use contracts::commands::{CommandError, ErrorKind, Reply, Request};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::telemetry::TraceParent;

/// Requests one endpoint handles at once.
const CONCURRENCY: usize = 64;

/// Serves one subject until `stop`; each request runs in its own task.
pub async fn serve<Req, Resp, H, Fut>(
    service: &Service,
    subject: &'static str,
    handler: H,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    H: Fn(Request<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply<Resp>> + Send + 'static,
{
    let mut endpoint = service
        .endpoint(subject)
        .await
        .map_err(|e| anyhow::anyhow!("serving {subject}: {e}"))?;
    let handler = Arc::new(handler);
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    Ok(tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                _ = stop.cancelled() => break,
                next = endpoint.next() => match next {
                    Some(request) => request,
                    None => break,
                },
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let (reply, outcome) = match serde_json::from_slice::<Request<Req>>(
                    &request.message.payload,
                ) {
                    Ok(req) => {
                        let trace = TraceParent::continue_or_start(req.traceparent.as_deref());
                        let span = tracing::info_span!("command", subject, command_id = %req.command_id,
                            trace_id = %trace.trace_id);
                        crate::telemetry::continue_from(&span, req.traceparent.as_deref());
                        let reply = handler(req).instrument(span).await;
                        let outcome = match &reply {
                            Reply::Ok { .. } => "ok",
                            Reply::Error { .. } => "error",
                        };
                        (serde_json::to_vec(&reply), outcome)
                    }
                    Err(error) => {
                        let reply: Reply<Resp> = Reply::Error {
                            error: CommandError::new(
                                ErrorKind::Invalid,
                                format!("malformed request: {error}"),
                            ),
                        };
                        (serde_json::to_vec(&reply), "malformed")
                    }
                };
                crate::metrics::command_handled(subject, outcome, started.elapsed());
                let body = reply.unwrap_or_default();
                if let Err(error) = request.respond(Ok(body.into())).await {
                    tracing::warn!(%error, subject, "could not send the reply");
                }
                drop(permit);
            });
        }
        // Let requests in flight finish before the endpoint goes away.
        let _ = permits.acquire_many(CONCURRENCY as u32).await;
    }))
}
