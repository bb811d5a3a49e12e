//! OTLP trace export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one order is
//! one exported trace, a tree of spans from the client's request through
//! the edge and every team's service, received by a fake collector.

use std::collections::{BTreeSet, HashMap};

use bazaar_testkit::api::{NewOrder, Order};
use bazaar_testkit::otlp::{ExportedSpan, FakeCollector};
use bazaar_testkit::{wait_until, Service, Shop, Streams};
use reqwest::Method;

use crate::SETTLE;

/// The services an order passes through. product-svc is not among them: it
/// handles nothing of an order.
const ORDER_PATH: [&str; 4] = ["edge-api", "checkout-svc", "warehouse-svc", "finance-svc"];

/// Parent links across the bus that an order's trace must hold: a span
/// of the first service whose parent is a span of one of the others. They
/// hold only if each hop passes on its own span (the events a handler
/// writes carry the handler's span id), not only the trace id.
const HOPS: [(&str, &[&str]); 4] = [
    ("checkout-svc", &["edge-api"]),
    ("warehouse-svc", &["checkout-svc"]),
    ("finance-svc", &["checkout-svc"]),
    ("checkout-svc", &["warehouse-svc", "finance-svc"]),
];

/// The client's span, the parent of the edge's.
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_one_exported_trace_from_the_clients_span_through_every_service() {
    // Arrange
    let collector = FakeCollector::start();
    let shop = Shop::builder()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .start()
        .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";

    // Act
    let order = place_an_order_and_wait_until_shipped(&shop, "OTLP-1", trace_id).await;

    // Assert: in http/protobuf, the default.
    wait_for_the_tree(&collector, trace_id).await;
    // Each event names the span that wrote it, alike in header and envelope.
    let events = Streams::connect(shop.nats())
        .await
        .events_of_order(order)
        .await;
    let mut parents = BTreeSet::new();
    for event in &events {
        let header = event.header("traceparent").unwrap_or_default();
        let envelope = event.envelope().traceparent.unwrap_or_default();
        assert_eq!(header, envelope, "{}", event.envelope().event_type);
        assert!(header.contains(trace_id), "{header:?} left the trace");
        parents.insert(header);
    }
    assert!(
        parents.len() > 2,
        "the order's {} events name only {parents:?}",
        events.len()
    );
    let content_types: BTreeSet<String> = collector.content_types().into_iter().collect();
    assert_eq!(
        content_types,
        BTreeSet::from(["application/x-protobuf".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_waiting_for_export_leave_in_json_when_the_services_are_stopped() {
    // Arrange: a batch delay far beyond the test, so spans only leave when a
    // batch fills or at shutdown.
    let collector = FakeCollector::start();
    let mut shop = Shop::builder()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "3600000")
        .start()
        .await;
    let trace_id = "5b8efff798038103d269b633813fc60c";
    place_an_order_and_wait_until_shipped(&shop, "OTLP-2", trace_id).await;
    let early = collector.spans_of_trace(trace_id);
    assert!(
        !early.iter().any(|s| s.service == "edge-api"),
        "the edge exported before its batch delay, so this test proves nothing: {early:#?}"
    );

    // Act: SIGTERM, as an orchestrator stops a service.
    for service in [
        Service::Edge,
        Service::Checkout,
        Service::Warehouse,
        Service::Finance,
    ] {
        shop.stop(service);
    }

    // Assert
    wait_for_the_tree(&collector, trace_id).await;
    let content_types: BTreeSet<String> = collector.content_types().into_iter().collect();
    assert_eq!(
        content_types,
        BTreeSet::from(["application/json".to_owned()])
    );
}

async fn place_an_order_and_wait_until_shipped(
    shop: &Shop,
    sku: &str,
    trace_id: &str,
) -> uuid::Uuid {
    let product = shop.stocked_product(sku, 1000, 5).await;
    let alice = shop.customer_api("alice");
    let request = alice
        .request(Method::POST, "/api/v1/orders")
        .json(&NewOrder::of(product.id, 1, "tok_visa"))
        .header("traceparent", format!("00-{trace_id}-{CLIENT_SPAN}-01"));
    let order: Order = alice.send(request).await.expect_one_of(&[201, 202]).json();
    alice.wait_for_status(order.id, "shipped", SETTLE).await;
    order.id
}

/// Waits until the collector holds the order's whole tree (spans are
/// exported in batches, per service, in any order).
async fn wait_for_the_tree(collector: &FakeCollector, trace_id: &str) {
    let mut last = String::new();
    wait_until(
        SETTLE,
        "the collector holds the order's tree of spans",
        || {
            let verdict = the_tree_is_complete(&collector.spans_of_trace(trace_id));
            if let Err(reason) = &verdict {
                if *reason != last {
                    eprintln!("not yet: {reason}");
                    last.clone_from(reason);
                }
            }
            async move { verdict.is_ok() }
        },
    )
    .await;
}

/// What an exported order trace must be: spans from every service on the
/// order's path; the edge's request span a child of the client's span; the
/// parent links of [`HOPS`]; and no span whose parent is missing.
fn the_tree_is_complete(spans: &[ExportedSpan]) -> Result<(), String> {
    let by_id: HashMap<&str, &ExportedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    for service in ORDER_PATH {
        if !services.contains(service) {
            return Err(format!("no span from {service} yet (have {services:?})"));
        }
    }
    let request = spans
        .iter()
        .find(|s| s.service == "edge-api" && s.name == "POST /api/v1/orders")
        .ok_or("no edge span named POST /api/v1/orders")?;
    if request.parent_span_id.as_deref() != Some(CLIENT_SPAN) {
        return Err(format!(
            "the edge's request span is not a child of the client's: {request:?}"
        ));
    }
    for (service, parents) in HOPS {
        let continues = spans.iter().any(|s| {
            s.service == service
                && s.parent_span_id
                    .as_deref()
                    .and_then(|p| by_id.get(p))
                    .is_some_and(|parent| parents.contains(&parent.service.as_str()))
        });
        if !continues {
            return Err(format!(
                "no span of {service} is the child of a span of {parents:?}"
            ));
        }
    }
    let orphans: Vec<&ExportedSpan> = spans
        .iter()
        .filter(|s| match s.parent_span_id.as_deref() {
            None => true,
            Some(parent) => parent != CLIENT_SPAN && !by_id.contains_key(parent),
        })
        .collect();
    if !orphans.is_empty() {
        return Err(format!(
            "spans whose parent is not in the trace: {orphans:#?}"
        ));
    }
    Ok(())
}
