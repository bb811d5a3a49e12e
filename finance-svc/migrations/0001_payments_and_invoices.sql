-- The orders finance has seen placed: what an invoice needs later.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    country TEXT NOT NULL,
    -- The order's lines as placed (JSON array of checkout's OrderLineV1).
    lines TEXT NOT NULL,
    placed_at TEXT NOT NULL
);

-- One payment per order; `status` is the domain's state machine.
CREATE TABLE payments (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    -- Set once money is held (authorised); NULL for closed and failed ones.
    payment_id TEXT UNIQUE,
    currency TEXT,
    net_minor BIGINT,
    tax_minor BIGINT,
    total_minor BIGINT,
    failure_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The last invoice number handed out per year. Incremented in the same
-- transaction that inserts the invoice, so a rollback leaves no gap.
CREATE TABLE invoice_counters (
    year BIGINT PRIMARY KEY,
    last_number BIGINT NOT NULL
);

CREATE TABLE invoices (
    number TEXT PRIMARY KEY,
    -- An order is invoiced at most once.
    order_id TEXT NOT NULL UNIQUE,
    year BIGINT NOT NULL,
    sequence BIGINT NOT NULL,
    currency TEXT NOT NULL,
    net_minor BIGINT NOT NULL,
    tax_minor BIGINT NOT NULL,
    total_minor BIGINT NOT NULL,
    -- The invoice's lines (JSON array of InvoiceLineV1).
    lines TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    UNIQUE (year, sequence)
);
