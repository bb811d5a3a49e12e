//! Shipments: scheduled on confirmation, dispatched once due, cancelled by a
//! cancellation that comes first, and never undone by one that comes after.

use bazaar_testkit::{wait_until, Backend};
use contracts::warehouse::{ShipmentDispatchedV1, StockLevelV1, StockReleasedV1, StockReservedV1};
use uuid::Uuid;

use crate::checkout::{cancelled, confirmed, placed};
use crate::support::{
    on_every_backend, spawn_instances, spawn_warehouse, Warehouse, DISPATCH_DELAY_MS, WAIT,
};

/// Stocks a product and places a reserved order for `quantity` of it.
async fn reserved_order(wh: &Warehouse, on_hand: i64, quantity: i64) -> (Uuid, Uuid) {
    let product = Uuid::now_v7();
    wh.stock(product, on_hand).await;
    let order = placed(&[(product, quantity)]);
    wh.publish(&order).await;
    wh.wait_event::<StockReservedV1>("the order is reserved", |e| {
        e.order_id == order.data.order_id
    })
    .await;
    (order.data.order_id, product)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_is_dispatched_after_the_delay() {
    on_every_backend(confirmed_order_dispatched).await;
}

async fn confirmed_order_dispatched(backend: Backend) {
    // Arrange
    let wh = spawn_warehouse(backend).await;
    let (order_id, product) = reserved_order(&wh, 5, 2).await;

    // Act
    let confirmation = confirmed(order_id);
    let confirmed_at = chrono::Utc::now();
    wh.publish(&confirmation).await;
    let dispatched = wh
        .wait_event::<ShipmentDispatchedV1>("the shipment leaves", |e| e.order_id == order_id)
        .await;
    wh.settle().await;

    // Assert
    assert_eq!(
        dispatched.data.lines,
        vec![StockLevelV1 {
            product_id: product,
            quantity: 2,
            on_hand: 3,
            available: 3
        }],
        "[{backend}] stock taken off the shelf"
    );
    let waited = dispatched.data.dispatched_at - confirmed_at;
    assert!(
        waited >= chrono::Duration::milliseconds(DISPATCH_DELAY_MS as i64),
        "[{backend}] dispatched after the delay, not {waited}"
    );
    assert_eq!(
        dispatched.causationid,
        confirmation.id.to_string(),
        "[{backend}] caused by the confirmation"
    );
    assert_eq!(
        dispatched.correlationid, confirmation.correlationid,
        "[{backend}] same flow"
    );
    assert_eq!(wh.level(product).await, Some((3, 0)), "[{backend}]");
    assert_eq!(
        wh.reservations(order_id).await,
        vec![(product.to_string(), 2, "shipped".to_owned())],
        "[{backend}]"
    );
    assert_eq!(
        wh.shipment_status(order_id).await.as_deref(),
        Some("dispatched"),
        "[{backend}]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_shipped_order_releases_nothing() {
    on_every_backend(cancel_after_dispatch).await;
}

async fn cancel_after_dispatch(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let (order_id, product) = reserved_order(&wh, 5, 2).await;
    wh.publish(&confirmed(order_id)).await;
    wh.wait_event::<ShipmentDispatchedV1>("the shipment leaves", |e| e.order_id == order_id)
        .await;

    wh.publish(&cancelled(order_id)).await;
    wh.settle().await;

    assert!(
        wh.events_of::<StockReleasedV1>(order_id).await.is_empty(),
        "[{backend}] nothing released"
    );
    assert_eq!(wh.level(product).await, Some((3, 0)), "[{backend}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_dispatch_releases_the_stock_and_cancels_the_shipment() {
    on_every_backend(cancel_before_dispatch).await;
}

async fn cancel_before_dispatch(backend: Backend) {
    // A long delay, so the cancellation surely comes first.
    let wh = spawn_instances(backend, 1, 60_000).await;
    let (order_id, product) = reserved_order(&wh, 5, 2).await;
    wh.publish(&confirmed(order_id)).await;
    wh.settle().await;
    assert_eq!(
        wh.shipment_status(order_id).await.as_deref(),
        Some("scheduled"),
        "[{backend}]"
    );

    wh.publish(&cancelled(order_id)).await;
    wh.wait_event::<StockReleasedV1>("the stock is released", |e| e.order_id == order_id)
        .await;
    wh.settle().await;

    assert_eq!(
        wh.shipment_status(order_id).await.as_deref(),
        Some("cancelled"),
        "[{backend}] a cancelled shipment can no longer be claimed"
    );
    assert_eq!(wh.level(product).await, Some((5, 0)), "[{backend}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_dispatch_each_shipment_once() {
    on_every_backend(two_instances_dispatch_once).await;
}

async fn two_instances_dispatch_once(backend: Backend) {
    // Both dispatchers see every due shipment; the claim lets one win.
    let wh = spawn_instances(backend, 2, DISPATCH_DELAY_MS).await;
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(reserved_order(&wh, 3, 1).await);
    }

    for (order_id, _) in &orders {
        wh.publish(&confirmed(*order_id)).await;
    }
    wait_until(WAIT, "every shipment leaves", || async {
        wh.events::<ShipmentDispatchedV1>().await.len() >= orders.len()
    })
    .await;
    wh.settle().await;

    for (order_id, product) in &orders {
        assert_eq!(
            wh.events_of::<ShipmentDispatchedV1>(*order_id).await.len(),
            1,
            "[{backend}] order {order_id} shipped once"
        );
        assert_eq!(wh.level(*product).await, Some((2, 0)), "[{backend}]");
    }
    wh.stop().await;
}
