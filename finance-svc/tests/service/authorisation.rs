//! `order.placed` → tax by country, one authorisation with the provider →
//! `payment.authorized` or `payment.failed`.

use std::time::Instant;

use bazaar_testkit::wait_until;
use contracts::finance::{PaymentAuthorizedV1, PaymentFailedV1};
use contracts::subjects::{dlq_subject, durable, evt, DLQ_STREAM, FINANCE_SVC};
use contracts::Money;

use crate::support::{on_every_backend, placed, TestApp, SLOW_TOKEN, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vat_by_shipping_country_is_added_to_the_authorised_amount() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        // (country, net, expected tax): rounded half up to the cent.
        let cases = [
            ("DE", 1_050, 200), // 199.50
            ("FR", 1_999, 400), // 399.80
            ("NL", 1_999, 420), // 419.79
            ("GB", 1_234, 247), // 246.80
            ("US", 5_000, 0),
            ("CH", 7_777, 0),
        ];
        let mut orders = Vec::new();
        for (country, net, tax) in cases {
            let order = placed(country, net, "tok_visa");
            app.publish(&order).await;
            orders.push((order, country, net, tax));
        }

        for (order, country, net, tax) in orders {
            let order_id = order.data.order_id;
            let [authorised] = app
                .wait_for_events::<PaymentAuthorizedV1>(order_id, 1)
                .await
                .try_into()
                .expect("one authorisation");
            assert_eq!(authorised.net, Money::eur(net), "[{backend}] {country}");
            assert_eq!(authorised.tax, Money::eur(tax), "[{backend}] {country}");
            assert_eq!(
                authorised.total,
                Money::eur(net + tax),
                "[{backend}] {country}"
            );
            assert_eq!(authorised.payment_id.get_version_num(), 7);
            assert_eq!(
                app.payment_status(order_id).await.as_deref(),
                Some("authorised")
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_fails_the_payment() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let order = placed("DE", 2_500, "tok_declined");

        app.publish(&order).await;

        let order_id = order.data.order_id;
        let failed = app.wait_for_events::<PaymentFailedV1>(order_id, 1).await;
        assert_eq!(failed[0].reason, "declined", "[{backend}]");
        app.settle().await;
        assert!(app.events::<PaymentAuthorizedV1>(order_id).await.is_empty());
        assert_eq!(
            app.payment_status(order_id).await.as_deref(),
            Some("failed")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_provider_does_not_know_fails_as_invalid_token() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let order = placed("FR", 2_500, "tok_made_up");

        app.publish(&order).await;

        let failed = app
            .wait_for_events::<PaymentFailedV1>(order.data.order_id, 1)
            .await;
        assert_eq!(failed[0].reason, "invalid_token", "[{backend}]");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_card_is_authorised_once_the_provider_answers() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let order = placed("NL", 1_000, "tok_slow");

        let started = Instant::now();
        app.publish(&order).await;

        let authorised = app
            .wait_for_events::<PaymentAuthorizedV1>(order.data.order_id, 1)
            .await;
        assert!(
            started.elapsed() >= SLOW_TOKEN,
            "[{backend}] authorised after {:?}, before the provider's delay",
            started.elapsed()
        );
        assert_eq!(authorised[0].total, Money::eur(1_210));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_card_holds_up_only_the_orders_of_its_own_lane() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let slow = placed("NL", 1_000, "tok_slow");
        let started = Instant::now();
        app.publish(&slow).await;
        // Eight orders right behind it: the consumer's eight lanes spread
        // them by order id, so all eight share the slow one's lane with a
        // chance of 8^-8. One lane for all would make each wait for it.
        let quick: Vec<_> = (0..8).map(|_| placed("NL", 1_000, "tok_visa")).collect();
        for order in &quick {
            app.publish(order).await;
        }

        app.wait_for_events::<PaymentAuthorizedV1>(slow.data.order_id, 1)
            .await;
        assert!(
            started.elapsed() >= SLOW_TOKEN,
            "[{backend}] the slow card was authorised before the provider's delay"
        );
        for order in &quick {
            app.wait_for_events::<PaymentAuthorizedV1>(order.data.order_id, 1)
                .await;
        }
        // In stream order, the slow card's authorisation is not the first.
        let authorised = app.all_events::<PaymentAuthorizedV1>().await;
        assert_ne!(
            authorised.first().map(|e| e.data.order_id),
            Some(slow.data.order_id),
            "[{backend}] every quick order waited for the slow card"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_placed_event_delivered_twice_authorises_once() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let order = placed("DE", 1_000, "tok_visa");

        // Different Nats-Msg-Ids get past the broker's de-duplication.
        app.publish_as(&order, "first-attempt").await;
        app.publish_as(&order, "second-attempt").await;
        // A different event about the same order: caught by the payment's
        // state, not by the inbox.
        let mut twin = placed("DE", 1_000, "tok_visa");
        twin.data.order_id = order.data.order_id;
        twin.subject = order.subject.clone();
        app.publish(&twin).await;
        app.settle().await;

        let order_id = order.data.order_id;
        assert_eq!(
            app.events::<PaymentAuthorizedV1>(order_id).await.len(),
            1,
            "[{backend}]"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM payments").await,
            1,
            "[{backend}]"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_dead_lettered_and_the_next_one_handled() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;

        app.publish_raw(evt::ORDER_PLACED_V1, b"{not json".to_vec(), "garbage")
            .await;
        let order = placed("DE", 1_000, "tok_visa");
        app.publish(&order).await;

        app.wait_for_events::<PaymentAuthorizedV1>(order.data.order_id, 1)
            .await;
        let dlq = app.js.get_stream(DLQ_STREAM).await.expect("the DLQ stream");
        let subject = dlq_subject(FINANCE_SVC, durable::FINANCE);
        wait_until(WAIT, "the bad event is dead-lettered", || async {
            dlq.get_last_raw_message_by_subject(&subject).await.is_ok()
        })
        .await;
        app.settle().await;
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM payments").await,
            1,
            "[{backend}]"
        );
    })
    .await;
}
