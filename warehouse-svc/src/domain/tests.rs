//! Unit tests of the warehouse's pure rules.

use super::*;
use contracts::Money;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn line(product: u128, quantity: i64) -> OrderLineV1 {
    OrderLineV1 {
        product_id: id(product),
        sku: format!("SKU-{product}"),
        name: format!("product {product}"),
        quantity,
        unit_price: Money::eur(100),
        line_total: Money::eur(quantity.saturating_mul(100)),
    }
}

fn level(on_hand: i64, reserved: i64) -> Level {
    Level { on_hand, reserved }
}

fn want(product: u128, quantity: i64) -> Demand {
    Demand {
        product_id: id(product),
        quantity,
    }
}

fn cmd(on_hand: i64) -> SetStock {
    SetStock {
        product_id: id(1),
        on_hand,
    }
}

#[test]
fn only_an_admin_may_set_stock() {
    assert_eq!(
        check_set_stock(Role::Customer, &cmd(5)),
        Err(SetStockError::Forbidden)
    );
    assert_eq!(check_set_stock(Role::Admin, &cmd(5)), Ok(()));
}

#[test]
fn on_hand_must_be_between_zero_and_a_billion() {
    assert_eq!(check_set_stock(Role::Admin, &cmd(0)), Ok(()));
    assert_eq!(check_set_stock(Role::Admin, &cmd(MAX_ON_HAND)), Ok(()));
    for bad in [-1, MAX_ON_HAND + 1, i64::MIN] {
        assert_eq!(
            check_set_stock(Role::Admin, &cmd(bad)),
            Err(SetStockError::OutOfRange),
            "{bad}"
        );
    }
}

#[test]
fn setting_stock_reports_the_delta_and_what_is_available() {
    let adjusted = set_stock(id(1), level(10, 4), false, 25).expect("allowed");
    assert_eq!(adjusted.level, level(25, 4));
    assert_eq!(
        adjusted.event,
        Some(StockAdjustedV1 {
            product_id: id(1),
            delta: 15,
            on_hand: 25,
            available: 21
        })
    );
}

#[test]
fn setting_stock_to_what_it_is_publishes_nothing() {
    let adjusted = set_stock(id(1), level(10, 4), false, 10).expect("allowed");
    assert_eq!(adjusted.level, level(10, 4));
    assert_eq!(adjusted.event, None);
}

#[test]
fn the_first_count_of_a_product_is_published_even_at_zero() {
    let adjusted = set_stock(id(1), level(0, 0), true, 0).expect("allowed");
    assert_eq!(adjusted.event.map(|e| e.delta), Some(0));
}

#[test]
fn stock_cannot_be_set_below_what_is_reserved() {
    assert_eq!(
        set_stock(id(1), level(10, 4), false, 3),
        Err(SetStockError::BelowReserved { reserved: 4 })
    );
    assert!(set_stock(id(1), level(10, 4), false, 4).is_ok());
}

#[test]
fn demand_adds_up_lines_per_product_in_product_order() {
    let lines = [line(3, 1), line(1, 2), line(3, 4)];
    assert_eq!(demand(&lines), Ok(vec![want(1, 2), want(3, 5)]));
}

#[test]
fn demand_refuses_orders_that_break_the_contract() {
    assert_eq!(demand(&[]), Err(OrderError::NoLines));
    assert!(matches!(
        demand(&[line(1, 0)]),
        Err(OrderError::BadQuantity { quantity: 0, .. })
    ));
    assert!(matches!(
        demand(&[line(1, -3)]),
        Err(OrderError::BadQuantity { .. })
    ));
    assert!(matches!(
        demand(&[line(1, i64::MAX), line(1, 1)]),
        Err(OrderError::Overflow { .. })
    ));
}

#[test]
fn an_order_whose_lines_all_hold_is_reserved_with_the_resulting_levels() {
    let settled = settle(
        id(9),
        &[
            (want(1, 2), LineResult::Held(level(10, 2))),
            (want(2, 1), LineResult::Held(level(1, 1))),
        ],
    );
    let Settlement::Reserved(event) = settled else {
        panic!("expected a reservation, got {settled:?}");
    };
    assert_eq!(event.order_id, id(9));
    assert_eq!(
        event.lines,
        vec![
            StockLevelV1 {
                product_id: id(1),
                quantity: 2,
                on_hand: 10,
                available: 8
            },
            StockLevelV1 {
                product_id: id(2),
                quantity: 1,
                on_hand: 1,
                available: 0
            },
        ]
    );
}

#[test]
fn one_refused_line_fails_the_whole_order_and_names_only_short_lines() {
    let settled = settle(
        id(9),
        &[
            (want(1, 2), LineResult::Held(level(10, 2))),
            (want(2, 5), LineResult::Refused(Some(level(4, 1)))),
            (want(3, 1), LineResult::Skipped(Some(level(7, 0)))),
            (want(4, 9), LineResult::Skipped(Some(level(7, 0)))),
        ],
    );
    assert_eq!(
        settled,
        Settlement::Failed(StockReservationFailedV1 {
            order_id: id(9),
            reason: OUT_OF_STOCK.to_owned(),
            short: vec![
                ShortLineV1 {
                    product_id: id(2),
                    requested: 5,
                    available: 3
                },
                ShortLineV1 {
                    product_id: id(4),
                    requested: 9,
                    available: 7
                },
            ],
        })
    );
}

#[test]
fn a_product_without_stock_fails_the_order_as_unknown() {
    let settled = settle(
        id(9),
        &[
            (want(1, 1), LineResult::Refused(Some(level(0, 0)))),
            (want(2, 1), LineResult::Skipped(None)),
        ],
    );
    let Settlement::Failed(event) = settled else {
        panic!("expected a failure, got {settled:?}");
    };
    assert_eq!(event.reason, UNKNOWN_PRODUCT);
    assert_eq!(event.short.len(), 2);
    assert_eq!(event.short[1].available, 0);
}

#[test]
fn a_refused_line_is_short_even_if_stock_arrived_since() {
    // Read after the refusal, the level may already show enough again;
    // the order still failed, and the line is still the one named.
    let settled = settle(
        id(9),
        &[(want(1, 3), LineResult::Refused(Some(level(10, 0))))],
    );
    let Settlement::Failed(event) = settled else {
        panic!("expected a failure, got {settled:?}");
    };
    assert_eq!(event.short.len(), 1);
}

#[test]
fn only_an_open_order_may_reserve() {
    use OrderState::*;
    assert!(may_reserve(Open));
    for state in [Held, Failed, Released, Closed, Shipped] {
        assert!(!may_reserve(state), "{state:?}");
    }
}

#[test]
fn closing_an_order_releases_only_what_is_held() {
    use OrderState::*;
    assert_eq!(on_closed(Held), Close::Release);
    assert_eq!(on_closed(Open), Close::MarkClosed);
    assert_eq!(on_closed(Failed), Close::MarkClosed);
    for state in [Released, Closed, Shipped] {
        assert_eq!(on_closed(state), Close::Nothing, "{state:?}");
    }
}

#[test]
fn a_cancellation_request_stops_only_a_shipment_that_has_not_left() {
    use OrderState::*;
    assert_eq!(on_cancel_requested(Held), Close::Release);
    for state in [Open, Failed, Released, Closed, Shipped] {
        assert_eq!(on_cancel_requested(state), Close::Nothing, "{state:?}");
    }
}

#[test]
fn only_held_orders_are_scheduled_and_dispatched() {
    use OrderState::*;
    for state in [Open, Held, Failed, Released, Closed, Shipped] {
        assert_eq!(may_schedule(state), state == Held, "{state:?}");
        assert_eq!(may_dispatch(state), state == Held, "{state:?}");
    }
}

#[test]
fn order_states_round_trip_through_text() {
    use OrderState::*;
    for state in [Open, Held, Failed, Released, Closed, Shipped] {
        assert_eq!(OrderState::parse(state.as_str()), Some(state));
    }
    assert_eq!(OrderState::parse("lost"), None);
}

#[test]
fn release_and_dispatch_events_carry_the_resulting_levels() {
    let lines = [(want(1, 2), level(10, 0))];
    assert_eq!(
        released(id(9), &lines).lines[0],
        StockLevelV1 {
            product_id: id(1),
            quantity: 2,
            on_hand: 10,
            available: 10
        }
    );
    let at = Utc::now();
    let event = dispatched(id(9), id(7), &[(want(1, 2), level(8, 0))], at);
    assert_eq!(event.shipment_id, id(7));
    assert_eq!(event.dispatched_at, at);
    assert_eq!(event.lines[0].on_hand, 8);
}
