-- Stock levels per product, from warehouse events.
CREATE TABLE availability_view (
    product_id TEXT PRIMARY KEY,
    on_hand BIGINT NOT NULL,
    available BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL
);

-- Baskets, from basket.changed (each event carries the whole basket).
CREATE TABLE basket_view (
    customer_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (customer_id, product_id)
);

-- Orders as customers see them, from checkout, warehouse and finance events
-- (which may arrive in any order across streams: every column but the key
-- is filled by whichever event knows it).
CREATE TABLE orders_view (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT,
    lines TEXT,
    net_minor BIGINT,
    tax_minor BIGINT,
    total_minor BIGINT,
    currency TEXT,
    confirmed BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    cancelled BIGINT NOT NULL DEFAULT 0,
    shipped BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    created_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX orders_view_customer ON orders_view (customer_id, created_at, order_id);

CREATE TABLE order_timeline (
    order_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (order_id, stream, seq)
);

CREATE TABLE invoice_view (
    order_id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    body TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
