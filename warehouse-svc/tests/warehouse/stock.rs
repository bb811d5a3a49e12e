//! `cmd.warehouse.set-stock`: who may count stock, to what, and what it tells.

use bazaar_testkit::Backend;
use contracts::auth::Role;
use contracts::commands::{ErrorKind, Reply, StockLevel};
use contracts::warehouse::{StockAdjustedV1, StockReservedV1};
use uuid::Uuid;

use crate::checkout::placed;
use crate::support::{on_every_backend, spawn_warehouse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_stock_publishes_stock_adjusted_with_the_resulting_levels() {
    on_every_backend(set_stock_publishes_adjusted).await;
}

async fn set_stock_publishes_adjusted(backend: Backend) {
    // Arrange
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();

    // Act: count 10, hold 3 for an order, recount to 20, then to 20 again.
    let first = wh.set_stock(product, 10).await;
    let order = placed(&[(product, 3)]);
    wh.publish(&order).await;
    wh.wait_event::<StockReservedV1>("the order is reserved", |e| {
        e.order_id == order.data.order_id
    })
    .await;
    let second = wh.set_stock(product, 20).await;
    let unchanged = wh.set_stock(product, 20).await;
    wh.settle().await;

    // Assert
    let level = |on_hand, available| StockLevel {
        product_id: product,
        on_hand,
        available,
    };
    assert!(
        matches!(&first, Reply::Ok { value, stream_seq: Some(_) } if *value == level(10, 10)),
        "[{backend}] first count: {first:?}"
    );
    assert!(
        matches!(&second, Reply::Ok { value, .. } if *value == level(20, 17)),
        "[{backend}] recount: {second:?}"
    );
    assert!(
        matches!(&unchanged, Reply::Ok { value, stream_seq: None } if *value == level(20, 17)),
        "[{backend}] a count that changes nothing still answers: {unchanged:?}"
    );
    let adjusted: Vec<StockAdjustedV1> = wh
        .events::<StockAdjustedV1>()
        .await
        .into_iter()
        .map(|e| e.data)
        .collect();
    let adjusted_to = |delta, on_hand, available| StockAdjustedV1 {
        product_id: product,
        delta,
        on_hand,
        available,
    };
    assert_eq!(
        adjusted,
        vec![adjusted_to(10, 10, 10), adjusted_to(10, 20, 17)],
        "[{backend}] one event per change, none for the unchanged count"
    );
    assert_eq!(wh.level(product).await, Some((20, 3)), "[{backend}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_stock_is_forbidden_to_a_customer() {
    on_every_backend(set_stock_forbidden_to_customer).await;
}

async fn set_stock_forbidden_to_customer(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();

    let reply = wh.set_stock_as(Role::Customer, "cmd-1", product, 5).await;
    wh.settle().await;

    assert!(
        matches!(&reply, Reply::Error { error } if error.kind == ErrorKind::Forbidden),
        "[{backend}] {reply:?}"
    );
    assert_eq!(wh.level(product).await, None, "[{backend}] nothing stored");
    assert!(
        wh.events::<StockAdjustedV1>().await.is_empty(),
        "[{backend}] nothing published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_stock_outside_zero_to_a_billion_is_invalid_on_field_on_hand() {
    on_every_backend(set_stock_out_of_range).await;
}

async fn set_stock_out_of_range(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();

    for on_hand in [-1, 1_000_000_001] {
        let reply = wh.set_stock(product, on_hand).await;
        assert!(
            matches!(&reply, Reply::Error { error }
                if error.kind == ErrorKind::Invalid && error.errors.iter().any(|f| f.field == "on_hand")),
            "[{backend}] on_hand {on_hand}: {reply:?}"
        );
    }
    let top = wh.set_stock(product, 1_000_000_000).await;
    assert!(matches!(top, Reply::Ok { .. }), "[{backend}] {top:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_stock_below_the_reserved_units_is_a_conflict() {
    on_every_backend(set_stock_below_reserved).await;
}

async fn set_stock_below_reserved(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();
    wh.stock(product, 5).await;
    let order = placed(&[(product, 3)]);
    wh.publish(&order).await;
    wh.wait_event::<StockReservedV1>("the order is reserved", |e| {
        e.order_id == order.data.order_id
    })
    .await;

    let reply = wh.set_stock(product, 2).await;

    assert!(
        matches!(&reply, Reply::Error { error }
            if error.kind == ErrorKind::Conflict && error.message == "3 units are reserved for open orders"),
        "[{backend}] {reply:?}"
    );
    assert_eq!(
        wh.level(product).await,
        Some((5, 3)),
        "[{backend}] unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_set_stock_command_returns_the_first_reply_and_changes_nothing() {
    on_every_backend(set_stock_repeated).await;
}

async fn set_stock_repeated(backend: Backend) {
    let wh = spawn_warehouse(backend).await;
    let product = Uuid::now_v7();

    let first = wh.set_stock_as(Role::Admin, "count-42", product, 7).await;
    let again = wh.set_stock_as(Role::Admin, "count-42", product, 7).await;
    let other = wh.set_stock_as(Role::Admin, "count-42", product, 9).await;
    wh.settle().await;

    assert!(matches!(first, Reply::Ok { .. }), "[{backend}] {first:?}");
    assert_eq!(again, first, "[{backend}] the repeat gets the first reply");
    assert!(
        matches!(&other, Reply::Error { error } if error.kind == ErrorKind::Invalid),
        "[{backend}] the id sent with another count is refused: {other:?}"
    );
    assert_eq!(wh.level(product).await, Some((7, 0)), "[{backend}]");
    assert_eq!(
        wh.events::<StockAdjustedV1>().await.len(),
        1,
        "[{backend}] one event"
    );
}
