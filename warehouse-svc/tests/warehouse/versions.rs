//! `order.placed` in both major versions: checkout publishes v2 now, and
//! the stream's history still holds v1. A warehouse that replays history
//! holding both has the same effects for each.

use bazaar_testkit::Backend;
use contracts::warehouse::{ShipmentDispatchedV1, StockLevelV1, StockReservedV1};
use uuid::Uuid;

use crate::checkout::{confirmed, placed, placed_v2};
use crate::support::{on_every_backend, spawn_warehouse, Warehouse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_holding_order_placed_v1_and_v2_reserves_and_ships_both_alike() {
    on_every_backend(both_versions_have_the_same_effects).await;
}

async fn both_versions_have_the_same_effects(backend: Backend) {
    // Arrange: stock for two products, then history written while no
    // warehouse runs: one order placed under v1, one under v2, both confirmed.
    let mut wh = spawn_warehouse(backend).await;
    let (old_product, new_product) = (Uuid::now_v7(), Uuid::now_v7());
    wh.stock(old_product, 5).await;
    wh.stock(new_product, 5).await;
    wh.stop_instances().await;
    let old = placed(&[(old_product, 2)]);
    let new = placed_v2(&[(new_product, 2)]);
    let (old_id, new_id) = (old.data.order_id, new.data.order_id);
    wh.publish(&old).await;
    wh.publish(&new).await;
    wh.publish(&confirmed(old_id)).await;
    wh.publish(&confirmed(new_id)).await;

    // Act: a warehouse starts and replays that history.
    wh.start_instance().await;
    for order_id in [old_id, new_id] {
        wh.wait_event::<ShipmentDispatchedV1>("the order ships", |e| e.order_id == order_id)
            .await;
    }
    wh.settle().await;

    // Assert: the same effects, product for product.
    assert_eq!(
        effects(&wh, old_id, old_product).await,
        effects(&wh, new_id, new_product).await,
        "[{backend}] v1 and v2 orders have different effects"
    );
    assert_eq!(
        effects(&wh, new_id, new_product).await,
        Effects {
            reserved: vec![level(2, 5, 3)],
            dispatched: vec![level(2, 3, 3)],
            on_hand_and_reserved: Some((3, 0)),
            reservations: vec![(2, "shipped".to_owned())],
            shipment: Some("dispatched".to_owned()),
        },
        "[{backend}]"
    );
    assert_eq!(
        wh.dead_letters().await,
        0,
        "[{backend}] nothing dead-lettered"
    );
}

/// What one order did to the warehouse, with its product id left out so
/// that two orders of different products compare.
#[derive(Debug, PartialEq)]
struct Effects {
    reserved: Vec<(i64, i64, i64)>,
    dispatched: Vec<(i64, i64, i64)>,
    on_hand_and_reserved: Option<(i64, i64)>,
    reservations: Vec<(i64, String)>,
    shipment: Option<String>,
}

fn level(quantity: i64, on_hand: i64, available: i64) -> (i64, i64, i64) {
    (quantity, on_hand, available)
}

async fn effects(wh: &Warehouse, order_id: Uuid, product: Uuid) -> Effects {
    let levels = |lines: &[StockLevelV1]| -> Vec<(i64, i64, i64)> {
        lines
            .iter()
            .inspect(|l| assert_eq!(l.product_id, product))
            .map(|l| level(l.quantity, l.on_hand, l.available))
            .collect()
    };
    let reserved = wh.events_of::<StockReservedV1>(order_id).await;
    let dispatched = wh.events_of::<ShipmentDispatchedV1>(order_id).await;
    Effects {
        reserved: reserved.iter().flat_map(|e| levels(&e.lines)).collect(),
        dispatched: dispatched.iter().flat_map(|e| levels(&e.lines)).collect(),
        on_hand_and_reserved: wh.level(product).await,
        reservations: wh
            .reservations(order_id)
            .await
            .into_iter()
            .map(|(_, quantity, status)| (quantity, status))
            .collect(),
        shipment: wh.shipment_status(order_id).await,
    }
}
