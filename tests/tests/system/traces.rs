//! Trace context: one order's path through every team is one trace,
//! rooted at the client's HTTP request.

use bazaar_testkit::api::{NewOrder, Order};
use bazaar_testkit::{Shop, Streams};
use contracts::Team;
use reqwest::Method;

use crate::SETTLE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_with_a_traceparent_is_one_trace_across_every_team() {
    // Arrange
    let shop = Shop::builder().start().await;
    let product = shop.stocked_product("TRACE-1", 1000, 5).await;
    let alice = shop.customer_api("alice");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";

    // Act: the client sends its own trace context with the order.
    let request = alice
        .request(Method::POST, "/api/v1/orders")
        .json(&NewOrder::of(product.id, 1, "tok_visa"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"));
    let order: Order = alice.send(request).await.expect_one_of(&[201, 202]).json();
    alice.wait_for_status(order.id, "shipped", SETTLE).await;

    // Assert: every event of the order, from checkout, warehouse and
    // finance, continues the client's trace, in the NATS header and in the
    // envelope.
    let streams = Streams::connect(shop.nats()).await;
    let events = streams.events_of_order(order.id).await;
    let mut teams: Vec<Team> = events
        .iter()
        .filter_map(|e| contracts::catalog::by_type(&e.envelope().event_type).map(|d| d.team))
        .collect();
    teams.sort();
    teams.dedup();
    assert_eq!(
        teams,
        [Team::Checkout, Team::Warehouse, Team::Finance],
        "{} events",
        events.len()
    );
    for event in &events {
        let envelope = event.envelope();
        let header = event.header("traceparent").unwrap_or_default();
        let field = envelope.traceparent.clone().unwrap_or_default();
        assert!(
            header.contains(trace_id) && field.contains(trace_id),
            "{} left the trace: header {header:?}, envelope {field:?}",
            envelope.event_type
        );
    }
}
