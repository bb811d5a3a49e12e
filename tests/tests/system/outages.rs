//! A team that is down (DESIGN §5): past the order timeout its orders are
//! rejected and nothing stays held; back within it, they simply settle.

use std::time::Duration;

use bazaar_testkit::api::{Money, NewOrder, Order};
use bazaar_testkit::{wait_until, Service, Shop};
use contracts::subjects::{durable, evt};
use contracts::Team;

use crate::SETTLE;

#[tokio::test]
async fn orders_time_out_while_finance_is_down_and_nothing_stays_held() {
    let mut shop = Shop::builder()
        .env_for(Service::Checkout, "BAZAAR_ORDER_TIMEOUT_MS", "2000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("OUTAGE-1", 1000, 5).await;
    let jack = shop.customer_api("jack");
    let streams = shop.streams().await;
    shop.stop(Service::Finance);

    let mut orders = Vec::new();
    for _ in 0..2 {
        let order: Order = jack
            .place_order(&NewOrder::of(product.id, 2, "tok_visa"), None)
            .await
            .expect_one_of(&[201, 202])
            .json();
        orders.push(order.id);
    }

    for id in &orders {
        let rejected = jack.wait_for_status(*id, "rejected", SETTLE).await;
        assert_eq!(rejected.reason.as_deref(), Some("timeout"));
    }
    jack.wait_for_available(product.id, 5, SETTLE).await;
    for id in &orders {
        streams
            .wait_for_order_event(evt::STOCK_RELEASED_V1, *id, SETTLE)
            .await;
    }

    // Finance comes back, sees each order placed and then rejected: what
    // it authorises it voids at once; checkout's decision stands.
    shop.start(Service::Finance).await;
    for id in &orders {
        streams
            .wait_for_order_event(evt::PAYMENT_VOIDED_V1, *id, SETTLE)
            .await;
    }
    let finance_seq = streams.message_count(Team::Finance.stream()).await;
    wait_until(SETTLE, "checkout has read finance's answers", || {
        streams.consumer_passed(Team::Finance.stream(), durable::CHECKOUT, finance_seq)
    })
    .await;
    for id in &orders {
        streams
            .assert_order_events(
                *id,
                &[
                    (evt::ORDER_PLACED_V2, 1),
                    (evt::STOCK_RESERVED_V1, 1),
                    (evt::ORDER_REJECTED_V1, 1),
                    (evt::STOCK_RELEASED_V1, 1),
                    (evt::PAYMENT_AUTHORIZED_V1, 1),
                    (evt::PAYMENT_VOIDED_V1, 1),
                ],
            )
            .await;
        let order: Order = jack.order(*id).await.expect(200).json();
        assert_eq!(order.status, "rejected");
        assert_eq!(order.reason.as_deref(), Some("timeout"));
        jack.invoice(*id).await.expect(404).problem();
    }
    assert_eq!(jack.available(product.id).await, 5);
}

#[tokio::test]
async fn orders_settle_when_finance_returns_within_the_timeout() {
    let mut shop = Shop::builder()
        .env_for(Service::Checkout, "BAZAAR_ORDER_TIMEOUT_MS", "20000")
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "200")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("BLIP-1", 1000, 5).await;
    let kate = shop.customer_api("kate");
    let streams = shop.streams().await;
    shop.stop(Service::Finance);

    let order: Order = kate
        .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    streams
        .wait_for_order_event(evt::STOCK_RESERVED_V1, order.id, SETTLE)
        .await;
    let waiting = kate
        .wait_for_order(
            order.id,
            "the reservation is on the timeline",
            SETTLE,
            |o| o.has_event(evt::STOCK_RESERVED_V1),
        )
        .await;
    assert_eq!(waiting.status, "pending", "no payment yet: {waiting:?}");
    assert_eq!(kate.available(product.id).await, 4, "held while waiting");

    shop.start(Service::Finance).await;

    let shipped = kate
        .wait_for_status(order.id, "shipped", Duration::from_secs(15))
        .await;
    assert_eq!(shipped.reason, None);
    assert_eq!(shipped.tax, Some(Money::eur(190)));
    assert_eq!(shipped.total, Some(Money::eur(1190)));
    kate.invoice(order.id).await.expect(200);
    streams
        .wait_for_order_event(evt::INVOICE_ISSUED_V1, order.id, SETTLE)
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
    assert_eq!(kate.available(product.id).await, 4);
}
