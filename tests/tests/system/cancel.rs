//! Cancellation (DESIGN §5): a customer may cancel a pending or confirmed
//! order until it ships; what was held is released, what was paid comes
//! back; a shipped order cannot be cancelled. A confirmed order's
//! cancellation is a request the warehouse answers: it stops the shipment
//! (then the order is cancelled) or the shipment has left (then it ships).

use bazaar_testkit::api::Order;
use bazaar_testkit::{wait_for, Service, Shop, Streams};
use contracts::subjects::evt;
use uuid::Uuid;

use crate::SETTLE;

#[tokio::test]
async fn cancelling_a_confirmed_order_before_dispatch_releases_the_stock_and_the_money() {
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "600000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("CANCEL-1", 1000, 5).await;
    let frank = shop.customer_api("frank");
    let streams = shop.streams().await;
    let order = frank.place_order_of(product.id, 2, "tok_visa").await;
    frank.wait_for_status(order.id, "confirmed", SETTLE).await;
    assert_eq!(frank.available(product.id).await, 3);

    let cancelled: Order = frank.cancel_order(order.id).await.expect(202).json();

    assert_eq!(cancelled.status, "cancelled");
    frank.wait_for_available(product.id, 5, SETTLE).await;
    let money_back = assert_cancelled_after_confirmation(&streams, order.id).await;
    let view = frank
        .wait_for_order(order.id, "the refund is on the timeline", SETTLE, |o| {
            o.has_event(money_back)
        })
        .await;
    assert_eq!(view.status, "cancelled");
    assert_eq!(view.reason.as_deref(), Some("cancelled_by_customer"));
    // Paid and invoiced before the cancellation: the invoice says refunded.
    if money_back == evt::PAYMENT_REFUNDED_V1 {
        let invoice = frank.invoice(order.id).await.expect(200).value();
        assert!(invoice["refunded_at"].is_string(), "{invoice}");
    }
    let again = frank.cancel_order(order.id).await.expect(409).problem();
    assert!(again.detail.contains("cancelled"), "{again:?}");
}

#[tokio::test]
async fn cancelling_a_shipped_order_is_refused() {
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("SHIPPED-1", 1000, 5).await;
    let gina = shop.customer_api("gina");
    let streams = shop.streams().await;
    let order = gina.place_order_of(product.id, 1, "tok_mastercard").await;
    gina.wait_for_status(order.id, "shipped", SETTLE).await;

    let refused = gina.cancel_order(order.id).await.expect(409).problem();

    assert!(refused.detail.contains("shipped"), "{refused:?}");
    let view: Order = gina.order(order.id).await.expect(200).json();
    assert_eq!(view.status, "shipped");
    let invoice = gina.invoice(order.id).await.expect(200).value();
    assert_eq!(invoice["refunded_at"], serde_json::Value::Null, "{invoice}");
    assert_eq!(gina.available(product.id).await, 4);
    assert_shipped_once(&streams, order.id, 0).await;
}

/// Cancels orders the moment they are confirmed while the warehouse ships
/// them within milliseconds, so the request and the dispatch race. Each
/// order must end one way or the other, never both: cancelled with its
/// stock and money back and nothing shipped, or shipped, paid and invoiced.
#[tokio::test]
async fn a_cancellation_racing_the_dispatch_either_stops_it_or_lets_it_ship() {
    const ORDERS: usize = 16;
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("RACE-1", 1000, 100).await;
    let ida = shop.customer_api("ida");
    let streams = shop.streams().await;
    let mut outcomes = Vec::with_capacity(ORDERS);
    for _ in 0..ORDERS {
        let order = ida.place_order_of(product.id, 1, "tok_visa").await;
        ida.wait_for_order(order.id, "the order is settled", SETTLE, |o| {
            o.status != "pending"
        })
        .await;
        let answer = ida.cancel_order(order.id).await.expect_one_of(&[202, 409]);
        if answer.status() == 202 {
            let shown = answer.json::<Order>().status;
            assert!(
                ["cancelled", "shipped", "confirmed"].contains(&shown.as_str()),
                "answered {shown}"
            );
        }
        let end = ida
            .wait_for_order(order.id, "the order is cancelled or shipped", SETTLE, |o| {
                o.status == "cancelled" || o.status == "shipped"
            })
            .await;
        outcomes.push((order.id, end.status));
    }
    let mut shipped = 0;
    for (order_id, status) in &outcomes {
        if status == "shipped" {
            shipped += 1;
            // The request lapsed (or was refused with 409): nothing was
            // released, nothing refunded.
            let requested = streams
                .order_event_counts(*order_id)
                .await
                .get(evt::ORDER_CANCELLATION_REQUESTED_V1)
                .copied()
                .unwrap_or(0);
            assert_shipped_once(&streams, *order_id, requested).await;
            continue;
        }
        assert_cancelled_after_confirmation(&streams, *order_id).await;
    }
    ida.wait_for_available(product.id, 100 - shipped, SETTLE)
        .await;
    eprintln!("{shipped} of {ORDERS} orders shipped before the cancellation reached the warehouse");
}

/// Waits until a confirmed order's money is back, and asserts its events:
/// requested, released by the warehouse, cancelled, refunded or voided
/// (finance may see the cancellation before the confirmation), nothing
/// shipped. Returns the subject that gave the money back.
async fn assert_cancelled_after_confirmation(streams: &Streams, order_id: Uuid) -> &'static str {
    let money_back = wait_for(SETTLE, "the payment is refunded or voided", || async {
        let counts = streams.order_event_counts(order_id).await;
        [evt::PAYMENT_REFUNDED_V1, evt::PAYMENT_VOIDED_V1]
            .into_iter()
            .find(|s| counts.contains_key(*s))
    })
    .await;
    let captured = usize::from(money_back == evt::PAYMENT_REFUNDED_V1);
    streams
        .assert_order_events(
            order_id,
            &[
                (evt::ORDER_PLACED_V2, 1),
                (evt::STOCK_RESERVED_V1, 1),
                (evt::PAYMENT_AUTHORIZED_V1, 1),
                (evt::ORDER_CONFIRMED_V1, 1),
                (evt::PAYMENT_CAPTURED_V1, captured),
                (evt::INVOICE_ISSUED_V1, captured),
                (evt::ORDER_CANCELLATION_REQUESTED_V1, 1),
                (evt::ORDER_CANCELLED_V1, 1),
                (evt::STOCK_RELEASED_V1, 1),
                (money_back, 1),
            ],
        )
        .await;
    money_back
}

/// The events of an order that shipped, paid and invoiced once, whose
/// cancellation was requested `requested` times (0 or 1) in vain.
async fn assert_shipped_once(streams: &Streams, order_id: Uuid, requested: usize) {
    streams
        .wait_for_order_event(evt::INVOICE_ISSUED_V1, order_id, SETTLE)
        .await;
    streams
        .assert_order_events(
            order_id,
            &[
                (evt::ORDER_PLACED_V2, 1),
                (evt::STOCK_RESERVED_V1, 1),
                (evt::PAYMENT_AUTHORIZED_V1, 1),
                (evt::ORDER_CONFIRMED_V1, 1),
                (evt::PAYMENT_CAPTURED_V1, 1),
                (evt::INVOICE_ISSUED_V1, 1),
                (evt::SHIPMENT_DISPATCHED_V1, 1),
                (evt::ORDER_CANCELLATION_REQUESTED_V1, requested),
            ],
        )
        .await;
}

#[tokio::test]
async fn a_pending_order_can_be_cancelled_and_nothing_stays_held() {
    let shop = Shop::builder()
        .env_for(Service::Finance, "BAZAAR_SLOW_TOKEN_MS", "3000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("PENDING-1", 1000, 5).await;
    let hans = shop.customer_api("hans");
    let streams = shop.streams().await;
    let order = hans.place_order_of(product.id, 2, "tok_slow").await;
    assert_eq!(order.status, "pending");

    let cancelled: Order = hans.cancel_order(order.id).await.expect(202).json();

    assert_eq!(cancelled.status, "cancelled");
    hans.wait_for_available(product.id, 5, SETTLE).await;
    streams
        .wait_for_order_event(evt::PAYMENT_VOIDED_V1, order.id, SETTLE)
        .await;
    streams
        .assert_order_events(
            order.id,
            &[
                (evt::ORDER_PLACED_V2, 1),
                (evt::STOCK_RESERVED_V1, 1),
                (evt::ORDER_CANCELLED_V1, 1),
                (evt::STOCK_RELEASED_V1, 1),
                (evt::PAYMENT_AUTHORIZED_V1, 1),
                (evt::PAYMENT_VOIDED_V1, 1),
            ],
        )
        .await;
    let view: Order = hans.order(order.id).await.expect(200).json();
    assert_eq!(
        view.status, "cancelled",
        "a late authorisation changes nothing"
    );
}
