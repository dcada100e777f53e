-- 0002: every comparison and each of its panels, and the posted message that carries it.
-- Vote columns live here so a restarted bot can find what is still open and when it closes.

CREATE TABLE comparisons (
    id            TEXT    PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    channel_id    INTEGER,
    message_id    INTEGER UNIQUE,
    user_id       INTEGER NOT NULL,
    prompt        TEXT    NOT NULL,
    use_case      TEXT    NOT NULL,
    aspect        TEXT    NOT NULL,
    quality       TEXT    NOT NULL,
    blind         INTEGER NOT NULL DEFAULT 0 CHECK (blind IN (0, 1)),
    demo          INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1)),
    charged       INTEGER NOT NULL DEFAULT 0,
    refunded      INTEGER NOT NULL DEFAULT 0,
    image_format  TEXT,
    image_bytes   INTEGER,
    image_sha256  TEXT,
    state         TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'deleted')),
    vote_deadline TEXT,
    closed_at     TEXT,
    created_at    TEXT    NOT NULL
);

CREATE INDEX comparisons_due ON comparisons (vote_deadline) WHERE state = 'open';
CREATE INDEX comparisons_by_guild ON comparisons (guild_id, use_case, created_at);

CREATE TABLE panels (
    comparison_id  TEXT    NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 3),
    letter         TEXT    NOT NULL,
    model_id       TEXT    NOT NULL,
    label          TEXT    NOT NULL,
    adapter        TEXT    NOT NULL,
    upstream_model TEXT,
    status         TEXT    NOT NULL CHECK (status IN ('ok', 'refused', 'failed')),
    reason         TEXT,
    latency_s      REAL,
    -- price: what the panel cost at reserve time; credits: what was kept (0 when refunded)
    price          INTEGER NOT NULL DEFAULT 0,
    credits        INTEGER NOT NULL DEFAULT 0,
    width          INTEGER,
    height         INTEGER,
    image_bytes    INTEGER,
    image_sha256   TEXT,
    params         TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (comparison_id, idx)
) WITHOUT ROWID;

CREATE INDEX panels_by_model ON panels (model_id);
