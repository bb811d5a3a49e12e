-- The id (UUID v7, time-ordered) of the stock event that set each row: a
-- redelivered older event must not turn availability back.
ALTER TABLE availability_view ADD COLUMN last_event_id TEXT NOT NULL DEFAULT '';
