-- 0009 (PostgreSQL): shoot-outs and their rounds, as SQLite's 0009. A shoot-out is the parent of
-- ordinary comparisons (kind 'shootout', parent_id = the shoot-out's id), one round per prompt;
-- the team pool needs no table: it is the ledger account (guild_id, user_id 0) of each server.

CREATE TABLE shootouts (
    id                text        PRIMARY KEY,
    guild_id          bigint      NOT NULL,
    channel_id        bigint      NOT NULL,  -- where /shootout start ran (the report's fallback)
    thread_id         bigint,                -- where the rounds go; NULL: the channel itself
    status_message_id bigint,
    report_message_id bigint,
    user_id           bigint      NOT NULL,  -- who started it
    payer_id          bigint      NOT NULL,  -- the account charged: the starter, or 0 (the pool)
    name              text        NOT NULL,
    use_case          text        NOT NULL,
    models            text        NOT NULL,  -- JSON list of model ids, as picked
    team_role_id      bigint,                -- NULL: every member votes
    team_role_gone    boolean     NOT NULL DEFAULT false,
    blind             boolean     NOT NULL DEFAULT true,
    -- running: rounds are being made; open: voting; closed: reported (or being reported)
    state             text        NOT NULL DEFAULT 'running'
                      CHECK (state IN ('running', 'open', 'closed')),
    deadline          timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    closed_at         timestamptz,
    closed_by         bigint,                -- NULL: the deadline closed it
    reported_at       timestamptz            -- NULL after closing: the report is still to post
);

CREATE INDEX shootouts_due ON shootouts (deadline) WHERE state <> 'closed';
CREATE INDEX shootouts_unreported ON shootouts (closed_at) WHERE state = 'closed' AND reported_at IS NULL;
CREATE INDEX shootouts_by_guild ON shootouts (guild_id, created_at);

-- One row per prompt, written (with its hold) before any model runs, so a restart knows what
-- was paid for and what still has to be refunded.
CREATE TABLE shootout_rounds (
    shootout_id   text     NOT NULL REFERENCES shootouts (id) ON DELETE CASCADE,
    idx           smallint NOT NULL CHECK (idx BETWEEN 0 AND 4),
    prompt        text     NOT NULL,
    comparison_id text     NOT NULL UNIQUE,  -- the round's comparison once recorded
    hold_id       bigint,
    price         bigint   NOT NULL,
    state         text     NOT NULL DEFAULT 'planned'
                  CHECK (state IN ('planned', 'running', 'posted', 'refunded')),
    note          text,                      -- why a round was refunded, or a model's refusal
    PRIMARY KEY (shootout_id, idx)
);

-- Restart recovery looks for rounds a run left unfinished; they are few, so index only them.
CREATE INDEX shootout_rounds_unfinished ON shootout_rounds (shootout_id)
    WHERE state IN ('planned', 'running');
