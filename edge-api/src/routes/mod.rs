//! The HTTP surface: every route, the fallbacks, and the middleware stack.

pub mod products;
pub mod system;

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use crate::problem::ApiError;
use crate::state::AppState;

/// The whole API (health routes are merged in by the caller).
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/products", axum::routing::post(products::create))
        .route(
            "/api/v1/products/{id}",
            get(products::get).patch(products::update),
        )
        .route("/api/openapi.json", get(system::openapi))
        .route("/docs", get(system::docs))
        .route("/", get(system::home));
    api.fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(middleware::from_fn(record_http))
        .with_state(state)
}

/// Counts requests and their latency per route and status.
async fn record_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("bazaar_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("bazaar_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
