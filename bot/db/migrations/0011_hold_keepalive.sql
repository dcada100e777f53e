-- 0011: a live owner keeps its open holds from the stale-hold sweep. A shoot-out reserves every
-- round when it starts and runs them one after another, for longer than the sweep's window;
-- before each round it marks the holds still to run as alive. kept_at is the last such mark
-- (NULL: never marked, the hold's age counts from created_at). The sweep refunds an open hold
-- only once both are older than its window, so a hold whose owner died is still refunded one
-- window after its last mark. Only ever moved forward, only while the hold is open.

ALTER TABLE holds ADD COLUMN kept_at TEXT CHECK (kept_at >= created_at);
