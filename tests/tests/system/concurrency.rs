//! Stock is never oversold, whatever the concurrency (DESIGN §5): many
//! customers racing for few units, with one or two warehouse instances.

use std::collections::BTreeSet;

use bazaar_testkit::api::{NewOrder, Order};
use bazaar_testkit::{wait_for, Service, Shop};
use contracts::subjects::evt;
use contracts::Team;
use uuid::Uuid;

use crate::SETTLE;

const ORDERS: usize = 50;
const UNITS: i64 = 10;

async fn fifty_orders_race_for_ten_units(warehouses: usize) {
    let shop = Shop::builder()
        .scale(Service::Warehouse, warehouses)
        // Confirmed orders stay confirmed (no dispatch during the test).
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "600000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("RACE-1", 999, UNITS).await;
    let streams = shop.streams().await;
    let customers: Vec<_> = (0..ORDERS)
        .map(|n| shop.customer_api(&format!("racer-{n}")))
        .collect();

    let placed = futures::future::join_all(customers.iter().map(|api| async {
        let answer = api
            .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
            .await
            .expect_one_of(&[201, 202]);
        answer.json::<Order>().id
    }))
    .await;

    let mut finals = Vec::with_capacity(ORDERS);
    for (api, id) in customers.iter().zip(&placed) {
        let order = api
            .wait_for_order(*id, "the order is settled", SETTLE, |o| {
                o.status != "pending"
            })
            .await;
        finals.push(order);
    }
    let confirmed: Vec<&Order> = finals.iter().filter(|o| o.status == "confirmed").collect();
    let rejected: Vec<&Order> = finals.iter().filter(|o| o.status == "rejected").collect();
    assert_eq!(
        confirmed.len(),
        UNITS as usize,
        "exactly as many as there are units"
    );
    assert_eq!(rejected.len(), ORDERS - UNITS as usize);
    assert!(
        rejected
            .iter()
            .all(|o| o.reason.as_deref() == Some("out_of_stock")),
        "{rejected:?}"
    );
    assert_eq!(customers[0].available(product.id).await, 0);

    // Every team agrees: 10 reserved, 40 refused, 40 holds voided, 10
    // captured with gap-free invoice numbers 1..=10.
    wait_for(
        SETTLE,
        "every rejected order's payment is voided",
        || async {
            (streams.count(evt::PAYMENT_VOIDED_V1).await == ORDERS - UNITS as usize).then_some(())
        },
    )
    .await;
    wait_for(SETTLE, "every confirmed order is invoiced", || async {
        (streams.count(evt::INVOICE_ISSUED_V1).await == UNITS as usize).then_some(())
    })
    .await;
    assert_eq!(streams.count(evt::ORDER_PLACED_V2).await, ORDERS);
    assert_eq!(streams.count(evt::STOCK_RESERVED_V1).await, UNITS as usize);
    assert_eq!(
        streams.count(evt::STOCK_RESERVATION_FAILED_V1).await,
        ORDERS - UNITS as usize
    );
    assert_eq!(streams.count(evt::ORDER_CONFIRMED_V1).await, UNITS as usize);
    assert_eq!(streams.count(evt::PAYMENT_AUTHORIZED_V1).await, ORDERS);
    assert_eq!(
        streams.count(evt::PAYMENT_CAPTURED_V1).await,
        UNITS as usize
    );
    assert_eq!(
        streams.count(evt::STOCK_RELEASED_V1).await,
        0,
        "nothing held by a rejected order"
    );
    let warehouse = streams.events(Team::Warehouse.stream()).await;
    let reserved_for: BTreeSet<Uuid> = warehouse
        .iter()
        .filter(|e| e.subject == evt::STOCK_RESERVED_V1)
        .filter_map(|e| e.order_id())
        .collect();
    let confirmed_ids: BTreeSet<Uuid> = confirmed.iter().map(|o| o.id).collect();
    assert_eq!(
        reserved_for, confirmed_ids,
        "the reserved orders are the confirmed ones"
    );
    let lowest = warehouse
        .iter()
        .flat_map(|e| e.data()["lines"].as_array().cloned().unwrap_or_default())
        .filter_map(|l| l["available"].as_i64())
        .min();
    assert_eq!(lowest, Some(0), "availability never went below zero");
    let year = chrono::Utc::now().format("%Y").to_string();
    let numbers: BTreeSet<String> = streams
        .events(Team::Finance.stream())
        .await
        .iter()
        .filter(|e| e.subject == evt::INVOICE_ISSUED_V1)
        .filter_map(|e| e.data()["number"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = (1..=UNITS).map(|n| format!("{year}-{n:06}")).collect();
    assert_eq!(numbers, expected, "invoice numbers are gap-free");
}

#[tokio::test]
async fn fifty_concurrent_orders_for_ten_units_confirm_exactly_ten() {
    fifty_orders_race_for_ten_units(1).await;
}

#[tokio::test]
async fn fifty_concurrent_orders_for_ten_units_confirm_exactly_ten_with_two_warehouses() {
    fifty_orders_race_for_ten_units(2).await;
}
