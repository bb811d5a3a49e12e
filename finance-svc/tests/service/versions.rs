//! `order.placed` in both major versions: checkout publishes v2 now, and
//! the stream's history still holds v1. Finance replaying history that
//! holds both has the same effects for each: the same tax, authorisation,
//! capture, invoice, or refusal.

use bazaar_testkit::Backend;
use contracts::finance::{
    InvoiceIssuedV1, PaymentAuthorizedV1, PaymentCapturedV1, PaymentFailedV1,
};
use contracts::{Envelope, Event, Money};
use uuid::Uuid;

use crate::support::{confirmed, on_every_backend, placed, placed_v2, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_holding_order_placed_v1_and_v2_is_charged_and_invoiced_alike() {
    on_every_backend(both_versions_have_the_same_effects).await;
}

async fn both_versions_have_the_same_effects(backend: Backend) {
    // Arrange: history finance has never seen: for each version, an order
    // that is paid and confirmed, and one whose card is declined.
    let (old_paid, new_paid) = (
        placed("FR", 10_000, "tok_visa"),
        placed_v2("FR", 10_000, "tok_visa"),
    );
    let (old_declined, new_declined) = (
        placed("FR", 10_000, "tok_declined"),
        placed_v2("FR", 10_000, "tok_declined"),
    );
    let history = [
        entry(&old_paid),
        entry(&new_paid),
        entry(&old_declined),
        entry(&new_declined),
        entry(&confirmed(old_paid.data.order_id)),
        entry(&confirmed(new_paid.data.order_id)),
    ];

    // Act: finance starts on that history.
    let app = TestApp::spawn_with_history(backend, &history).await;
    app.wait_for_all::<InvoiceIssuedV1>(2).await;
    app.wait_for_all::<PaymentFailedV1>(2).await;
    app.settle().await;

    // Assert: the same effects for both versions.
    let paid_v1 = effects(&app, old_paid.data.order_id).await;
    let paid_v2 = effects(&app, new_paid.data.order_id).await;
    assert_eq!(
        paid_v1, paid_v2,
        "[{backend}] paid orders differ by version"
    );
    assert_eq!(
        paid_v2,
        Effects {
            authorised: vec![(Money::eur(10_000), Money::eur(2_000), Money::eur(12_000))],
            captured: vec![Money::eur(12_000)],
            invoiced: vec![(Money::eur(10_000), Money::eur(2_000), Money::eur(12_000), 1)],
            failed: vec![],
            status: Some("captured".to_owned()),
        },
        "[{backend}] FR VAT 20% on 100.00 EUR"
    );
    let declined_v1 = effects(&app, old_declined.data.order_id).await;
    let declined_v2 = effects(&app, new_declined.data.order_id).await;
    assert_eq!(
        declined_v1, declined_v2,
        "[{backend}] declined orders differ by version"
    );
    assert_eq!(declined_v2.failed, ["declined"], "[{backend}]");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders WHERE customer_id = 'cust_test'")
            .await,
        4,
        "[{backend}] every order kept with its customer, whatever its version"
    );
}

fn entry<T: Event>(envelope: &Envelope<T>) -> (&'static str, Vec<u8>) {
    (T::SUBJECT, envelope.to_json())
}

/// What finance did about one order, ids left out so orders compare.
#[derive(Debug, PartialEq)]
struct Effects {
    authorised: Vec<(Money, Money, Money)>,
    captured: Vec<Money>,
    /// Net, tax, total and the number of lines of each invoice.
    invoiced: Vec<(Money, Money, Money, usize)>,
    failed: Vec<String>,
    status: Option<String>,
}

async fn effects(app: &TestApp, order_id: Uuid) -> Effects {
    Effects {
        authorised: app
            .events::<PaymentAuthorizedV1>(order_id)
            .await
            .into_iter()
            .map(|e| (e.net, e.tax, e.total))
            .collect(),
        captured: app
            .events::<PaymentCapturedV1>(order_id)
            .await
            .into_iter()
            .map(|e| e.amount)
            .collect(),
        invoiced: app
            .events::<InvoiceIssuedV1>(order_id)
            .await
            .into_iter()
            .map(|e| (e.net, e.tax, e.total, e.lines.len()))
            .collect(),
        failed: app
            .events::<PaymentFailedV1>(order_id)
            .await
            .into_iter()
            .map(|e| e.reason)
            .collect(),
        status: app.payment_status(order_id).await,
    }
}
