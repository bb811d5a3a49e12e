//! Invoice numbers: `YYYY-NNNNNN`, gap-free per year and unique, however
//! many confirmations and instances race for them.

use std::collections::BTreeSet;

use contracts::finance::{InvoiceIssuedV1, PaymentAuthorizedV1, PaymentCapturedV1};
use futures::future::join_all;

use bazaar_testkit::Backend;

use crate::support::{confirmed, on_every_backend, placed, TestApp};

const ORDERS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_numbers_are_gap_free_and_unique_when_orders_are_confirmed_concurrently() {
    on_every_backend(|backend| async move {
        let mut app = TestApp::spawn(backend).await;
        // Two instances share one database and one durable consumer on
        // PostgreSQL; SQLite is one process's embedded file.
        if backend == Backend::Postgres {
            app.spawn_instance("finance-test-2");
        }
        let orders: Vec<_> = (0..ORDERS)
            .map(|i| placed("DE", 1_000 + i as i64, "tok_visa"))
            .collect();
        join_all(orders.iter().map(|o| app.publish(o))).await;
        app.wait_for_all::<PaymentAuthorizedV1>(ORDERS).await;

        let confirmations: Vec<_> = orders.iter().map(|o| confirmed(o.data.order_id)).collect();
        join_all(confirmations.iter().map(|c| app.publish(c))).await;

        app.wait_for_all::<InvoiceIssuedV1>(ORDERS).await;
        app.settle().await;
        let invoices = app.all_events::<InvoiceIssuedV1>().await;
        assert_eq!(invoices.len(), ORDERS, "[{backend}] one invoice per order");
        let year = invoices[0].data.issued_at.format("%Y").to_string();
        let numbers: Vec<String> = invoices.iter().map(|i| i.data.number.clone()).collect();
        let unique: BTreeSet<&String> = numbers.iter().collect();
        assert_eq!(
            unique.len(),
            ORDERS,
            "[{backend}] duplicate numbers: {numbers:?}"
        );
        let expected: BTreeSet<String> = (1..=ORDERS).map(|n| format!("{year}-{n:06}")).collect();
        assert_eq!(
            unique.into_iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "[{backend}] numbers are not {year}-000001..{year}-{ORDERS:06}"
        );
        let invoiced: BTreeSet<_> = invoices.iter().map(|i| i.data.order_id).collect();
        assert_eq!(
            invoiced.len(),
            ORDERS,
            "[{backend}] an order invoiced twice"
        );
        assert_eq!(app.all_events::<PaymentCapturedV1>().await.len(), ORDERS);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM invoices").await,
            ORDERS as i64
        );
        assert_eq!(
            app.scalar("SELECT last_number FROM invoice_counters").await,
            ORDERS as i64
        );
    })
    .await;
}
