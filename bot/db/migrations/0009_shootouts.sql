-- 0009: shoot-outs. A shoot-out is the parent of ordinary comparisons (kind 'shootout',
-- parent_id = the shoot-out's id): one round per prompt. The team pool needs no table: it is
-- the ledger account (guild_id, user_id 0) of each server.

CREATE TABLE shootouts (
    id                TEXT    PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,  -- where /shootout start ran (the report's fallback)
    thread_id         INTEGER,           -- where the rounds go; NULL: the channel itself
    status_message_id INTEGER,
    report_message_id INTEGER,
    user_id           INTEGER NOT NULL,  -- who started it
    payer_id          INTEGER NOT NULL,  -- the account charged: the starter, or 0 (the pool)
    name              TEXT    NOT NULL,
    use_case          TEXT    NOT NULL,
    models            TEXT    NOT NULL,  -- JSON list of model ids, as picked
    team_role_id      INTEGER,           -- NULL: every member votes
    team_role_gone    INTEGER NOT NULL DEFAULT 0 CHECK (team_role_gone IN (0, 1)),
    blind             INTEGER NOT NULL DEFAULT 1 CHECK (blind IN (0, 1)),
    -- running: rounds are being made; open: voting; closed: reported (or being reported)
    state             TEXT    NOT NULL DEFAULT 'running'
                      CHECK (state IN ('running', 'open', 'closed')),
    deadline          TEXT    NOT NULL,
    created_at        TEXT    NOT NULL,
    closed_at         TEXT,
    closed_by         INTEGER,           -- NULL: the deadline closed it
    reported_at       TEXT               -- NULL after closing: the report is still to post
);

CREATE INDEX shootouts_due ON shootouts (deadline) WHERE state <> 'closed';
CREATE INDEX shootouts_unreported ON shootouts (closed_at) WHERE state = 'closed' AND reported_at IS NULL;
CREATE INDEX shootouts_by_guild ON shootouts (guild_id, created_at);

-- One row per prompt, written (with its hold) before any model runs, so a restart knows what
-- was paid for and what still has to be refunded.
CREATE TABLE shootout_rounds (
    shootout_id   TEXT    NOT NULL REFERENCES shootouts (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 4),
    prompt        TEXT    NOT NULL,
    comparison_id TEXT    NOT NULL UNIQUE,  -- the round's comparison once recorded
    hold_id       INTEGER,
    price         INTEGER NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'planned'
                  CHECK (state IN ('planned', 'running', 'posted', 'refunded')),
    note          TEXT,                     -- why a round was refunded, or a model's refusal
    PRIMARY KEY (shootout_id, idx)
) WITHOUT ROWID;
