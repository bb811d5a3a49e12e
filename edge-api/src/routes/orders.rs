//! `/api/v1/orders`: place, list, read, follow, cancel, and the invoice.
//! A customer sees only their own orders; another's is 404.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use contracts::checkout::AddressV1;
use contracts::commands::{CancelOrder, FieldError, OrderItem, OrderRecord, PlaceOrder};
use contracts::subjects::cmd;
use futures::Stream;
use serde::Deserialize;
use uuid::Uuid;

use super::{cached, caught_up, command_id, parse_id};
use crate::auth::{Customer, StreamCaller};
use crate::dto::{Invoice, InvoiceLine, NewOrder, Order, OrderLine, OrderPage, TimelineEntry};
use crate::json::ApiJson;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::orders::{self, OrderView};
use crate::views::touches;

/// Place an order, from explicit items or from the basket.
#[utoipa::path(post, path = "/api/v1/orders", operation_id = "placeOrder", tag = "orders",
    request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key with the same request returns the first order; with a different request it is refused (422)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "placed and visible (usually still pending)", body = Order, headers(("Location" = String))),
        (status = 202, description = "placed; the order view is still catching up", headers(("Location" = String))),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid order (empty basket, unknown product, bad address …), or an Idempotency-Key already used for a different request", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn place(
    State(state): State<AppState>,
    Customer(caller): Customer,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewOrder>,
) -> ApiResult<Response> {
    let command = PlaceOrder {
        items: body.items.map(|items| {
            items
                .into_iter()
                .map(|i| OrderItem {
                    product_id: i.product_id,
                    quantity: i.quantity,
                })
                .collect()
        }),
        shipping_address: AddressV1 {
            name: body.shipping_address.name,
            line1: body.shipping_address.line1,
            city: body.shipping_address.city,
            postal_code: body.shipping_address.postal_code,
            country: body.shipping_address.country,
        },
        payment_method: body.payment_method,
        contact_email: body.contact_email,
    };
    let done = state
        .bus
        .send::<_, OrderRecord>(
            cmd::CHECKOUT_PLACE_ORDER,
            command_id(&headers, &caller.sub)?,
            &caller,
            command,
        )
        .await?;
    answer(
        &state,
        &caller.sub,
        done.value,
        done.stream_seq,
        StatusCode::CREATED,
    )
    .await
}

/// Cancel an order that has not shipped.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", operation_id = "cancelOrder", tag = "orders",
    params(("id" = Uuid, Path, description = "order id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "accepted. A pending order is cancelled at once. A confirmed one is cancelled once the warehouse has stopped its shipment (usually within the answer); if the shipment had already left, the order becomes shipped instead. The body is the order as it stands when answered.", body = Order),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such order of yours", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "already shipped, rejected or cancelled", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "the request has a body with fields (it takes none), or its Idempotency-Key was used for a different request", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Customer(caller): Customer,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let order_id = parse_id(&id, "order")?;
    crate::json::no_body(&body)?;
    let done = state
        .bus
        .send::<_, OrderRecord>(
            cmd::CHECKOUT_CANCEL_ORDER,
            command_id(&headers, &caller.sub)?,
            &caller,
            CancelOrder { order_id },
        )
        .await?;
    if done.value.status == "confirmed" {
        // Checkout asked the warehouse to stop the shipment; its answer
        // usually comes within milliseconds, so answer with the outcome.
        await_warehouse(&state, &caller.sub, order_id, done.stream_seq).await;
    }
    answer(
        &state,
        &caller.sub,
        done.value,
        done.stream_seq,
        StatusCode::ACCEPTED,
    )
    .await
}

/// Waits, at most the write wait, until the view no longer shows the order
/// confirmed: cancelled (the warehouse stopped the shipment) or shipped (it
/// had already left). Gives up quietly: the answer is then `confirmed`,
/// and the order's timeline shows the request.
async fn await_warehouse(state: &AppState, customer: &str, order_id: Uuid, seq: Option<u64>) {
    let deadline = tokio::time::Instant::now() + state.write_wait;
    if !caught_up(&state.views.checkout, seq, state.write_wait).await {
        return;
    }
    let mut watches = state.views.order_watches();
    let mut seen = positions(&mut watches);
    loop {
        match orders::find(&state.db, order_id, customer).await {
            Ok(Some(order)) if order.status == "confirmed" => {}
            _ => return,
        }
        if !touched(
            &mut watches,
            &mut seen,
            order_id,
            tokio::time::sleep_until(deadline),
        )
        .await
        {
            return;
        }
    }
}

/// Answers with the order view once it shows the command's event.
async fn answer(
    state: &AppState,
    customer: &str,
    record: OrderRecord,
    seq: Option<u64>,
    status: StatusCode,
) -> ApiResult<Response> {
    let location = format!("/api/v1/orders/{}", record.order_id);
    if caught_up(&state.views.checkout, seq, state.write_wait).await {
        if let Some(order) = orders::find(&state.db, record.order_id, customer).await? {
            return Ok((
                status,
                [(header::LOCATION, location)],
                Json(to_order(order)),
            )
                .into_response());
        }
    }
    let pending = Order {
        id: record.order_id,
        status: record.status,
        lines: record.lines.into_iter().map(line).collect(),
        net: record.net.into(),
        tax: None,
        total: None,
        reason: record.reason,
        created_at: record
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        updated_at: record
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        timeline: Vec::new(),
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(pending),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", operation_id = "listOrders", tag = "orders",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 100, default 20", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a page of orders", body = OrderPage),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad limit or cursor", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Customer(caller): Customer,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<OrderPage>> {
    let Query(query) = query.map_err(crate::query_params::rejected)?;
    let limit = match query.limit.as_deref() {
        None => 20,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| invalid("limit", "must be a whole number from 1 to 100".into()))?,
    };
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut page = orders::list(&state.db, &caller.sub, before, limit + 1).await?;
    let next_cursor = if page.len() as i64 > limit {
        page.truncate(limit as usize);
        page.last()
            .map(|o| encode_cursor(&o.created_at, o.order_id))
    } else {
        None
    };
    Ok(Json(OrderPage {
        items: page.into_iter().map(to_order).collect(),
        next_cursor,
    }))
}

/// One of the caller's orders, with its timeline.
#[utoipa::path(get, path = "/api/v1/orders/{id}", operation_id = "getOrder", tag = "orders",
    params(("id" = Uuid, Path, description = "order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the order", body = Order),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such order of yours", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Customer(caller): Customer,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let order_id = parse_id(&id, "order")?;
    cached(
        &state.cache.orders,
        order_id,
        &caller.sub,
        || not_found(order_id),
        find(&state, order_id, &caller.sub),
    )
    .await
}

/// The invoice of one of the caller's orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}/invoice", operation_id = "getInvoice", tag = "orders",
    params(("id" = Uuid, Path, description = "order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the invoice; `refunded_at` once the order was cancelled after it and its payment refunded", body = Invoice),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such order of yours, or not invoiced (yet)", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn invoice(
    State(state): State<AppState>,
    Customer(caller): Customer,
    Path(id): Path<String>,
) -> ApiResult<Json<Invoice>> {
    let order_id = parse_id(&id, "order")?;
    let order = find(&state, order_id, &caller.sub).await?;
    let refunded_at = order
        .timeline
        .into_iter()
        .find(|step| step.event_type.contains(".finance.payment.refunded."))
        .map(|step| step.at);
    let issued = orders::invoice(&state.db, order_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("this order has no invoice (yet)".into()))?;
    Ok(Json(Invoice {
        number: issued.number,
        order_id: issued.order_id,
        lines: issued
            .lines
            .into_iter()
            .map(|l| InvoiceLine {
                product_id: l.product_id,
                name: l.name,
                quantity: l.quantity,
                unit_price: l.unit_price.into(),
                line_total: l.line_total.into(),
            })
            .collect(),
        net: issued.net.into(),
        tax: issued.tax.into(),
        total: issued.total.into(),
        issued_at: issued
            .issued_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        refunded_at,
    }))
}

/// How long one updates stream stays open at most.
const STREAM_LIMIT: Duration = Duration::from_secs(600);

/// Server-sent events: the order view on every change (event `order`).
/// Browsers' EventSource cannot send headers, so the token may also come
/// as `?access_token=`.
#[utoipa::path(get, path = "/api/v1/orders/{id}/updates", operation_id = "followOrder", tag = "orders",
    params(
        ("id" = Uuid, Path, description = "order id"),
        ("access_token" = Option<String>, Query, description = "the customer's token, for clients that cannot send an Authorization header (a browser's EventSource); the header wins when both are sent"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "text/event-stream of `order` events, each an Order", content_type = "text/event-stream"),
        (status = 401, description = "no or invalid token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 403, description = "an admin token: baskets and orders need a customer token", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such order of yours", body = crate::dto::Problem, content_type = "application/problem+json"),
        (status = 429, description = "this customer holds 32 update streams open already (or is over the rate limit); see Retry-After", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn updates(
    State(state): State<AppState>,
    StreamCaller(caller): StreamCaller,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let order_id = parse_id(&id, "order")?;
    let held = state
        .open_streams
        .enter(&caller.sub)
        .ok_or(ApiError::TooManyStreams {
            limit: state.open_streams.limit(),
        })?;
    // The views' positions before the first read: a later touch of the
    // order above them is a change this read may not show.
    let mut watches = state.views.order_watches();
    let seen = positions(&mut watches);
    let first = find(&state, order_id, &caller.sub).await?;
    // Not past what the token allows: the stream ends when it expires, as
    // a new request with it would be refused.
    let limit = STREAM_LIMIT.min(crate::auth::time_left(&caller));
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(8);
    tokio::spawn(async move {
        follow(
            state,
            order_id,
            caller.sub,
            (first, seen),
            (watches, limit),
            tx,
        )
        .await;
        // The stream has ended: its place is free.
        drop(held);
    });
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The applied position of each view that feeds the orders, marking them seen.
fn positions(watches: &mut [OrderWatch; 3]) -> touches::Positions {
    watches.each_mut().map(|w| w.borrow_and_update().applied)
}

type OrderWatch = tokio::sync::watch::Receiver<platform::projection::Progress>;

/// Waits until an event of `order_id` has moved one of the order views past
/// `seen` (`views::touches`), then updates `seen` to the positions taken
/// just before the caller's next read; false once `until` resolves or a
/// view is gone. Waking on every view change and re-reading the order each
/// time was the cost this avoids.
async fn touched(
    watches: &mut [OrderWatch; 3],
    seen: &mut touches::Positions,
    order_id: Uuid,
    until: impl Future<Output = ()>,
) -> bool {
    tokio::pin!(until);
    loop {
        let [checkout, warehouse, finance] = &mut *watches;
        let moved = tokio::select! {
            r = checkout.changed() => r.is_ok(),
            r = warehouse.changed() => r.is_ok(),
            r = finance.changed() => r.is_ok(),
            _ = &mut until => false,
        };
        if !moved {
            return false;
        }
        let now = positions(watches);
        let touched = touches::touched_since(order_id, seen);
        *seen = now;
        if touched {
            return true;
        }
    }
}

/// Sends the order whenever a view that feeds it moved past an event of
/// this order (`views::touches`) and the order changed; stops when the
/// client goes away, after STREAM_LIMIT, or when the token expires.
async fn follow(
    state: AppState,
    order_id: Uuid,
    customer: String,
    (first, mut seen): (Order, touches::Positions),
    (mut watches, limit): ([OrderWatch; 3], Duration),
    tx: tokio::sync::mpsc::Sender<Event>,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = first;
    if tx.send(to_event(&last)).await.is_err() {
        return;
    }
    loop {
        let gone = async {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = tx.closed() => {}
            }
        };
        if !touched(&mut watches, &mut seen, order_id, gone).await {
            break;
        }
        let Ok(current) = find(&state, order_id, &customer).await else {
            break;
        };
        if current != last {
            if tx.send(to_event(&current)).await.is_err() {
                break;
            }
            last = current;
        }
    }
}

fn to_event(order: &Order) -> Event {
    Event::default()
        .event("order")
        .json_data(order)
        .unwrap_or_else(|_| Event::default().comment("unserialisable order"))
}

async fn find(state: &AppState, order_id: Uuid, customer: &str) -> ApiResult<Order> {
    orders::find(&state.db, order_id, customer)
        .await?
        .map(to_order)
        .ok_or_else(|| not_found(order_id))
}

fn not_found(order_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no order {order_id}"))
}

fn to_order(o: OrderView) -> Order {
    Order {
        id: o.order_id,
        status: o.status,
        lines: o.lines.into_iter().map(line).collect(),
        net: o.net.into(),
        tax: o.tax.map(Into::into),
        total: o.total.map(Into::into),
        reason: o.reason,
        created_at: o.created_at,
        updated_at: o.updated_at,
        timeline: o
            .timeline
            .into_iter()
            .map(|(event_type, at)| TimelineEntry { event_type, at })
            .collect(),
    }
}

fn line(l: contracts::checkout::OrderLineV1) -> OrderLine {
    OrderLine {
        product_id: l.product_id,
        sku: l.sku,
        name: l.name,
        quantity: l.quantity,
        unit_price: l.unit_price.into(),
        line_total: l.line_total.into(),
    }
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.into(),
        message,
    }])
}

fn encode_cursor(created_at: &str, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}|{id}"))
}

fn decode_cursor(raw: &str) -> ApiResult<(String, Uuid)> {
    let bad = || invalid("cursor", "not a cursor this API gave out".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (created_at, id) = text.split_once('|').ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((created_at.to_owned(), id))
}
