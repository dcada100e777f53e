-- 0006: an append-only history of every server settings change: who, when, old -> new.
-- Values are the stored JSON of the setting (NULL old value: it was at its default).

CREATE TABLE settings_history (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    -- NULL: changed by the operator's tools, not by a member
    actor_id   INTEGER,
    action     TEXT    NOT NULL CHECK (action IN ('set', 'reset')),
    setting    TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    created_at TEXT    NOT NULL
);

CREATE INDEX settings_history_by_guild ON settings_history (guild_id, id);

CREATE TRIGGER settings_history_no_update BEFORE UPDATE ON settings_history
BEGIN
    SELECT RAISE(ABORT, 'the settings history is append-only');
END;

CREATE TRIGGER settings_history_no_delete BEFORE DELETE ON settings_history
BEGIN
    SELECT RAISE(ABORT, 'the settings history is append-only');
END;
