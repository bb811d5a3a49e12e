//! Unit tests of the rules, on histories built by hand.

use contracts::checkout::{OrderConfirmedV1, OrderRejectedV1};
use contracts::warehouse::{ShipmentDispatchedV1, StockAdjustedV1, StockLevelV1};
use contracts::{Envelope, Event, EventContext};

use super::*;

fn record<T: Event>(history: &mut History, data: T) {
    let envelope = Envelope::new("test", data, &EventContext::root("c", None));
    history.record(T::SUBJECT, &envelope.to_json());
}

fn rules(history: &History, settled: bool) -> Vec<&'static str> {
    history
        .check(settled)
        .0
        .into_iter()
        .map(|v| v.rule)
        .collect()
}

#[test]
fn a_stored_copy_of_an_event_is_a_duplicate_not_a_second_outcome() {
    let mut history = History::default();
    let confirmed = Envelope::new(
        "test",
        OrderConfirmedV1 {
            order_id: Uuid::now_v7(),
            customer_id: "alice".to_owned(),
        },
        &EventContext::root("c", None),
    )
    .to_json();
    history.record(OrderConfirmedV1::SUBJECT, &confirmed);
    history.record(OrderConfirmedV1::SUBJECT, &confirmed);
    assert_eq!(history.duplicates, 1);
    let order = history.orders.values().next().map(|o| o.confirmed);
    assert_eq!(order, Some(1), "the copy is not counted");
}

#[test]
fn outcomes_of_an_order_never_placed_are_a_violation() {
    let mut history = History::default();
    let order_id = Uuid::now_v7();
    let customer_id = "alice".to_owned();
    record(
        &mut history,
        OrderConfirmedV1 {
            order_id,
            customer_id: customer_id.clone(),
        },
    );
    record(
        &mut history,
        OrderRejectedV1 {
            order_id,
            customer_id,
            reason: "payment".to_owned(),
            detail: None,
        },
    );
    // Never placed, so only that is reported for it.
    assert_eq!(rules(&history, false), ["one-terminal-outcome"]);
    assert!(history.undecodable.is_empty(), "{:?}", history.undecodable);
}

#[test]
fn a_shipped_order_must_not_be_cancelled_nor_refunded() {
    let shipped = || Order {
        placed: 1,
        confirmed: 1,
        reserved: 1,
        dispatched: 1,
        authorized: 1,
        captured: 1,
        invoiced: 1,
        ..Order::default()
    };
    let mut history = History::default();
    history.orders.insert(Uuid::now_v7(), shipped());
    assert!(rules(&history, true).is_empty());
    let mut history = History::default();
    let cancelled = Order {
        cancelled: 1,
        refunded: 1,
        ..shipped()
    };
    history.orders.insert(Uuid::now_v7(), cancelled);
    assert_eq!(rules(&history, true), ["shipped-once"]);
}

#[test]
fn stock_on_hand_follows_adjustments_and_dispatches() {
    let mut history = History::default();
    let product_id = Uuid::now_v7();
    let level = |quantity, on_hand| StockLevelV1 {
        product_id,
        quantity,
        on_hand,
        available: on_hand,
    };
    let adjusted = |delta, on_hand| StockAdjustedV1 {
        product_id,
        delta,
        on_hand,
        available: on_hand,
    };
    record(&mut history, adjusted(10, 10));
    record(&mut history, adjusted(5, 15));
    record(
        &mut history,
        ShipmentDispatchedV1 {
            order_id: Uuid::now_v7(),
            shipment_id: Uuid::now_v7(),
            lines: vec![level(2, 13)],
            dispatched_at: chrono::Utc::now(),
        },
    );
    assert!(!rules(&history, false).contains(&"stock-on-hand"));
    record(
        &mut history,
        ShipmentDispatchedV1 {
            order_id: Uuid::now_v7(),
            shipment_id: Uuid::now_v7(),
            lines: vec![level(1, 13)],
            dispatched_at: chrono::Utc::now(),
        },
    );
    assert!(rules(&history, false).contains(&"stock-on-hand"));
}

#[test]
fn invoice_numbers_must_be_unique_and_without_gaps() {
    let history = invoiced(&["2026-000001", "2026-000001", "2026-000003"]);
    let found = history.invoice_violations();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|v| v.rule == "invoice-numbers"));
}

#[test]
fn a_consumer_that_is_missing_or_behind_is_a_violation() {
    let lags = vec![
        ("EVT_CHECKOUT/warehouse-svc".to_owned(), Some((0, 0))),
        ("EVT_CHECKOUT/finance-svc".to_owned(), Some((3, 1))),
        ("EVT_FINANCE/checkout-svc".to_owned(), None),
    ];
    let found = consumer_violations(&lags);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|v| v.rule == "consumers-caught-up"));
    assert!(found[0]
        .detail
        .contains("3 events not delivered, 1 not acknowledged"));
    assert!(found[1].detail.contains("does not exist"));
}

#[test]
fn invoice_numbers_below_the_histories_first_are_not_gaps() {
    // A stream created anew: the history holds the numbers from 51 on.
    let history = invoiced(&["2026-000051", "2026-000052", "2026-000054"]);
    let found = history.invoice_violations();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .detail
            .contains("1 numbers missing between 51 and 54: 53"),
        "{found:?}"
    );
    assert_eq!(history.first_invoices(), vec![("2026".to_owned(), 51)]);
}

/// A history holding these invoice numbers, each for an order of its own.
fn invoiced(numbers: &[&str]) -> History {
    let mut history = History::default();
    for number in numbers {
        history
            .invoices
            .entry((*number).to_owned())
            .or_default()
            .push(Uuid::now_v7());
    }
    history
}
