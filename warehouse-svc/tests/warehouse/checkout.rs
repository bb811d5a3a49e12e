//! Checkout's order events, as the tests publish them in checkout's place.

use contracts::checkout::{
    AddressV1, CustomerV2, OrderCancelledV1, OrderConfirmedV1, OrderLineV1, OrderPlacedV1,
    OrderPlacedV2, OrderRejectedV1, PaymentMethodV2, PaymentV2,
};
use contracts::subjects::CHECKOUT_SVC;
use contracts::{Envelope, EventContext, Money};
use uuid::Uuid;

fn root() -> EventContext {
    EventContext::root(Uuid::now_v7().to_string(), None)
}

/// An `order.placed` for a fresh order with the given `(product, quantity)` lines.
pub fn placed(lines: &[(Uuid, i64)]) -> Envelope<OrderPlacedV1> {
    let lines: Vec<OrderLineV1> = lines
        .iter()
        .map(|&(product_id, quantity)| OrderLineV1 {
            product_id,
            sku: format!("SKU-{}", &product_id.simple().to_string()[..8]),
            name: "a product".to_owned(),
            quantity,
            unit_price: Money::eur(1_000),
            line_total: Money::eur(1_000 * quantity),
        })
        .collect();
    let net = Money::eur(lines.iter().map(|l| l.line_total.amount_minor).sum());
    let data = OrderPlacedV1 {
        order_id: Uuid::now_v7(),
        customer_id: "alice".to_owned(),
        lines,
        net,
        shipping_address: AddressV1 {
            name: "Alice".to_owned(),
            line1: "1 Main St".to_owned(),
            city: "Berlin".to_owned(),
            postal_code: "10115".to_owned(),
            country: "DE".to_owned(),
        },
        payment_token: "tok_visa".to_owned(),
        placed_at: chrono::Utc::now(),
    };
    Envelope::new("checkout-svc", data, &root())
}

/// The same order as checkout publishes it since v2: with the customer's
/// contact and a structured payment.
pub fn placed_v2(lines: &[(Uuid, i64)]) -> Envelope<OrderPlacedV2> {
    let v1 = placed(lines).data;
    let data = OrderPlacedV2 {
        order_id: Uuid::now_v7(),
        customer: CustomerV2 {
            id: v1.customer_id,
            email: Some("alice@example.org".to_owned()),
        },
        lines: v1.lines,
        net: v1.net,
        shipping_address: v1.shipping_address,
        payment: PaymentV2 {
            method: PaymentMethodV2::Card,
            token: v1.payment_token,
        },
        placed_at: v1.placed_at,
    };
    Envelope::new(CHECKOUT_SVC, data, &root())
}

pub fn confirmed(order_id: Uuid) -> Envelope<OrderConfirmedV1> {
    let data = OrderConfirmedV1 {
        order_id,
        customer_id: "alice".to_owned(),
    };
    Envelope::new("checkout-svc", data, &root())
}

pub fn rejected(order_id: Uuid) -> Envelope<OrderRejectedV1> {
    let data = OrderRejectedV1 {
        order_id,
        customer_id: "alice".to_owned(),
        reason: "payment_declined".to_owned(),
        detail: None,
    };
    Envelope::new("checkout-svc", data, &root())
}

pub fn cancelled(order_id: Uuid) -> Envelope<OrderCancelledV1> {
    let data = OrderCancelledV1 {
        order_id,
        customer_id: "alice".to_owned(),
        was_confirmed: true,
    };
    Envelope::new("checkout-svc", data, &root())
}
