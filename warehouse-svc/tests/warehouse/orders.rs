//! Reservations: all or nothing, released on rejection or cancellation,
//! exactly once per order whatever the broker redelivers.

use bazaar_testkit::{wait_until, Backend};
use contracts::subjects::evt;
use contracts::warehouse::{
    ShortLineV1, StockLevelV1, StockReleasedV1, StockReservationFailedV1, StockReservedV1,
};
use uuid::Uuid;

use crate::checkout::{placed, rejected};
use crate::support::{on_every_backend, spawn_warehouse, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_with_one_short_line_reserves_nothing() {
    on_every_backend(one_short_line_reserves_nothing).await;
}

async fn one_short_line_reserves_nothing(backend: Backend) {
    // Arrange
    let wh = spawn_warehouse(backend).await;
    let (plenty, scarce) = (Uuid::now_v7(), Uuid::now_v7());
    wh.stock(plenty, 5).await;
    wh.stock(scarce, 1).await;

    // Act
    let order = placed(&[(plenty, 2), (scarce, 2)]);
    wh.publish(&order).await;
    let failed = wh
        .wait_event::<StockReservationFailedV1>("the reservation fails", |e| {
            e.order_id == order.data.order_id
        })
        .await;
    wh.settle().await;

    // Assert
    assert_eq!(
        failed.data,
        StockReservationFailedV1 {
            order_id: order.data.order_id,
            reason: "out_of_stock".to_owned(),
            short: vec![ShortLineV1 {
                product_id: scarce,
                requested: 2,
                available: 1
            }],
        },
        "[{backend}]"
    );
    assert_eq!(
        failed.causationid,
        order.id.to_string(),
        "[{backend}] caused by the order"
    );
    assert_eq!(
        wh.level(plenty).await,
        Some((5, 0)),
        "[{backend}] nothing held"
    );
    assert_eq!(
        wh.level(scarce).await,
        Some((1, 0)),
        "[{backend}] nothing held"
    );
    assert!(
        wh.reservations(order.data.order_id).await.is_empty(),
        "[{backend}]"
    );
    assert!(
        wh.events_of::<StockReservedV1>(order.data.order_id)
            .await
            .is_empty(),
        "[{backend}]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_a_product_never_stocked_fails_as_unknown_product() {
    on_every_backend(unknown_product_fails).await;
}

async fn unknown_product_fails(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let never_stocked = Uuid::now_v7();

    let order = placed(&[(never_stocked, 1)]);
    wh.publish(&order).await;
    let failed = wh
        .wait_event::<StockReservationFailedV1>("the reservation fails", |e| {
            e.order_id == order.data.order_id
        })
        .await;

    assert_eq!(failed.data.reason, "unknown_product", "[{backend}]");
    assert_eq!(
        wh.level(never_stocked).await,
        None,
        "[{backend}] no row made up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_order_releases_its_stock() {
    on_every_backend(rejected_order_releases).await;
}

async fn rejected_order_releases(backend: Backend) {
    // Arrange: an order with two lines of one product, reserved.
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();
    wh.stock(product, 5).await;
    let order = placed(&[(product, 1), (product, 1)]);
    let order_id = order.data.order_id;
    wh.publish(&order).await;
    let reserved = wh
        .wait_event::<StockReservedV1>("the order is reserved", |e| e.order_id == order_id)
        .await;

    // Act: rejected, then rejected again by a second event.
    wh.publish(&rejected(order_id)).await;
    let released = wh
        .wait_event::<StockReleasedV1>("the stock is released", |e| e.order_id == order_id)
        .await;
    wh.publish(&rejected(order_id)).await;
    wh.settle().await;

    // Assert
    let line = |on_hand, available| StockLevelV1 {
        product_id: product,
        quantity: 2,
        on_hand,
        available,
    };
    assert_eq!(
        reserved.data.lines,
        vec![line(5, 3)],
        "[{backend}] lines summed"
    );
    assert_eq!(released.data.lines, vec![line(5, 5)], "[{backend}]");
    assert_eq!(
        wh.events_of::<StockReleasedV1>(order_id).await.len(),
        1,
        "[{backend}] released once"
    );
    assert_eq!(wh.level(product).await, Some((5, 0)), "[{backend}]");
    assert_eq!(
        wh.reservations(order_id).await,
        vec![(product.to_string(), 2, "released".to_owned())],
        "[{backend}]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_order_placed_delivered_twice_reserves_once() {
    on_every_backend(duplicate_placed_reserves_once).await;
}

async fn duplicate_placed_reserves_once(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();
    wh.stock(product, 10).await;
    let order = placed(&[(product, 3)]);
    let order_id = order.data.order_id;

    // The same event under two message ids passes the broker's
    // de-duplication; a second event for the same order (a new id) too.
    wh.publish_with_msg_id(&order, "first").await;
    wh.publish_with_msg_id(&order, "second").await;
    let mut twin = order.clone();
    twin.id = Uuid::now_v7();
    wh.publish(&twin).await;
    wh.settle().await;

    assert_eq!(
        wh.events_of::<StockReservedV1>(order_id).await.len(),
        1,
        "[{backend}] reserved once"
    );
    assert!(
        wh.events_of::<StockReservationFailedV1>(order_id)
            .await
            .is_empty(),
        "[{backend}] and not failed as well"
    );
    assert_eq!(wh.level(product).await, Some((10, 3)), "[{backend}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_rejected_before_it_is_placed_holds_nothing() {
    on_every_backend(rejected_before_placed).await;
}

async fn rejected_before_placed(backend: Backend) {
    // Checkout timed the order out while the warehouse was behind; the
    // placement arrives after the rejection.
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();
    wh.stock(product, 10).await;
    let order = placed(&[(product, 4)]);

    wh.publish(&rejected(order.data.order_id)).await;
    wh.settle().await;
    wh.publish(&order).await;
    wh.settle().await;

    assert!(
        wh.events_of::<StockReservedV1>(order.data.order_id)
            .await
            .is_empty(),
        "[{backend}]"
    );
    assert!(
        wh.events_of::<StockReleasedV1>(order.data.order_id)
            .await
            .is_empty(),
        "[{backend}]"
    );
    assert_eq!(wh.level(product).await, Some((10, 0)), "[{backend}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_dead_lettered_and_the_next_one_handled() {
    on_every_backend(undecodable_is_dead_lettered).await;
}

async fn undecodable_is_dead_lettered(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();
    wh.stock(product, 1).await;

    wh.publish_raw(evt::ORDER_PLACED_V1, b"{not json".to_vec(), "garbage")
        .await;
    let order = placed(&[(product, 1)]);
    wh.publish(&order).await;
    wh.wait_event::<StockReservedV1>("the next order is reserved", |e| {
        e.order_id == order.data.order_id
    })
    .await;

    wait_until(WAIT, "the bad event is dead-lettered", || async {
        wh.dead_letters().await == 1
    })
    .await;
}
