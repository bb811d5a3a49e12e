//! `/api/v1/products`: catalog writes (admin) and reads (public).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use contracts::commands::{CreateProduct, FieldError, ProductRecord, UpdateProduct};

use super::{cached, caught_up, command_id, parse_id};
use contracts::subjects::cmd;

use crate::auth::Admin;
use crate::dto::{NewProduct, Product, ProductPatch};
use crate::json::ApiJson;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::products::{self, ProductRow};

/// Create a product.
#[utoipa::path(post, path = "/api/v1/products", operation_id = "createProduct", tag = "products",
    request_body = NewProduct,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat a request safely: the same key with the same request returns the first outcome; with a different request it is refused (422)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created and visible", body = Product, headers(("Location" = String))),
        (status = 202, description = "created; the catalog view is still catching up", body = Product, headers(("Location" = String))),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "not an admin", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "the SKU exists", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "body over 64 KiB", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body, or an Idempotency-Key already used for a different request", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewProduct>,
) -> ApiResult<Response> {
    let command = CreateProduct {
        sku: body.sku,
        name: body.name,
        description: body.description,
        category: body.category,
        price: body.price.into(),
    };
    let command_id = command_id(&headers, &caller.sub)?;
    let done = state
        .bus
        .send::<_, ProductRecord>(cmd::PRODUCT_CREATE, command_id, &caller, command)
        .await?;
    written(&state, done.value, done.stream_seq, StatusCode::CREATED).await
}

/// Change a product's name, description, category or price.
#[utoipa::path(patch, path = "/api/v1/products/{id}", operation_id = "updateProduct", tag = "products",
    request_body = ProductPatch,
    params(("id" = Uuid, Path, description = "product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "updated and visible", body = Product),
        (status = 202, description = "updated; the view is still catching up", body = Product, headers(("Location" = String))),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "not an admin", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such product", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<ProductPatch>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "product")?;
    if patch.name.is_none()
        && patch.description.is_none()
        && patch.category.is_none()
        && patch.price.is_none()
    {
        return Err(ApiError::Validation(vec![FieldError {
            field: String::new(),
            message: "give at least one of name, description, category, price".into(),
        }]));
    }
    let command = UpdateProduct {
        product_id: id,
        name: patch.name,
        description: patch.description,
        category: patch.category,
        price: patch.price.map(Into::into),
    };
    let done = state
        .bus
        .send::<_, ProductRecord>(
            cmd::PRODUCT_UPDATE,
            command_id(&headers, &caller.sub)?,
            &caller,
            command,
        )
        .await?;
    written(&state, done.value, done.stream_seq, StatusCode::OK).await
}

/// A product, with live availability.
#[utoipa::path(get, path = "/api/v1/products/{id}", operation_id = "getProduct", tag = "products",
    params(("id" = Uuid, Path, description = "product id")),
    responses(
        (status = 200, description = "the product", body = Product),
        (status = 404, description = "no such product", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id, "product")?;
    let not_found = move || ApiError::NotFound(format!("no product {id}"));
    // Public: every answer belongs to no one.
    let fetch = async {
        let row = products::find(&state.db, id).await?.ok_or_else(not_found)?;
        Ok(to_product(row))
    };
    cached(&state.cache.products, id, "", not_found, fetch).await
}

/// Answers a write once the edge's own view reflects it (read-your-writes),
/// or with 202 when the view has not caught up within the bound. The body
/// is the write's own outcome (the product service's record), with live
/// availability: a repeat under the same `Idempotency-Key` answers what the
/// first request did, not a later write's values.
async fn written(
    state: &AppState,
    value: ProductRecord,
    seq: Option<u64>,
    status: StatusCode,
) -> ApiResult<Response> {
    let location = format!("/api/v1/products/{}", value.id);
    if caught_up(&state.views.products, seq, state.write_wait).await {
        if let Some(row) = products::find(&state.db, value.id).await? {
            return Ok((
                status,
                [(header::LOCATION, location)],
                Json(outcome(value, row.available)),
            )
                .into_response());
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(outcome(value, 0)),
    )
        .into_response())
}

fn outcome(value: ProductRecord, available: i64) -> Product {
    Product {
        id: value.id,
        sku: value.sku,
        name: value.name,
        description: value.description,
        category: value.category,
        price: value.price.into(),
        available,
        status: value.status,
    }
}

fn to_product(row: ProductRow) -> Product {
    Product {
        id: row.id,
        sku: row.sku,
        name: row.name,
        description: row.description,
        category: row.category,
        price: row.price.into(),
        available: row.available,
        status: row.status,
    }
}
