-- Stock levels per product. `reserved` is held for open orders; the CHECKs
-- are the last line of defence against overselling: a statement that would
-- hold more than is on hand fails instead of committing.
CREATE TABLE stock (
    product_id TEXT PRIMARY KEY,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved BIGINT NOT NULL CHECK (reserved >= 0),
    updated_at TEXT NOT NULL,
    CHECK (reserved <= on_hand)
);

-- The warehouse's view of each order it has heard of: open (seen, nothing
-- decided), held, failed, released, closed (ended with nothing held) or
-- shipped. Every reaction locks this row first, so the events of one order
-- are handled one at a time even across instances, and a late or repeated
-- event can be recognised.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- What is held for an order, per product: held, released or shipped.
CREATE TABLE reservations (
    order_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- One shipment per confirmed order: scheduled, dispatched or cancelled.
-- The causing event's context is kept so the dispatch continues its trace.
CREATE TABLE shipments (
    order_id TEXT PRIMARY KEY,
    shipment_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    due_at TEXT NOT NULL,
    dispatched_at TEXT,
    correlation_id TEXT NOT NULL,
    causation_id TEXT NOT NULL,
    traceparent TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX shipments_due ON shipments (due_at) WHERE status = 'scheduled';
