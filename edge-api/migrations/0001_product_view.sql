-- The edge's read model of the catalog, rebuilt from EVT_PRODUCT.
CREATE TABLE product_view (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_seq BIGINT NOT NULL
);
CREATE INDEX product_view_category ON product_view (category, name);
