-- A confirmed order the customer asked to cancel: 1 until the warehouse
-- answers (stock released → cancelled; shipment dispatched → shipped).
ALTER TABLE orders ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
