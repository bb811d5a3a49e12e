//! The order saga (issue 3, DESIGN §5) through the edge, each outcome
//! checked in every team's view: the order as the customer sees it (status,
//! reason, timeline, tax, total), availability, the invoice, and the events
//! each team published about the order.

use bazaar_testkit::api::{Basket, Invoice, Money, NewOrder, Order};
use bazaar_testkit::{Service, Shop};
use contracts::subjects::evt;
use uuid::Uuid;

use crate::SETTLE;

/// The happy path, shared with the PostgreSQL run: a basket of two
/// products becomes an order that is confirmed, invoiced and shipped.
pub async fn order_from_basket_is_confirmed_shipped_and_invoiced(shop: &Shop) {
    let keyboard = shop.stocked_product("HAPPY-KB", 2500, 10).await;
    let mouse = shop.stocked_product("HAPPY-MS", 1000, 5).await;
    let alice = shop.customer_api("alice");
    let streams = shop.streams().await;

    alice.put_basket_item(keyboard.id, 2).await.expect(200);
    let basket: Basket = alice.put_basket_item(mouse.id, 1).await.expect(200).json();
    assert_eq!(basket.total, Money::eur(6000));
    let totals: Vec<(Uuid, i64, i64)> = basket
        .items
        .iter()
        .map(|l| (l.product_id, l.quantity, l.line_total.amount_minor))
        .collect();
    assert_eq!(totals, [(keyboard.id, 2, 5000), (mouse.id, 1, 1000)]);
    assert_eq!(basket.items[0].name, keyboard.name);
    assert_eq!(alice.basket().await.expect(200).json::<Basket>(), basket);

    let placed = alice
        .place_order(&NewOrder::from_basket("tok_visa"), Some("happy-1"))
        .await
        .expect(201);
    let order: Order = placed.json();
    assert_eq!(
        placed.header("location"),
        Some(format!("/api/v1/orders/{}", order.id))
    );
    assert!(
        ["pending", "confirmed"].contains(&order.status.as_str()),
        "{order:?}"
    );
    assert_eq!(order.net, Money::eur(6000));
    let lines: Vec<(&str, i64, i64, i64)> = order
        .lines
        .iter()
        .map(|l| {
            (
                l.sku.as_str(),
                l.quantity,
                l.unit_price.amount_minor,
                l.line_total.amount_minor,
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("HAPPY-KB", 2, 2500, 5000), ("HAPPY-MS", 1, 1000, 1000)]
    );
    let emptied: Basket = alice.basket().await.expect(200).json();
    assert!(
        emptied.items.is_empty(),
        "the basket is emptied: {emptied:?}"
    );
    assert_eq!(emptied.total.amount_minor, 0);

    // The customer's view: shipped, taxed at 19 % for Germany.
    let shipped = alice.wait_for_status(order.id, "shipped", SETTLE).await;
    assert_eq!(shipped.net, Money::eur(6000));
    assert_eq!(shipped.tax, Some(Money::eur(1140)));
    assert_eq!(shipped.total, Some(Money::eur(7140)));
    assert_eq!(shipped.reason, None);
    assert_eq!(shipped.lines, order.lines);
    let placed_type = contracts::envelope::type_of(evt::ORDER_PLACED_V2);
    assert_eq!(shipped.steps().first().copied(), Some(placed_type.as_str()));
    for subject in [
        evt::ORDER_PLACED_V2,
        evt::STOCK_RESERVED_V1,
        evt::PAYMENT_AUTHORIZED_V1,
        evt::ORDER_CONFIRMED_V1,
        evt::PAYMENT_CAPTURED_V1,
        evt::INVOICE_ISSUED_V1,
        evt::SHIPMENT_DISPATCHED_V1,
    ] {
        assert!(shipped.has_event(subject), "{subject}: {shipped:?}");
    }
    assert_eq!(shipped.created_at, order.created_at);

    // Finance's view: the invoice, numbered gap-free per year.
    let invoice: Invoice = alice.invoice(order.id).await.expect(200).json();
    assert_invoice_number(&invoice.number);
    assert!(invoice.number.ends_with("-000001"), "{}", invoice.number);
    assert_eq!(invoice.order_id, order.id);
    assert_eq!(
        (&invoice.net, &invoice.tax, &invoice.total),
        (&Money::eur(6000), &Money::eur(1140), &Money::eur(7140))
    );
    let invoiced: Vec<(Uuid, i64, i64)> = invoice
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity, l.line_total.amount_minor))
        .collect();
    assert_eq!(invoiced, [(keyboard.id, 2, 5000), (mouse.id, 1, 1000)]);

    // Warehouse's view: the stock left the shelf.
    assert_eq!(alice.available(keyboard.id).await, 8);
    assert_eq!(alice.available(mouse.id).await, 4);

    // The streams: each step exactly once, and one flow.
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
    let events = streams.events_of_order(order.id).await;
    let data = |subject: &str| {
        events
            .iter()
            .find(|e| e.subject == subject)
            .map(|e| e.data())
            .unwrap_or_default()
    };
    assert_eq!(
        data(evt::PAYMENT_AUTHORIZED_V1)["tax"]["amount_minor"],
        1140
    );
    assert_eq!(
        data(evt::PAYMENT_CAPTURED_V1)["amount"]["amount_minor"],
        7140
    );
    assert_eq!(
        data(evt::INVOICE_ISSUED_V1)["number"],
        invoice.number.as_str()
    );
    let dispatched = data(evt::SHIPMENT_DISPATCHED_V1);
    let keyboard_level = dispatched["lines"]
        .as_array()
        .and_then(|lines| {
            lines
                .iter()
                .find(|l| l["product_id"] == keyboard.id.to_string())
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(keyboard_level["on_hand"], 8, "{dispatched}");
    assert_eq!(keyboard_level["available"], 8, "{dispatched}");
    let envelopes: Vec<_> = events.iter().map(|e| e.envelope()).collect();
    assert!(
        envelopes
            .iter()
            .all(|e| e.correlationid == envelopes[0].correlationid),
        "every event of the order carries the placing command's correlation id"
    );
    let trace_ids: Vec<Option<String>> = events
        .iter()
        .map(|e| {
            e.header("traceparent")
                .and_then(|t| t.split('-').nth(1).map(str::to_owned))
        })
        .collect();
    assert!(
        trace_ids[0].is_some() && trace_ids.iter().all(|t| *t == trace_ids[0]),
        "one order's path is one trace: {trace_ids:?}"
    );
    let basket_events = streams.events(contracts::Team::Checkout.stream()).await;
    let last_basket = basket_events
        .iter()
        .rev()
        .find(|e| e.subject == evt::BASKET_CHANGED_V1 && e.data()["customer_id"] == "alice")
        .expect("alice's basket changed");
    assert_eq!(last_basket.data()["lines"], serde_json::json!([]));
}

/// `YYYY-NNNNNN` for the current year.
#[track_caller]
fn assert_invoice_number(number: &str) {
    let year = chrono::Utc::now().format("%Y").to_string();
    let (y, n) = number.split_once('-').unwrap_or_default();
    assert!(
        y == year && n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()),
        "invoice number {number:?} is not {year}-NNNNNN"
    );
}

#[tokio::test]
async fn an_order_from_the_basket_is_confirmed_shipped_and_invoiced() {
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "200")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    order_from_basket_is_confirmed_shipped_and_invoiced(&shop).await;
}

#[tokio::test]
async fn a_declined_payment_rejects_the_order_and_releases_its_stock() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("DECLINE-1", 1500, 5).await;
    let bob = shop.customer_api("bob");
    let streams = shop.streams().await;

    let order = bob.place_order_of(product.id, 2, "tok_declined").await;

    let rejected = bob.wait_for_status(order.id, "rejected", SETTLE).await;
    assert_eq!(rejected.reason.as_deref(), Some("payment_declined"));
    assert!(rejected.has_event(evt::PAYMENT_FAILED_V1));
    bob.wait_for_available(product.id, 5, SETTLE).await;
    streams
        .wait_for_order_event(evt::STOCK_RELEASED_V1, order.id, SETTLE)
        .await;
    streams
        .assert_order_events(
            order.id,
            &[
                (evt::ORDER_PLACED_V2, 1),
                (evt::STOCK_RESERVED_V1, 1),
                (evt::PAYMENT_FAILED_V1, 1),
                (evt::ORDER_REJECTED_V1, 1),
                (evt::STOCK_RELEASED_V1, 1),
            ],
        )
        .await;
    bob.invoice(order.id).await.expect(404).problem();
    let still: Order = bob.order(order.id).await.expect(200).json();
    assert_eq!(still.status, "rejected");
}

#[tokio::test]
async fn an_order_for_more_than_is_in_stock_is_rejected_and_its_payment_voided() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("SHORT-1", 4000, 1).await;
    let carol = shop.customer_api("carol");
    let streams = shop.streams().await;

    let order = carol.place_order_of(product.id, 3, "tok_visa").await;

    let rejected = carol.wait_for_status(order.id, "rejected", SETTLE).await;
    assert_eq!(rejected.reason.as_deref(), Some("out_of_stock"));
    let voided = streams
        .wait_for_order_event(evt::PAYMENT_VOIDED_V1, order.id, SETTLE)
        .await;
    // 3 × 40.00 + 19 % VAT is what was held, and what is released.
    assert_eq!(voided.data()["amount"]["amount_minor"], 14280);
    streams
        .assert_order_events(
            order.id,
            &[
                (evt::ORDER_PLACED_V2, 1),
                (evt::STOCK_RESERVATION_FAILED_V1, 1),
                (evt::PAYMENT_AUTHORIZED_V1, 1),
                (evt::ORDER_REJECTED_V1, 1),
                (evt::PAYMENT_VOIDED_V1, 1),
            ],
        )
        .await;
    assert_eq!(carol.available(product.id).await, 1, "nothing was taken");
    carol.invoice(order.id).await.expect(404).problem();
    carol
        .wait_for_order(order.id, "the void is on the timeline", SETTLE, |o| {
            o.has_event(evt::PAYMENT_VOIDED_V1)
        })
        .await;
}

#[tokio::test]
async fn the_same_idempotency_key_places_one_order() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("IDEM-1", 500, 20).await;
    let dave = shop.customer_api("dave");
    let streams = shop.streams().await;
    let new = NewOrder::of(product.id, 2, "tok_visa");

    let first: Order = dave
        .place_order(&new, Some("dave-order-1"))
        .await
        .expect_one_of(&[201, 202])
        .json();
    let again: Order = dave
        .place_order(&new, Some("dave-order-1"))
        .await
        .expect_one_of(&[200, 201, 202])
        .json();
    // Two at once with a fresh key: still one order.
    let (a, b) = tokio::join!(
        dave.place_order(&new, Some("dave-order-2")),
        dave.place_order(&new, Some("dave-order-2"))
    );
    let (a, b): (Order, Order) = (
        a.expect_one_of(&[200, 201, 202]).json(),
        b.expect_one_of(&[200, 201, 202]).json(),
    );
    // The key is the caller's: another customer's same key is another order.
    let erin = shop.customer_api("erin");
    let other: Order = erin
        .place_order(&new, Some("dave-order-1"))
        .await
        .expect_one_of(&[201, 202])
        .json();

    assert_eq!(again.id, first.id, "a repeat returns the first order");
    assert_eq!(a.id, b.id, "concurrent repeats return one order");
    assert_ne!(a.id, first.id);
    assert_ne!(other.id, first.id);
    for (api, id) in [(&dave, first.id), (&dave, a.id), (&erin, other.id)] {
        api.wait_for_order(id, "the order settles", SETTLE, |o| o.status != "pending")
            .await;
    }
    let listed: Vec<Uuid> = dave
        .orders(Some(100), None)
        .await
        .expect(200)
        .json::<bazaar_testkit::api::OrderPage>()
        .items
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(listed.len(), 2, "dave has two orders: {listed:?}");
    let placed: Vec<_> = streams
        .events(contracts::Team::Checkout.stream())
        .await
        .into_iter()
        .filter(|e| e.subject == evt::ORDER_PLACED_V2)
        .collect();
    assert_eq!(
        placed.len(),
        3,
        "one order.placed per distinct key and caller"
    );
    for id in [first.id, a.id] {
        assert_eq!(streams.count_for_order(evt::ORDER_PLACED_V2, id).await, 1);
    }
    assert_eq!(
        streams.count(evt::STOCK_RESERVED_V1).await,
        3,
        "stock reserved once per order"
    );
    // Three orders of two units each left 14 of 20 (shipped or reserved).
    dave.wait_for_available(product.id, 14, SETTLE).await;
}
