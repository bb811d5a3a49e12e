-- checkout's own copy of the catalog's prices, fed by product events.
CREATE TABLE price_replica (
    product_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    -- How many product events were applied to this row (each exactly once).
    applied_events BIGINT NOT NULL
);
