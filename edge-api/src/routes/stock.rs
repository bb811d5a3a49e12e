//! `PUT /api/v1/products/{id}/stock` (admin): a stock count.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use contracts::commands::{SetStock, StockLevel as StockRecord};
use contracts::subjects::cmd;

use super::{caught_up, command_id, parse_id};
use crate::auth::Admin;
use crate::dto::{StockBody, StockLevel};
use crate::json::ApiJson;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::products;

/// Set the units on hand of a product.
#[utoipa::path(put, path = "/api/v1/products/{id}/stock", operation_id = "setStock", tag = "products",
    request_body = StockBody,
    params(("id" = uuid::Uuid, Path, description = "product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "stock set and visible", body = StockLevel),
        (status = 202, description = "stock set; the view is still catching up", body = StockLevel, headers(("Location" = String, description = "the product"))),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "not an admin", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such product", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "fewer units than are reserved", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StockBody>,
) -> ApiResult<Response> {
    let product_id = parse_id(&id, "product")?;
    if products::find(&state.db, product_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no product {product_id}")));
    }
    let command = SetStock {
        product_id,
        on_hand: body.on_hand,
    };
    let done = state
        .bus
        .send::<_, StockRecord>(
            cmd::WAREHOUSE_SET_STOCK,
            command_id(&headers, &caller.sub)?,
            &caller,
            command,
        )
        .await?;
    let visible = caught_up(&state.views.warehouse, done.stream_seq, state.write_wait).await;
    // The warehouse's answer is this write's outcome: a repeat under the
    // same Idempotency-Key answers the count it set, not a later one.
    let level = StockLevel {
        product_id,
        on_hand: done.value.on_hand,
        available: done.value.available,
    };
    if visible {
        return Ok((StatusCode::OK, Json(level)).into_response());
    }
    let location = format!("/api/v1/products/{product_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(level),
    )
        .into_response())
}
