//! Subject, stream and consumer names: the only place that spells them.
//!
//! Events: `evt.<team>.<entity>.<fact>.v<major>`; commands `cmd.<team>.<action>`;
//! queries `qry.<team>.<view>`; dead letters `dlq.<service>.<consumer>`.

/// The teams, each owning one service, one subject prefix and one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Team {
    Product,
    Checkout,
    Warehouse,
    Finance,
}

impl Team {
    pub const ALL: [Team; 4] = [
        Team::Product,
        Team::Checkout,
        Team::Warehouse,
        Team::Finance,
    ];

    /// The team's short name, as used in subjects.
    pub const fn name(self) -> &'static str {
        match self {
            Team::Product => "product",
            Team::Checkout => "checkout",
            Team::Warehouse => "warehouse",
            Team::Finance => "finance",
        }
    }

    /// The service (and NATS user) the team runs.
    pub const fn service(self) -> &'static str {
        match self {
            Team::Product => PRODUCT_SVC,
            Team::Checkout => CHECKOUT_SVC,
            Team::Warehouse => WAREHOUSE_SVC,
            Team::Finance => FINANCE_SVC,
        }
    }

    /// The JetStream stream holding the team's events.
    pub const fn stream(self) -> &'static str {
        match self {
            Team::Product => "EVT_PRODUCT",
            Team::Checkout => "EVT_CHECKOUT",
            Team::Warehouse => "EVT_WAREHOUSE",
            Team::Finance => "EVT_FINANCE",
        }
    }

    /// The subject filter covering every event the team publishes.
    pub const fn event_prefix(self) -> &'static str {
        match self {
            Team::Product => "evt.product.>",
            Team::Checkout => "evt.checkout.>",
            Team::Warehouse => "evt.warehouse.>",
            Team::Finance => "evt.finance.>",
        }
    }

    /// The team that owns an event subject, if any.
    pub fn owning(subject: &str) -> Option<Team> {
        let mut parts = subject.split('.');
        if parts.next() != Some("evt") {
            return None;
        }
        let team = parts.next()?;
        Team::ALL.into_iter().find(|t| t.name() == team)
    }
}

pub const PRODUCT_SVC: &str = "product-svc";
pub const CHECKOUT_SVC: &str = "checkout-svc";
pub const WAREHOUSE_SVC: &str = "warehouse-svc";
pub const FINANCE_SVC: &str = "finance-svc";
pub const EDGE_API: &str = "edge-api";

/// Every service that runs, in start-up order.
pub const SERVICES: [&str; 5] = [
    PRODUCT_SVC,
    CHECKOUT_SVC,
    WAREHOUSE_SVC,
    FINANCE_SVC,
    EDGE_API,
];

/// The stream that holds dead letters of every service.
pub const DLQ_STREAM: &str = "DLQ";
/// The subjects of the dead-letter stream.
pub const DLQ_SUBJECTS: &str = "dlq.>";

/// The dead-letter subject of one service's consumer.
pub fn dlq_subject(service: &str, consumer: &str) -> String {
    format!("dlq.{service}.{consumer}")
}

/// Operators' control endpoints, served by every service's platform runtime
/// (request/reply, one queue group per service) and called by the `bazaar`
/// CLI as the `ops` user. A service user may subscribe to `ops.<service>.>`
/// and publish only the progress of its own replays.
pub mod ops {
    /// Rebuild the service's projections from their streams.
    pub fn replay(service: &str) -> String {
        format!("ops.{service}.replay")
    }

    /// Where the service reports the progress of one replay (`id` chosen by
    /// the caller, so it can subscribe before asking).
    pub fn replay_progress(service: &str, id: &str) -> String {
        format!("ops.{service}.replay.progress.{id}")
    }

    /// Run one dead letter through the consumer that failed it.
    pub fn redeliver(service: &str) -> String {
        format!("ops.{service}.redeliver")
    }
}

/// Command subjects (request/reply on a queue group per service).
pub mod cmd {
    pub const PRODUCT_CREATE: &str = "cmd.product.create-product";
    pub const PRODUCT_UPDATE: &str = "cmd.product.update-product";

    pub const CHECKOUT_PUT_BASKET_ITEM: &str = "cmd.checkout.put-basket-item";
    pub const CHECKOUT_PLACE_ORDER: &str = "cmd.checkout.place-order";
    pub const CHECKOUT_CANCEL_ORDER: &str = "cmd.checkout.cancel-order";

    pub const WAREHOUSE_SET_STOCK: &str = "cmd.warehouse.set-stock";
}

/// Query subjects (request/reply).
pub mod qry {
    pub const PRODUCT_SEARCH: &str = "qry.product.search";
}

/// Event subjects, per team.
pub mod evt {
    pub const PRODUCT_CREATED_V1: &str = "evt.product.product.created.v1";
    pub const PRODUCT_UPDATED_V1: &str = "evt.product.product.updated.v1";
    pub const PRODUCT_PRICE_CHANGED_V1: &str = "evt.product.product.price-changed.v1";
    pub const PRODUCT_DISCONTINUED_V1: &str = "evt.product.product.discontinued.v1";

    pub const BASKET_CHANGED_V1: &str = "evt.checkout.basket.changed.v1";
    /// Deprecated: history only; checkout publishes [`ORDER_PLACED_V2`].
    pub const ORDER_PLACED_V1: &str = "evt.checkout.order.placed.v1";
    pub const ORDER_PLACED_V2: &str = "evt.checkout.order.placed.v2";
    pub const ORDER_CONFIRMED_V1: &str = "evt.checkout.order.confirmed.v1";
    pub const ORDER_REJECTED_V1: &str = "evt.checkout.order.rejected.v1";
    pub const ORDER_CANCELLED_V1: &str = "evt.checkout.order.cancelled.v1";
    pub const ORDER_CANCELLATION_REQUESTED_V1: &str =
        "evt.checkout.order.cancellation-requested.v1";

    pub const STOCK_ADJUSTED_V1: &str = "evt.warehouse.stock.adjusted.v1";
    pub const STOCK_RESERVED_V1: &str = "evt.warehouse.stock.reserved.v1";
    pub const STOCK_RESERVATION_FAILED_V1: &str = "evt.warehouse.stock.reservation-failed.v1";
    pub const STOCK_RELEASED_V1: &str = "evt.warehouse.stock.released.v1";
    pub const SHIPMENT_DISPATCHED_V1: &str = "evt.warehouse.shipment.dispatched.v1";

    pub const PAYMENT_AUTHORIZED_V1: &str = "evt.finance.payment.authorized.v1";
    pub const PAYMENT_FAILED_V1: &str = "evt.finance.payment.failed.v1";
    pub const PAYMENT_VOIDED_V1: &str = "evt.finance.payment.voided.v1";
    pub const PAYMENT_CAPTURED_V1: &str = "evt.finance.payment.captured.v1";
    pub const PAYMENT_REFUNDED_V1: &str = "evt.finance.payment.refunded.v1";
    pub const INVOICE_ISSUED_V1: &str = "evt.finance.invoice.issued.v1";
}

/// Durable consumer names: a subscribing service's consumer is named after it.
/// Renaming one re-consumes the whole stream, so these never change.
pub mod durable {
    pub const CHECKOUT: &str = "checkout-svc";
    pub const WAREHOUSE: &str = "warehouse-svc";
    pub const FINANCE: &str = "finance-svc";
    pub const PRODUCT: &str = "product-svc";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_subject_is_the_team_in_its_second_token() {
        assert_eq!(Team::owning(evt::ORDER_PLACED_V1), Some(Team::Checkout));
        assert_eq!(Team::owning("cmd.checkout.place-order"), None);
        assert_eq!(Team::owning("evt.nobody.x.v1"), None);
    }

    #[test]
    fn every_team_prefix_covers_its_stream_subjects() {
        for team in Team::ALL {
            assert_eq!(team.event_prefix(), format!("evt.{}.>", team.name()));
        }
    }
}
