//! The routes that are not the REST API but that DESIGN §7 lists beside
//! it: health, metrics, the pages and this document. Documented here, in
//! functions that only carry the annotations (the handlers are the
//! platform's health router and `routes::system`), and added to the
//! document after the API's shared responses: none of these is rate
//! limited, takes a body or waits for a team's service.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, metrics, openapi, docs, home))]
struct OperationsDoc;

/// The operations' paths, to add to the API's document.
pub fn paths() -> utoipa::openapi::path::Paths {
    OperationsDoc::openapi().paths
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "liveness", tag = "operations",
    responses((status = 200, description = "alive", content_type = "application/json",
        example = json!({"status": "ok"}))))]
#[allow(dead_code)]
fn healthz() {}

/// Readiness: NATS connected, the database answering, every view caught up
/// and every consumer pulling.
#[utoipa::path(get, path = "/readyz", operation_id = "readiness", tag = "operations",
    responses(
        (status = 200, description = "ready to serve", content_type = "application/json",
            example = json!({"status": "ready", "nats": true, "database": true,
                "projections_catching_up": [], "projections_interrupted": [], "consumers_not_pulling": []})),
        (status = 503, description = "not ready; the body says what is missing", content_type = "application/json",
            example = json!({"status": "not_ready", "nats": true, "database": true,
                "projections_catching_up": ["edge.orders"], "projections_interrupted": [], "consumers_not_pulling": []})),
    ))]
#[allow(dead_code)]
fn readyz() {}

/// Prometheus metrics of this process (HTTP requests, projections,
/// consumers, the outbox relay).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
#[allow(dead_code)]
fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
#[allow(dead_code)]
fn openapi() {}

/// A page that lists this document's operations and schemas.
#[utoipa::path(get, path = "/docs", operation_id = "docs", tag = "operations",
    responses((status = 200, description = "HTML", content_type = "text/html")))]
#[allow(dead_code)]
fn docs() {}

/// The storefront.
#[utoipa::path(get, path = "/", operation_id = "storefront", tag = "operations",
    responses((status = 200, description = "HTML", content_type = "text/html")))]
#[allow(dead_code)]
fn home() {}
