//! Events of the checkout team: baskets, orders and the order saga's outcome.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{DecodeError, Envelope, RawEnvelope};
use crate::money::Money;
use crate::subjects::{evt, Team};

/// One line of a basket, priced from checkout's price replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BasketLineV1 {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price: Money,
}

/// A customer's basket changed; carries the whole basket as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BasketChangedV1 {
    pub customer_id: String,
    pub lines: Vec<BasketLineV1>,
}

/// Where an order is shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddressV1 {
    pub name: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// One line of an order, at the price it was placed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLineV1 {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// An order was placed and awaits stock and payment. Deprecated: checkout
/// publishes `order.placed.v2` instead; history still holds this version,
/// which consumers upcast with `OrderPlacedV2::from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    pub lines: Vec<OrderLineV1>,
    /// Sum of the line totals, before tax.
    pub net: Money,
    pub shipping_address: AddressV1,
    /// The card provider's token (`tok_visa`, `tok_declined`, …).
    pub payment_token: String,
    pub placed_at: DateTime<Utc>,
}

/// Who placed an order, and how to reach them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerV2 {
    /// The customer id (the token's `sub`).
    pub id: String,
    /// Where mail about the order goes; absent when the customer gave none
    /// (and in every order upcast from `order.placed.v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// How an order is paid. A new method is a new major version: consumers
/// decode this as a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodV2 {
    Card,
}

/// The payment an order is placed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentV2 {
    pub method: PaymentMethodV2,
    /// The card provider's token (`tok_visa`, `tok_declined`, …).
    pub token: String,
}

/// An order was placed and awaits stock and payment: v2 carries the
/// customer's contact and a structured payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV2 {
    pub order_id: Uuid,
    pub customer: CustomerV2,
    pub lines: Vec<OrderLineV1>,
    /// Sum of the line totals, before tax.
    pub net: Money,
    pub shipping_address: AddressV1,
    pub payment: PaymentV2,
    pub placed_at: DateTime<Utc>,
}

/// The upcaster: an order placed under v1 read as v2. v1 knew no e-mail
/// address and took only cards.
impl From<OrderPlacedV1> for OrderPlacedV2 {
    fn from(v1: OrderPlacedV1) -> Self {
        OrderPlacedV2 {
            order_id: v1.order_id,
            customer: CustomerV2 {
                id: v1.customer_id,
                email: None,
            },
            lines: v1.lines,
            net: v1.net,
            shipping_address: v1.shipping_address,
            payment: PaymentV2 {
                method: PaymentMethodV2::Card,
                token: v1.payment_token,
            },
            placed_at: v1.placed_at,
        }
    }
}

/// Decodes an `order.placed` of either version as v2 (v1 through its
/// upcaster): consumers subscribe to both subjects and call this.
pub fn decode_order_placed(bytes: &[u8]) -> Result<Envelope<OrderPlacedV2>, DecodeError> {
    RawEnvelope::parse(bytes)?.decode_or_upcast::<OrderPlacedV1, OrderPlacedV2>()
}

/// Stock was reserved and payment authorised: the order will ship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderConfirmedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
}

/// The order cannot be fulfilled; `reason` is e.g. `out_of_stock`, `payment_declined`, `timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRejectedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The customer asked to cancel a confirmed order. Only the warehouse knows
/// whether its shipment has left: it answers with `stock.released` (the
/// shipment is stopped; checkout then announces `order.cancelled`) or it
/// has already published `shipment.dispatched` (the order ships; the
/// request lapses). Finance does nothing on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancellationRequestedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
}

/// The customer cancelled the order before it shipped. A confirmed order
/// is cancelled only after the warehouse released its stock (see
/// [`OrderCancellationRequestedV1`]), so nothing of it ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelledV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    /// Whether the order had been confirmed (payment captured) when cancelled.
    pub was_confirmed: bool,
}

event!(
    BasketChangedV1,
    evt::BASKET_CHANGED_V1,
    Team::Checkout,
    customer_id
);
event!(
    OrderPlacedV1,
    evt::ORDER_PLACED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderPlacedV2,
    evt::ORDER_PLACED_V2,
    Team::Checkout,
    order_id
);
event!(
    OrderConfirmedV1,
    evt::ORDER_CONFIRMED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderRejectedV1,
    evt::ORDER_REJECTED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderCancelledV1,
    evt::ORDER_CANCELLED_V1,
    Team::Checkout,
    order_id
);
event!(
    OrderCancellationRequestedV1,
    evt::ORDER_CANCELLATION_REQUESTED_V1,
    Team::Checkout,
    order_id
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Event, EventContext};

    fn placed_v1() -> OrderPlacedV1 {
        OrderPlacedV1 {
            order_id: Uuid::now_v7(),
            customer_id: "alice".into(),
            lines: Vec::new(),
            net: Money::eur(0),
            shipping_address: AddressV1 {
                name: "Alice".into(),
                line1: "1 Main St".into(),
                city: "Berlin".into(),
                postal_code: "10115".into(),
                country: "DE".into(),
            },
            payment_token: "tok_visa".into(),
            placed_at: Utc::now(),
        }
    }

    #[test]
    fn an_order_placed_under_v1_upcasts_to_a_card_payment_without_email() {
        let v1 = placed_v1();

        let v2 = OrderPlacedV2::from(v1.clone());

        assert_eq!(v2.order_id, v1.order_id);
        assert_eq!(
            v2.customer,
            CustomerV2 {
                id: "alice".into(),
                email: None
            }
        );
        assert_eq!(
            v2.payment,
            PaymentV2 {
                method: PaymentMethodV2::Card,
                token: "tok_visa".into()
            }
        );
        assert_eq!(
            (v2.lines, v2.net, v2.shipping_address, v2.placed_at),
            (v1.lines, v1.net, v1.shipping_address, v1.placed_at)
        );
    }

    #[test]
    fn decode_order_placed_reads_both_versions_as_v2() {
        let ctx = EventContext::root("cmd-1", None);
        let v1 = Envelope::new(crate::subjects::CHECKOUT_SVC, placed_v1(), &ctx);
        let v2 = Envelope::new(
            crate::subjects::CHECKOUT_SVC,
            OrderPlacedV2::from(placed_v1()),
            &ctx,
        );

        let from_v1 = decode_order_placed(&v1.to_json()).expect("v1 decodes");
        let from_v2 = decode_order_placed(&v2.to_json()).expect("v2 decodes");

        assert_eq!(from_v1.id, v1.id, "the upcast event keeps its identity");
        assert_eq!(from_v1.event_type, OrderPlacedV2::event_type());
        assert_eq!(from_v1.data, OrderPlacedV2::from(v1.data));
        assert_eq!(from_v2, v2);
    }

    #[test]
    fn decode_order_placed_refuses_other_events() {
        let confirmed = OrderConfirmedV1 {
            order_id: Uuid::now_v7(),
            customer_id: "alice".into(),
        };
        let envelope = Envelope::new(
            crate::subjects::CHECKOUT_SVC,
            confirmed,
            &EventContext::root("c", None),
        );

        let error = decode_order_placed(&envelope.to_json()).expect_err("not an order.placed");

        assert!(matches!(error, DecodeError::WrongType { .. }), "{error}");
    }
}
