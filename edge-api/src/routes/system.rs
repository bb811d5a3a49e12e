//! The OpenAPI document, its docs page, and the home page.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::Json;

pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

pub async fn docs() -> Html<&'static str> {
    Html(include_str!("../../static/docs.html"))
}

pub async fn home() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../../static/index.html"),
    )
}

/// The storefront's script and styles (embedded: no build step, no CDN).
pub async fn store_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/store.js"),
    )
}

pub async fn store_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/store.css"),
    )
}

/// The docs page's script and styles.
pub async fn docs_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/docs.js"),
    )
}

pub async fn docs_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/docs.css"),
    )
}
