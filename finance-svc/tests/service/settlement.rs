//! What follows an authorisation: capture and invoice on `order.confirmed`,
//! void or refund on `order.rejected` / `order.cancelled`, each once and in
//! whatever order the events arrive.

use contracts::finance::{
    InvoiceIssuedV1, PaymentAuthorizedV1, PaymentCapturedV1, PaymentFailedV1, PaymentRefundedV1,
    PaymentVoidedV1,
};
use contracts::{Envelope, Money};
use uuid::Uuid;

use crate::support::{cancelled, confirmed, on_every_backend, placed, rejected, TestApp};

/// Places an order (2 × 14.99 + 49.99 = 79.97 EUR net, to Germany) and
/// waits for its authorisation.
async fn authorised_order(app: &TestApp) -> (Uuid, PaymentAuthorizedV1) {
    let order = placed("DE", 7_997, "tok_visa");
    app.publish(&order).await;
    let order_id = order.data.order_id;
    let mut authorised = app
        .wait_for_events::<PaymentAuthorizedV1>(order_id, 1)
        .await;
    (order_id, authorised.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_order_has_its_authorisation_voided() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let (order_id, authorised) = authorised_order(&app).await;

        app.publish(&rejected(order_id)).await;

        let voided = app.wait_for_events::<PaymentVoidedV1>(order_id, 1).await;
        assert_eq!(voided[0].payment_id, authorised.payment_id, "[{backend}]");
        assert_eq!(voided[0].amount, authorised.total, "[{backend}]");
        app.settle().await;
        assert!(app.events::<PaymentCapturedV1>(order_id).await.is_empty());
        assert_eq!(
            app.payment_status(order_id).await.as_deref(),
            Some("voided")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_is_captured_and_invoiced_once() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let order = placed("DE", 7_997, "tok_visa");
        app.publish(&order).await;
        let order_id = order.data.order_id;
        let authorised = app
            .wait_for_events::<PaymentAuthorizedV1>(order_id, 1)
            .await
            .remove(0);

        let confirmation = confirmed(order_id);
        app.publish(&confirmation).await;
        // A second confirmation (another event id) must change nothing.
        app.publish(&confirmed(order_id)).await;
        app.settle().await;

        let captured = app.events::<PaymentCapturedV1>(order_id).await;
        assert_eq!(captured.len(), 1, "[{backend}] captured once");
        assert_eq!(captured[0].payment_id, authorised.payment_id);
        assert_eq!(captured[0].amount, Money::eur(7_997 + 1_519));
        let invoices = app.all_events::<InvoiceIssuedV1>().await;
        let [invoice]: [Envelope<InvoiceIssuedV1>; 1] = invoices.try_into().expect("invoiced once");
        assert_eq!(invoice.causationid, confirmation.id.to_string());
        assert_eq!(invoice.correlationid, confirmation.correlationid);
        let invoice = invoice.data;
        let year = invoice.issued_at.format("%Y").to_string();
        assert_eq!(invoice.number, format!("{year}-000001"), "[{backend}]");
        assert_eq!(invoice.order_id, order_id);
        assert_eq!(
            (invoice.net, invoice.tax, invoice.total),
            (authorised.net, authorised.tax, authorised.total)
        );
        let line = &order.data.lines[0];
        assert_eq!(invoice.lines.len(), 1);
        assert_eq!(invoice.lines[0].product_id, line.product_id);
        assert_eq!(invoice.lines[0].name, line.name);
        assert_eq!(invoice.lines[0].quantity, line.quantity);
        assert_eq!(invoice.lines[0].unit_price, line.unit_price);
        assert_eq!(invoice.lines[0].line_total, line.line_total);
        assert_eq!(
            app.payment_status(order_id).await.as_deref(),
            Some("captured")
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM invoices").await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_capture_refunds_once() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let (order_id, authorised) = authorised_order(&app).await;
        app.publish(&confirmed(order_id)).await;
        app.wait_for_events::<PaymentCapturedV1>(order_id, 1).await;

        app.publish(&cancelled(order_id, true)).await;
        app.publish(&cancelled(order_id, true)).await;
        app.publish(&rejected(order_id)).await;
        app.settle().await;

        let refunded = app.events::<PaymentRefundedV1>(order_id).await;
        assert_eq!(refunded.len(), 1, "[{backend}] refunded once");
        assert_eq!(refunded[0].payment_id, authorised.payment_id);
        assert_eq!(refunded[0].amount, authorised.total);
        assert!(app.events::<PaymentVoidedV1>(order_id).await.is_empty());
        assert_eq!(
            app.payment_status(order_id).await.as_deref(),
            Some("refunded")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_without_an_authorisation_does_nothing() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let unknown = Uuid::now_v7();
        let declined = placed("DE", 1_000, "tok_declined");
        app.publish(&declined).await;
        let declined_id = declined.data.order_id;
        app.wait_for_events::<PaymentFailedV1>(declined_id, 1).await;

        app.publish(&confirmed(unknown)).await;
        app.publish(&confirmed(declined_id)).await;
        app.settle().await;

        assert!(
            app.all_events::<PaymentCapturedV1>().await.is_empty(),
            "[{backend}]"
        );
        assert!(
            app.all_events::<InvoiceIssuedV1>().await.is_empty(),
            "[{backend}]"
        );
        assert_eq!(app.payment_status(unknown).await, None);
        assert_eq!(
            app.payment_status(declined_id).await.as_deref(),
            Some("failed")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_rejected_before_it_is_seen_is_never_authorised() {
    on_every_backend(|backend| async move {
        let app = TestApp::spawn(backend).await;
        let order = placed("DE", 1_000, "tok_visa");
        let order_id = order.data.order_id;

        // Checkout timed the order out while finance was away; then finance
        // catches up with the stream.
        app.publish(&rejected(order_id)).await;
        app.publish(&order).await;
        app.publish(&confirmed(order_id)).await;
        app.settle().await;

        assert!(
            app.all_events::<PaymentAuthorizedV1>().await.is_empty(),
            "[{backend}]"
        );
        assert!(
            app.all_events::<PaymentCapturedV1>().await.is_empty(),
            "[{backend}]"
        );
        assert_eq!(
            app.payment_status(order_id).await.as_deref(),
            Some("closed")
        );
    })
    .await;
}
