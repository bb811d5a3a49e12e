//! Stock is never oversold, whatever the concurrency: many orders race for
//! few units, on two instances at once where the database allows it.

use bazaar_testkit::{wait_until, Backend};
use contracts::warehouse::{StockReservationFailedV1, StockReservedV1};
use futures::future::join_all;
use uuid::Uuid;

use crate::checkout::placed;
use crate::support::{on_every_backend, spawn_instances, Warehouse, WAIT};

/// Two instances on PostgreSQL, the deployment that has them; SQLite is one
/// process's embedded file.
fn instances(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    }
}

/// Publishes every order at once and waits for an answer to each.
async fn race(wh: &Warehouse, orders: &[Vec<(Uuid, i64)>]) -> (usize, usize) {
    let envelopes: Vec<_> = orders.iter().map(|lines| placed(lines)).collect();
    join_all(envelopes.iter().map(|e| wh.publish(e))).await;
    wait_until(WAIT, "every order is answered", || async {
        let answered = wh.events::<StockReservedV1>().await.len()
            + wh.events::<StockReservationFailedV1>().await.len();
        answered >= orders.len()
    })
    .await;
    wh.settle().await;
    (
        wh.events::<StockReservedV1>().await.len(),
        wh.events::<StockReservationFailedV1>().await.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_orders_for_ten_units_reserve_exactly_ten() {
    on_every_backend(fifty_orders_for_ten_units).await;
}

async fn fifty_orders_for_ten_units(backend: Backend) {
    // Arrange
    let wh = spawn_instances(backend, instances(backend), 1_000).await;
    let product = Uuid::now_v7();
    wh.stock(product, 10).await;

    // Act
    let orders = vec![vec![(product, 1)]; 50];
    let (reserved, failed) = race(&wh, &orders).await;

    // Assert
    assert_eq!((reserved, failed), (10, 40), "[{backend}] reserved, failed");
    assert_eq!(
        wh.level(product).await,
        Some((10, 10)),
        "[{backend}] available 0"
    );
    assert_eq!(
        wh.scalar("SELECT COUNT(*) FROM reservations WHERE status = 'held'")
            .await,
        10,
        "[{backend}] held reservations"
    );
    let last = wh.events::<StockReservedV1>().await;
    assert!(
        last.iter().all(|e| e.data.lines[0].available >= 0),
        "[{backend}] no event ever showed negative availability"
    );
    wh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_of_two_scarce_products_are_reserved_whole_or_not_at_all() {
    on_every_backend(two_products_all_or_nothing).await;
}

async fn two_products_all_or_nothing(backend: Backend) {
    // Arrange: every order wants one of each; B runs out first. Half the
    // orders list B first, so lock order comes from the service, not the order.
    let wh = spawn_instances(backend, instances(backend), 1_000).await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    wh.stock(a, 10).await;
    wh.stock(b, 5).await;
    let orders: Vec<_> = (0..30)
        .map(|n| {
            if n % 2 == 0 {
                vec![(a, 1), (b, 1)]
            } else {
                vec![(b, 1), (a, 1)]
            }
        })
        .collect();

    // Act
    let (reserved, failed) = race(&wh, &orders).await;

    // Assert
    assert_eq!((reserved, failed), (5, 25), "[{backend}] reserved, failed");
    assert_eq!(
        wh.level(a).await,
        Some((10, 5)),
        "[{backend}] A: only whole orders"
    );
    assert_eq!(
        wh.level(b).await,
        Some((5, 5)),
        "[{backend}] B: sold out, not over"
    );
    wh.stop().await;
}
