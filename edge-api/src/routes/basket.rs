//! `/api/v1/basket`: the caller's basket.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use contracts::commands::{Basket as BasketRecord, PutBasketItem};
use contracts::subjects::cmd;
use contracts::Money;

use super::{caught_up, command_id, parse_id};
use crate::auth::Customer;
use crate::dto::{Basket, BasketItemBody, BasketLine};
use crate::json::ApiJson;
use crate::problem::ApiResult;
use crate::state::AppState;
use crate::views::baskets;

/// The caller's basket.
#[utoipa::path(get, path = "/api/v1/basket", operation_id = "getBasket", tag = "basket", security(("bearer" = [])),
    responses(
        (status = 200, description = "the basket", body = Basket),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Customer(caller): Customer,
) -> ApiResult<Json<Basket>> {
    Ok(Json(read(&state, &caller.sub).await?))
}

/// Set the quantity of a product in the basket (0 removes it).
#[utoipa::path(put, path = "/api/v1/basket/items/{product_id}", operation_id = "putBasketItem", tag = "basket",
    request_body = BasketItemBody,
    params(("product_id" = uuid::Uuid, Path, description = "product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the basket after the change", body = Basket),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such product", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid quantity", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_item(
    State(state): State<AppState>,
    Customer(caller): Customer,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BasketItemBody>,
) -> ApiResult<Json<Basket>> {
    let product_id = parse_id(&product_id, "product")?;
    change(&state, &caller, &headers, product_id, body.quantity).await
}

/// Remove a product from the basket.
#[utoipa::path(delete, path = "/api/v1/basket/items/{product_id}", operation_id = "deleteBasketItem", tag = "basket",
    params(("product_id" = uuid::Uuid, Path, description = "product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the basket after the change; removing a product the basket does not hold (or that does not exist) changes nothing and answers the basket as it is", body = Basket),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "the path's id is not a product id (not a UUID)", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_item(
    State(state): State<AppState>,
    Customer(caller): Customer,
    Path(product_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Basket>> {
    let product_id = parse_id(&product_id, "product")?;
    change(&state, &caller, &headers, product_id, 0).await
}

async fn change(
    state: &AppState,
    caller: &contracts::auth::Claims,
    headers: &HeaderMap,
    product_id: uuid::Uuid,
    quantity: i64,
) -> ApiResult<Json<Basket>> {
    let command = PutBasketItem {
        product_id,
        quantity,
    };
    let done = state
        .bus
        .send::<_, BasketRecord>(
            cmd::CHECKOUT_PUT_BASKET_ITEM,
            command_id(headers, &caller.sub)?,
            caller,
            command,
        )
        .await?;
    // A read right after the answer sees the change (bounded wait). The
    // answer itself is checkout's account of the basket after this change:
    // a repeat under the same Idempotency-Key gets that first outcome, not
    // the basket as later writes left it.
    let _ = caught_up(&state.views.checkout, done.stream_seq, state.write_wait).await;
    let b = done.value;
    let ids: Vec<_> = b.lines.iter().map(|l| l.product_id).collect();
    let available = baskets::available(&state.db, &ids).await?;
    Ok(Json(Basket {
        items: b
            .lines
            .into_iter()
            .zip(available)
            .map(|(l, available)| BasketLine {
                product_id: l.product_id,
                name: l.name,
                quantity: l.quantity,
                unit_price: l.unit_price.into(),
                line_total: l.line_total.into(),
                available,
            })
            .collect(),
        total: b.total.into(),
    }))
}

async fn read(state: &AppState, customer: &str) -> ApiResult<Basket> {
    let lines = baskets::find(&state.db, customer).await?;
    let mut total = Money::eur(0);
    let mut items = Vec::with_capacity(lines.len());
    for l in lines {
        let line_total = l
            .unit_price
            .checked_mul(l.quantity)
            .unwrap_or_else(|| Money::eur(0));
        total = total.checked_add(&line_total).unwrap_or(total);
        items.push(BasketLine {
            product_id: l.product_id,
            name: l.name,
            quantity: l.quantity,
            unit_price: l.unit_price.into(),
            line_total: line_total.into(),
            available: l.available,
        });
    }
    Ok(Basket {
        items,
        total: total.into(),
    })
}
