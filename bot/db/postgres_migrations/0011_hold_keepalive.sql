-- 0011 (PostgreSQL): a live owner keeps its open holds from the stale-hold sweep, as SQLite's
-- 0011. kept_at is the last time the owner marked the hold alive (NULL: never; its age counts
-- from created_at); the sweep refunds an open hold only once both are older than its window.

ALTER TABLE holds ADD COLUMN kept_at timestamptz CHECK (kept_at >= created_at);
