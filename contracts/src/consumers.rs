//! Who reads which event versions: each consuming service's declaration,
//! from which it builds its consumer filters, and which the contract tests
//! check against the catalogue (every declared version exists and is
//! published by its owning team; every published version has a reader or
//! is published for outside use). An event version can only be retired once
//! nothing here reads it.

use crate::subjects::{evt, Team, CHECKOUT_SVC, EDGE_API, FINANCE_SVC, PRODUCT_SVC, WAREHOUSE_SVC};

/// Event versions one service reads from one team's stream: the filter of
/// its consumer (durable or ordered) on that stream.
#[derive(Debug, Clone, Copy)]
pub struct Reads {
    /// The team whose stream holds these events; every subject is its own.
    pub from: Team,
    pub subjects: &'static [&'static str],
}

/// How a service reads the streams it consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// One durable pull consumer per stream, named after the service
    /// (`subjects::durable`): the saga's reactions, acknowledged one by one.
    Durable,
    /// Ordered consumers the service names afresh each time (views,
    /// replays, search feeds): the position lives in the service's store.
    Ordered,
}

/// A consuming service and everything it reads.
#[derive(Debug, Clone, Copy)]
pub struct Consumer {
    pub service: &'static str,
    /// The team that runs it; `None` for the platform's edge.
    pub team: Option<Team>,
    pub reading: Reading,
    pub reads: &'static [Reads],
}

impl Consumer {
    /// Every subject the service reads from `team`'s stream.
    pub fn subjects_from(&self, team: Team) -> Vec<&'static str> {
        self.reads
            .iter()
            .filter(|r| r.from == team)
            .flat_map(|r| r.subjects.iter().copied())
            .collect()
    }

    /// Every subject the service reads, from any stream.
    pub fn subjects(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.reads.iter().flat_map(|r| r.subjects.iter().copied())
    }
}

/// checkout-svc: prices for its replica, and the saga's answers.
pub mod checkout_svc {
    use super::*;

    /// The price replica.
    pub const PRICES: Reads = Reads {
        from: Team::Product,
        subjects: &[
            evt::PRODUCT_CREATED_V1,
            evt::PRODUCT_UPDATED_V1,
            evt::PRODUCT_PRICE_CHANGED_V1,
            evt::PRODUCT_DISCONTINUED_V1,
        ],
    };

    /// The saga's inputs from the warehouse.
    pub const SAGA_STOCK: Reads = Reads {
        from: Team::Warehouse,
        subjects: &[
            evt::STOCK_RESERVED_V1,
            evt::STOCK_RESERVATION_FAILED_V1,
            evt::STOCK_RELEASED_V1,
            evt::SHIPMENT_DISPATCHED_V1,
        ],
    };

    /// The saga's inputs from finance.
    pub const SAGA_PAYMENT: Reads = Reads {
        from: Team::Finance,
        subjects: &[evt::PAYMENT_AUTHORIZED_V1, evt::PAYMENT_FAILED_V1],
    };

    pub const CONSUMER: Consumer = Consumer {
        service: CHECKOUT_SVC,
        team: Some(Team::Checkout),
        reading: Reading::Durable,
        reads: &[PRICES, SAGA_STOCK, SAGA_PAYMENT],
    };
}

/// warehouse-svc: the order events it reserves, ships and releases on.
pub mod warehouse_svc {
    use super::*;

    /// Both versions of `order.placed`: history still holds v1.
    pub const ORDERS: Reads = Reads {
        from: Team::Checkout,
        subjects: &[
            evt::ORDER_PLACED_V1,
            evt::ORDER_PLACED_V2,
            evt::ORDER_CONFIRMED_V1,
            evt::ORDER_REJECTED_V1,
            evt::ORDER_CANCELLED_V1,
            evt::ORDER_CANCELLATION_REQUESTED_V1,
        ],
    };

    pub const CONSUMER: Consumer = Consumer {
        service: WAREHOUSE_SVC,
        team: Some(Team::Warehouse),
        reading: Reading::Durable,
        reads: &[ORDERS],
    };
}

/// finance-svc: the order events it authorises, captures and voids on.
pub mod finance_svc {
    use super::*;

    /// Both versions of `order.placed`: history still holds v1.
    pub const ORDERS: Reads = Reads {
        from: Team::Checkout,
        subjects: &[
            evt::ORDER_PLACED_V1,
            evt::ORDER_PLACED_V2,
            evt::ORDER_CONFIRMED_V1,
            evt::ORDER_REJECTED_V1,
            evt::ORDER_CANCELLED_V1,
        ],
    };

    pub const CONSUMER: Consumer = Consumer {
        service: FINANCE_SVC,
        team: Some(Team::Finance),
        reading: Reading::Durable,
        reads: &[ORDERS],
    };
}

/// product-svc's search shards: the catalogue and live availability.
pub mod product_svc {
    use super::*;

    /// The product team's own events: the search index is a read model of
    /// the product stream (see [`READS_OWN_EVENTS`]).
    pub const SEARCH_PRODUCTS: Reads = Reads {
        from: Team::Product,
        subjects: &[
            evt::PRODUCT_CREATED_V1,
            evt::PRODUCT_UPDATED_V1,
            evt::PRODUCT_PRICE_CHANGED_V1,
            evt::PRODUCT_DISCONTINUED_V1,
        ],
    };

    /// The warehouse events that carry resulting stock levels.
    pub const SEARCH_STOCK: Reads = Reads {
        from: Team::Warehouse,
        subjects: &[
            evt::STOCK_ADJUSTED_V1,
            evt::STOCK_RESERVED_V1,
            evt::STOCK_RELEASED_V1,
            evt::SHIPMENT_DISPATCHED_V1,
        ],
    };

    pub const CONSUMER: Consumer = Consumer {
        service: PRODUCT_SVC,
        team: Some(Team::Product),
        reading: Reading::Ordered,
        reads: &[SEARCH_PRODUCTS, SEARCH_STOCK],
    };
}

/// edge-api: its views (products, baskets, orders with their timeline,
/// availability, invoices), one projection per team stream.
pub mod edge_api {
    use super::*;

    pub const PRODUCTS: Reads = Reads {
        from: Team::Product,
        subjects: &[
            evt::PRODUCT_CREATED_V1,
            evt::PRODUCT_UPDATED_V1,
            evt::PRODUCT_PRICE_CHANGED_V1,
            evt::PRODUCT_DISCONTINUED_V1,
        ],
    };

    /// Baskets and orders; both versions of `order.placed`.
    pub const CHECKOUT: Reads = Reads {
        from: Team::Checkout,
        subjects: &[
            evt::BASKET_CHANGED_V1,
            evt::ORDER_PLACED_V1,
            evt::ORDER_PLACED_V2,
            evt::ORDER_CONFIRMED_V1,
            evt::ORDER_REJECTED_V1,
            evt::ORDER_CANCELLED_V1,
            evt::ORDER_CANCELLATION_REQUESTED_V1,
        ],
    };

    /// Availability and the orders' warehouse steps.
    pub const WAREHOUSE: Reads = Reads {
        from: Team::Warehouse,
        subjects: &[
            evt::STOCK_ADJUSTED_V1,
            evt::STOCK_RESERVED_V1,
            evt::STOCK_RESERVATION_FAILED_V1,
            evt::STOCK_RELEASED_V1,
            evt::SHIPMENT_DISPATCHED_V1,
        ],
    };

    /// Amounts with tax, every payment step on the timeline, invoices.
    pub const FINANCE: Reads = Reads {
        from: Team::Finance,
        subjects: &[
            evt::PAYMENT_AUTHORIZED_V1,
            evt::PAYMENT_FAILED_V1,
            evt::PAYMENT_VOIDED_V1,
            evt::PAYMENT_CAPTURED_V1,
            evt::PAYMENT_REFUNDED_V1,
            evt::INVOICE_ISSUED_V1,
        ],
    };

    pub const CONSUMER: Consumer = Consumer {
        service: EDGE_API,
        team: None,
        reading: Reading::Ordered,
        reads: &[PRODUCTS, CHECKOUT, WAREHOUSE, FINANCE],
    };
}

/// Every consuming service.
pub const CONSUMERS: &[Consumer] = &[
    product_svc::CONSUMER,
    checkout_svc::CONSUMER,
    warehouse_svc::CONSUMER,
    finance_svc::CONSUMER,
    edge_api::CONSUMER,
];

/// A published event version no Bazaar service reads, and why it is
/// published anyway (e.g. for a partner or analytics).
#[derive(Debug, Clone, Copy)]
pub struct OutsideUse {
    pub subject: &'static str,
    pub reason: &'static str,
}

/// Events published for readers outside Bazaar. Empty today: every
/// published version has a reader above.
pub const PUBLISHED_FOR_OUTSIDE_USE: &[OutsideUse] = &[];

/// A service that reads its own team's events, and why that is not a
/// shortcut around a team boundary.
#[derive(Debug, Clone, Copy)]
pub struct OwnEvents {
    pub service: &'static str,
    pub reason: &'static str,
}

/// Services that read their own team's stream. A team normally acts on its
/// own state directly; reading its own events is allowed only for a read
/// model that is rebuilt from the stream.
pub const READS_OWN_EVENTS: &[OwnEvents] = &[OwnEvents {
    service: PRODUCT_SVC,
    reason: "the search shards are a read model of the product stream, rebuilt from it on \
             replay and kept apart from the catalog tables (DESIGN §6)",
}];

/// The declaration of a service, if it consumes events.
pub fn of(service: &str) -> Option<&'static Consumer> {
    CONSUMERS.iter().find(|c| c.service == service)
}

/// The services that read through durable consumers.
pub fn durable_readers() -> impl Iterator<Item = &'static Consumer> {
    CONSUMERS.iter().filter(|c| c.reading == Reading::Durable)
}

/// The services that read `subject`.
pub fn readers(subject: &str) -> impl Iterator<Item = &'static Consumer> + '_ {
    CONSUMERS
        .iter()
        .filter(move |c| c.subjects().any(|s| s == subject))
}
