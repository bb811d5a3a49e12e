//! `/healthz` (alive), `/readyz` (NATS connected, database answering, every
//! projection caught up once and not interrupted, every consumer pulling)
//! and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::ErrorCode;

use crate::consumer::{ConsumerHealth, Pulling};
use crate::db::Db;
use crate::projection::ProjectionHandle;

/// What readiness looks at.
#[derive(Clone)]
pub struct Readiness {
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub db: Db,
    pub projections: Arc<Vec<ProjectionHandle>>,
    pub consumers: Arc<Vec<ConsumerHealth>>,
}

pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(readiness)
}

/// 405 as problem+json (RFC 9457), as every other error of the HTTP API.
async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(json!({
            "type": "urn:bazaar:problem:method-not-allowed",
            "title": "Method not allowed",
            "status": 405,
            "detail": "this resource does not support that method",
        })),
    )
}

async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let nats = r.nats.connection_state() == async_nats::connection::State::Connected;
    let db = r.db.ping().await.is_ok();
    let behind: Vec<String> = r
        .projections
        .iter()
        .filter(|p| !p.progress().caught_up)
        .map(|p| p.name.clone())
        .collect();
    // A view whose follower failed and is retrying answers stale reads.
    let interrupted: Vec<serde_json::Value> = r
        .projections
        .iter()
        .filter_map(|p| {
            let error = p.progress().interrupted?.to_string();
            Some(json!({"projection": p.name, "error": error}))
        })
        .collect();
    // A consumer whose durable cannot be declared (someone changed it by
    // hand, its user lacks a permission) takes nothing until that is fixed.
    let mut not_pulling = Vec::new();
    for c in r.consumers.iter() {
        match c.pulling() {
            Pulling::Yes => {}
            // Waiting for another team's stream: ready while it is missing,
            // not once it exists and the durable is still to be declared
            // (the loop looks again within seconds).
            Pulling::NoStream => match r.js.get_stream(c.stream).await {
                Err(e)
                    if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND) => {}
                Ok(_) => not_pulling.push(json!({"durable": c.durable,
                    "error": format!("{} exists now; declaring the consumer", c.stream)})),
                // Cannot tell: not ready rather than ready by mistake.
                Err(e) => not_pulling.push(json!({"durable": c.durable,
                    "error": format!("looking up {}: {e}", c.stream)})),
            },
            Pulling::Interrupted(error) => {
                not_pulling.push(json!({"durable": c.durable, "error": error}))
            }
            Pulling::Starting => not_pulling.push(json!({"durable": c.durable})),
        }
    }
    let ok = nats && db && behind.is_empty() && interrupted.is_empty() && not_pulling.is_empty();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ready" } else { "not_ready" },
            "nats": nats,
            "database": db,
            "projections_catching_up": behind,
            "projections_interrupted": interrupted,
            "consumers_not_pulling": not_pulling,
        })),
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}
