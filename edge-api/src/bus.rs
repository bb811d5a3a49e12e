//! Commands and queries to the teams' services over NATS request/reply.

use std::time::Duration;

use contracts::auth::Claims;
use contracts::commands::{Actor, Reply, Request};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::problem::ApiError;

#[derive(Clone)]
pub struct Bus {
    nats: async_nats::Client,
    timeout: Duration,
}

/// A successful command: its value and how far its events got in the stream.
pub struct Done<T> {
    pub value: T,
    pub stream_seq: Option<u64>,
}

impl Bus {
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Bus { nats, timeout }
    }

    /// Sends a command and waits for its reply.
    pub async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        subject: &'static str,
        command_id: String,
        caller: &Claims,
        body: Req,
    ) -> Result<Done<Resp>, ApiError> {
        let traceparent = crate::trace::child_of_current().to_string();
        let request = Request {
            command_id,
            actor: Actor {
                id: caller.sub.clone(),
                role: caller.role,
            },
            traceparent: Some(traceparent.clone()),
            body,
        };
        let payload = serde_json::to_vec(&request).map_err(|e| ApiError::Internal(e.into()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(platform::telemetry::TRACEPARENT, traceparent.as_str());
        let answer = tokio::time::timeout(
            self.timeout,
            self.nats
                .request_with_headers(subject, headers, payload.into()),
        )
        .await
        .map_err(|_| {
            ApiError::Unavailable(format!(
                "no answer from {} in time; the request may still take effect: \
                 retry it with the same Idempotency-Key",
                team_of(subject)
            ))
        })?
        .map_err(|e| {
            use async_nats::RequestErrorKind::*;
            match e.kind() {
                NoResponders => ApiError::Unavailable(format!(
                    "the {} service is not running",
                    team_of(subject)
                )),
                TimedOut => ApiError::Unavailable(format!(
                    "no answer from {} in time; the request may still take effect: \
                 retry it with the same Idempotency-Key",
                    team_of(subject)
                )),
                _ => ApiError::Internal(anyhow::anyhow!("request on {subject}: {e}")),
            }
        })?;
        let reply: Reply<Resp> = serde_json::from_slice(&answer.payload).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("unreadable reply on {subject}: {e}"))
        })?;
        match reply {
            Reply::Ok { value, stream_seq } => Ok(Done { value, stream_seq }),
            Reply::Error { error } => Err(error.into()),
        }
    }
}

fn team_of(subject: &str) -> &str {
    subject.split('.').nth(1).unwrap_or(subject)
}
