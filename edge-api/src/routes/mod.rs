//! The HTTP surface: every route, the fallbacks, and the middleware stack.

pub mod basket;
pub mod categories;
pub mod orders;
pub mod products;
pub mod search;
pub mod stock;
pub mod system;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use bytes::Bytes;
use contracts::commands::FieldError;
use platform::projection::ProjectionHandle;
use tower_http::timeout::TimeoutLayer;
use uuid::Uuid;

use crate::problem::{ApiError, ApiResult};
use crate::read_cache::{Rendered, ViewCache};
use crate::state::AppState;

/// The whole API (health routes are merged in by the caller).
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/products", get(search::list).post(products::create))
        .route(
            "/api/v1/products/{id}",
            get(products::get).patch(products::update),
        )
        .route("/api/v1/products/{id}/stock", put(stock::put))
        .route("/api/v1/categories", get(categories::list))
        .route("/api/v1/basket", get(basket::get))
        .route(
            "/api/v1/basket/items/{product_id}",
            put(basket::put_item).delete(basket::delete_item),
        )
        .route("/api/v1/orders", get(orders::list).post(orders::place))
        .route("/api/v1/orders/{id}", get(orders::get))
        .route("/api/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/api/v1/orders/{id}/invoice", get(orders::invoice))
        .route("/api/v1/orders/{id}/updates", get(orders::updates))
        .route("/api/openapi.json", get(system::openapi))
        .route("/docs", get(system::docs))
        .route("/static/store.js", get(system::store_js))
        .route("/static/store.css", get(system::store_css))
        .route("/static/docs.js", get(system::docs_js))
        .route("/static/docs.css", get(system::docs_css))
        .route("/", get(system::home));
    api.fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(middleware::from_fn(errors_as_problems))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::rate_limit::limit,
        ))
        .layer(middleware::from_fn(record_http))
        .layer(middleware::from_fn(crate::trace::middleware))
        .layer(middleware::from_fn(close_after_refused_body))
        .layer(middleware::from_fn(private_answers_not_stored))
        .with_state(state)
}

/// The pages (`/`, `/docs`) load their script and styles from
/// `/static/` and nothing else: no inline script or style attribute runs,
/// so text a customer or an admin wrote (a product's name) cannot become
/// script even if it reached the page as markup. `data:` images are the
/// pages' empty icon.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers that keep a browser from misreading an answer or showing the
/// storefront inside another site's frame (where a hidden "Place order"
/// could be clicked for the customer), and a Content-Security-Policy under
/// which a page runs only the shop's own script files and talks only to
/// the shop ([`CONTENT_SECURITY_POLICY`]). Layered over the whole router,
/// health routes included (`lib.rs`).
pub async fn browser_safeguards(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// A customer's basket and orders are theirs alone: no cache (a browser's,
/// a proxy's) keeps a copy of them (`no-store`, added to a route's own
/// directive).
async fn private_answers_not_stored(request: Request, next: Next) -> Response {
    let private = ["/api/v1/basket", "/api/v1/orders"]
        .iter()
        .any(|prefix| request.uri().path().starts_with(prefix));
    let mut response = next.run(request).await;
    if !private {
        return response;
    }
    // A route's own directive (the event stream's `no-cache`) is kept.
    let value = match response.headers().get(header::CACHE_CONTROL) {
        None => HeaderValue::from_static("no-store"),
        Some(own) if own.to_str().is_ok_and(|v| v.contains("no-store")) => return response,
        Some(own) => {
            let own = own.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{own}, no-store"))
                .unwrap_or(HeaderValue::from_static("no-store"))
        }
    };
    response.headers_mut().insert(header::CACHE_CONTROL, value);
    response
}

/// Turns an error answer the HTTP stack made as plain text (axum's
/// extractors: a path that is not UTF-8, say) or with no body (the
/// timeout) into problem+json, as DESIGN §7 says every error is. Its other
/// headers (`Allow`, `Retry-After`) are kept.
async fn errors_as_problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let problem = ApiError::from_plain(status, &String::from_utf8_lossy(&text)).into_response();
    let (problem_parts, problem_body) = problem.into_parts();
    for (name, value) in &problem_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, problem_body)
}

/// Asks the client to close the connection after an error answer to a
/// request that came with a body: the body may be unread (refused for its
/// token, size or type before it was read), and the server then closes the
/// connection rather than read it; said in `Connection: close`, a client
/// opens a new one instead of sending its next request into a closed one.
async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Counts requests and their latency per route and status.
async fn record_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("bazaar_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("bazaar_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A request's method as a metric label: the usual ones by name, any
/// other as "other", so that made-up methods (which anyone may send, and
/// which get 405) cannot add series to `/metrics` without end.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Whether the view has applied `seq` within `wait` (true when there is
/// nothing to wait for).
pub async fn caught_up(view: &ProjectionHandle, seq: Option<u64>, wait: Duration) -> bool {
    match seq {
        Some(seq) => view.wait_for(seq, wait).await,
        None => true,
    }
}

/// A body as axum's `Json` renders it, kept as bytes (for the read cache).
fn render<T: serde::Serialize>(value: &T) -> ApiResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering an answer: {e}")))
}

/// A 200 answer with a body from [`render`]: the same bytes and headers
/// as `Json` gives.
fn rendered_json(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A read through `cache`: the remembered answer if `owner` owns it (else
/// `not_found`: another's order is as absent as one never placed), or
/// `fetch`, rendered, remembered and answered. The projections' versions are
/// taken before the read, so an entry is never fresher in name than in fact
/// (see `read_cache`).
pub async fn cached<T, F>(
    cache: &ViewCache,
    id: Uuid,
    owner: &str,
    not_found: impl FnOnce() -> ApiError,
    fetch: F,
) -> ApiResult<Response>
where
    T: serde::Serialize,
    F: std::future::Future<Output = ApiResult<T>>,
{
    if let Some(hit) = cache.get(id) {
        if *hit.owner != *owner {
            return Err(not_found());
        }
        return Ok(rendered_json(hit.body));
    }
    let seen = cache.seen();
    let body = render(&fetch.await?)?;
    let rendered = Rendered {
        owner: Arc::from(owner),
        body: body.clone(),
    };
    cache.insert(id, rendered, seen);
    Ok(rendered_json(body))
}

/// A path id; anything that is not a UUID names nothing (404).
pub fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        // Not the whole of a long path segment back in the answer.
        let shown: String = raw.chars().take(64).collect();
        let more = if shown.len() < raw.len() { "…" } else { "" };
        ApiError::NotFound(format!("no {what} {shown:?}{more}"))
    })
}

/// The command id: the client's `Idempotency-Key` scoped to the caller, or
/// a fresh one. The caller's length comes first, so no subject and key can
/// spell another's (`alice` + `x:y` against `alice:x` + `y`). A key reused
/// for a different request is refused by the service
/// (`platform::command::Asked`), never answered with another's outcome.
pub fn command_id(headers: &HeaderMap, caller: &str) -> ApiResult<String> {
    let mut keys = headers.get_all("idempotency-key").iter();
    match (keys.next(), keys.next()) {
        (None, _) => Ok(Uuid::now_v7().to_string()),
        // Which of two keys was meant is not ours to guess.
        (Some(_), Some(_)) => Err(ApiError::Validation(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "given more than once; send one key".into(),
        }])),
        (Some(value), None) => {
            let key = value.to_str().unwrap_or_default().trim();
            let valid = (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
            if valid {
                Ok(format!("idem:{}:{caller}:{key}", caller.len()))
            } else {
                Err(ApiError::Validation(vec![FieldError {
                    field: "Idempotency-Key".into(),
                    message: "must be 1 to 200 visible ASCII characters".into(),
                }]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "idempotency-key",
            key.parse().expect("a valid header value"),
        );
        headers
    }

    #[test]
    fn no_caller_and_key_spell_another_callers_command_id() {
        let alice = command_id(&keyed("x:y"), "alice").expect("valid key");
        let other = command_id(&keyed("y"), "alice:x").expect("valid key");
        assert_ne!(alice, other);
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let mut headers = keyed("k-1");
        headers.append("idempotency-key", HeaderValue::from_static("k-2"));
        assert!(command_id(&headers, "alice").is_err());
    }

    #[test]
    fn the_same_caller_and_key_give_the_same_command_id() {
        let first = command_id(&keyed("k-1"), "alice").expect("valid key");
        let again = command_id(&keyed("k-1"), "alice").expect("valid key");
        assert_eq!(first, again);
        assert_ne!(first, command_id(&keyed("k-1"), "bob").expect("valid key"));
    }
}
