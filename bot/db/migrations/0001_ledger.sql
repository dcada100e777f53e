-- 0001: credits — accounts, the append-only ledger, holds for in-flight comparisons,
-- and per-guild settings. Times are UTC ISO-8601 text with microseconds
-- ("2026-05-10T14:00:00.000000+00:00"), so text order is time order.

CREATE TABLE accounts (
    guild_id      INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    -- typeof() as well: SQLite turns an overflowing integer sum into a REAL.
    balance       INTEGER NOT NULL DEFAULT 0
                  CHECK (typeof(balance) = 'integer' AND balance >= 0),
    created_at    TEXT    NOT NULL,
    last_daily_at TEXT,
    PRIMARY KEY (guild_id, user_id)
);

CREATE INDEX accounts_by_balance ON accounts (guild_id, balance DESC, user_id);

-- Kinds are rows, not a CHECK list, so a later migration can add one with an INSERT.
-- sign: +1 credits the member, -1 debits them.
CREATE TABLE ledger_kinds (
    kind TEXT    PRIMARY KEY,
    sign INTEGER NOT NULL CHECK (sign IN (-1, 1))
);

INSERT INTO ledger_kinds (kind, sign) VALUES
    ('starter', 1), ('daily', 1), ('grant', 1), ('refund', 1), ('recovery', 1),
    ('revoke', -1), ('spend', -1);

CREATE TABLE holds (
    id            INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    comparison_id TEXT    NOT NULL,
    amount        INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount >= 0),
    state         TEXT    NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'settled', 'released')),
    charged       INTEGER NOT NULL DEFAULT 0 CHECK (charged >= 0),
    refunded      INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    created_at    TEXT    NOT NULL,
    closed_at     TEXT,
    CHECK ((state = 'open') = (closed_at IS NULL)),
    CHECK (state <> 'open' OR (charged = 0 AND refunded = 0)),
    CHECK (state = 'open' OR charged + refunded = amount),
    FOREIGN KEY (guild_id, user_id) REFERENCES accounts (guild_id, user_id)
);

CREATE INDEX holds_open_by_age ON holds (created_at) WHERE state = 'open';
CREATE INDEX holds_by_comparison ON holds (comparison_id);
CREATE INDEX holds_by_account ON holds (guild_id, user_id);

CREATE TABLE hold_items (
    hold_id  INTEGER NOT NULL REFERENCES holds (id),
    position INTEGER NOT NULL,
    model_id TEXT    NOT NULL,
    label    TEXT    NOT NULL,
    credits  INTEGER NOT NULL CHECK (typeof(credits) = 'integer' AND credits >= 0),
    outcome  TEXT    CHECK (outcome IN ('charged', 'refunded')),
    reason   TEXT,
    PRIMARY KEY (hold_id, model_id)
) WITHOUT ROWID;

CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    delta         INTEGER NOT NULL CHECK (typeof(delta) = 'integer' AND delta <> 0),
    kind          TEXT    NOT NULL REFERENCES ledger_kinds (kind),
    reason        TEXT    NOT NULL DEFAULT '',
    actor_id      INTEGER,
    comparison_id TEXT,
    hold_id       INTEGER REFERENCES holds (id),
    model_id      TEXT,
    created_at    TEXT    NOT NULL,
    FOREIGN KEY (guild_id, user_id) REFERENCES accounts (guild_id, user_id)
);

CREATE INDEX ledger_by_account ON ledger (guild_id, user_id, id);
CREATE INDEX ledger_by_hold ON ledger (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX ledger_grants_by_actor ON ledger (guild_id, actor_id, created_at)
    WHERE kind = 'grant';

CREATE TRIGGER ledger_delta_sign BEFORE INSERT ON ledger
WHEN NEW.delta * (SELECT sign FROM ledger_kinds WHERE kind = NEW.kind) < 0
BEGIN
    SELECT RAISE(ABORT, 'ledger delta has the wrong sign for its kind');
END;

-- Append-only: corrections are new rows, never edits.
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

-- Only the settings a guild changed, as a JSON object; missing keys take the code's defaults.
CREATE TABLE guild_settings (
    guild_id   INTEGER PRIMARY KEY,
    data       TEXT    NOT NULL DEFAULT '{}',
    updated_at TEXT    NOT NULL
);
