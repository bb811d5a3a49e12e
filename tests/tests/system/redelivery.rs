//! Exactly-once effects on at-least-once delivery (DESIGN §4): an event that
//! reaches its consumers a second time changes nothing.

use async_nats::HeaderMap;
use bazaar_testkit::api::{NewOrder, Order};
use bazaar_testkit::{wait_until, Service, Shop, StoredEvent, Streams};
use contracts::subjects::{durable, evt};
use contracts::Team;
use uuid::Uuid;

use crate::SETTLE;

/// Stores `event` on its stream again as `ops`, with its own headers but a
/// fresh `Nats-Msg-Id`, so the broker's de-duplication lets it through: to
/// the consumers it is the same event (same CloudEvents id) delivered twice.
/// Returns the copy's stream sequence.
async fn deliver_again(streams: &Streams, event: &StoredEvent) -> u64 {
    let mut headers = HeaderMap::new();
    for (name, values) in event.headers.iter() {
        if name.to_string() != "Nats-Msg-Id" {
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
    streams
        .publish(&event.subject, headers, event.payload.clone())
        .await
}

fn find<'a>(events: &'a [StoredEvent], subject: &str) -> &'a StoredEvent {
    events
        .iter()
        .find(|e| e.subject == subject)
        .unwrap_or_else(|| panic!("no {subject} among {events:?}"))
}

#[tokio::test]
async fn events_delivered_twice_take_effect_once() {
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "300")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("TWICE-1", 2000, 10).await;
    let sentinel_product = shop.stocked_product("TWICE-2", 100, 10).await;
    let ivy = shop.customer_api("ivy");
    let streams = shop.streams().await;
    let order: Order = ivy
        .place_order(&NewOrder::of(product.id, 3, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    ivy.wait_for_status(order.id, "shipped", SETTLE).await;
    streams
        .wait_for_order_event(evt::INVOICE_ISSUED_V1, order.id, SETTLE)
        .await;
    let before: Order = ivy.order(order.id).await.expect(200).json();
    let invoice_before = ivy.invoice(order.id).await.expect(200).value();

    // Every reaction's input, once more: checkout's order events to
    // warehouse and finance, their answers to checkout.
    let events = streams.events_of_order(order.id).await;
    let mut copies = Vec::new();
    for subject in [
        evt::ORDER_PLACED_V2,
        evt::ORDER_CONFIRMED_V1,
        evt::STOCK_RESERVED_V1,
        evt::PAYMENT_AUTHORIZED_V1,
        evt::SHIPMENT_DISPATCHED_V1,
    ] {
        let event = find(&events, subject);
        copies.push((event.stream.clone(), deliver_again(&streams, event).await));
    }
    let consumers = [
        (Team::Checkout.stream(), durable::WAREHOUSE),
        (Team::Checkout.stream(), durable::FINANCE),
        (Team::Warehouse.stream(), durable::CHECKOUT),
        (Team::Finance.stream(), durable::CHECKOUT),
    ];
    wait_until(SETTLE, "every consumer has handled the copies", || async {
        for (stream, durable) in consumers {
            let last = copies
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, seq)| *seq)
                .max()
                .unwrap_or(0);
            if !streams.consumer_passed(stream, durable, last).await {
                return false;
            }
        }
        true
    })
    .await;
    // A barrier: a later order's whole saga. Each service publishes its
    // outbox in order and dispatches due shipments in order, so anything
    // the copies caused is on the streams before this order ships.
    let sentinel: Order = ivy
        .place_order(&NewOrder::of(sentinel_product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    ivy.wait_for_status(sentinel.id, "shipped", SETTLE).await;
    streams
        .wait_for_order_event(evt::INVOICE_ISSUED_V1, sentinel.id, SETTLE)
        .await;

    streams
        .assert_order_events(
            order.id,
            &[
                (evt::ORDER_PLACED_V2, 1),
                (evt::STOCK_RESERVED_V1, 1),
                (evt::PAYMENT_AUTHORIZED_V1, 1),
                (evt::ORDER_CONFIRMED_V1, 1),
                (evt::PAYMENT_CAPTURED_V1, 1),
                (evt::INVOICE_ISSUED_V1, 1),
                (evt::SHIPMENT_DISPATCHED_V1, 1),
            ],
        )
        .await;
    assert_eq!(
        ivy.available(product.id).await,
        7,
        "reserved once, not twice"
    );
    let after: Order = ivy.order(order.id).await.expect(200).json();
    assert_eq!(after.status, "shipped");
    assert_eq!((&after.tax, &after.total), (&before.tax, &before.total));
    assert_eq!(
        after.steps(),
        before.steps(),
        "the customer's timeline shows each step once"
    );
    assert_eq!(
        ivy.invoice(order.id).await.expect(200).value(),
        invoice_before
    );
    let numbers: Vec<String> = streams
        .events(Team::Finance.stream())
        .await
        .iter()
        .filter(|e| e.subject == evt::INVOICE_ISSUED_V1)
        .filter_map(|e| e.data()["number"].as_str().map(str::to_owned))
        .collect();
    let year = chrono::Utc::now().format("%Y");
    assert_eq!(
        numbers,
        [format!("{year}-000001"), format!("{year}-000002")],
        "no invoice number was spent on a duplicate"
    );
}

#[tokio::test]
async fn a_stock_level_delivered_twice_does_not_turn_availability_back() {
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "600000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("LEVEL-1", 1000, 10).await;
    let other = shop.stocked_product("LEVEL-2", 1000, 1).await;
    let admin = shop.admin_api();
    let olga = shop.customer_api("olga");
    let streams = shop.streams().await;
    let order: Order = olga
        .place_order(&NewOrder::of(product.id, 3, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    olga.wait_for_status(order.id, "confirmed", SETTLE).await;
    assert_eq!(olga.available(product.id).await, 7);

    // The stock count that said "10 available" reaches its readers again.
    let warehouse = streams.events(Team::Warehouse.stream()).await;
    let adjusted = warehouse
        .iter()
        .find(|e| {
            e.subject == evt::STOCK_ADJUSTED_V1 && e.data()["product_id"] == product.id.to_string()
        })
        .expect("the stock count of the product");
    deliver_again(&streams, adjusted).await;
    // A later stock write answers once the edge's view has passed it, and
    // with it the copy before it.
    admin.set_stock(other.id, 2).await.expect(200);

    assert_eq!(
        olga.available(product.id).await,
        7,
        "three of ten units are reserved, whatever is delivered twice"
    );
}
