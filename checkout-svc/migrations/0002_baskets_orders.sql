-- Baskets: one row per (customer, product).
CREATE TABLE basket_lines (
    customer_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, product_id)
);

-- Orders and the saga's knowledge of each: what warehouse and finance said.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    stock TEXT,
    payment TEXT,
    lines TEXT NOT NULL,
    net_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deadline_at TEXT NOT NULL
);
CREATE INDEX orders_pending_deadline ON orders (status, deadline_at);
CREATE INDEX orders_customer ON orders (customer_id, created_at);
