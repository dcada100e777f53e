-- 0002 (PostgreSQL): every comparison and each of its panels, as SQLite's 0002. The stores that
-- read and write these on PostgreSQL come next; `splitshot db migrate-to-postgres` fills them.

CREATE TABLE comparisons (
    id            text        PRIMARY KEY,
    guild_id      bigint      NOT NULL,
    channel_id    bigint,
    message_id    bigint      UNIQUE,
    user_id       bigint      NOT NULL,
    prompt        text        NOT NULL,
    use_case      text        NOT NULL,
    aspect        text        NOT NULL,
    quality       text        NOT NULL,
    blind         boolean     NOT NULL DEFAULT false,
    demo          boolean     NOT NULL DEFAULT false,
    charged       bigint      NOT NULL DEFAULT 0,
    refunded      bigint      NOT NULL DEFAULT 0,
    image_format  text,
    image_bytes   bigint,
    image_sha256  text,
    state         text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'deleted')),
    vote_deadline timestamptz,
    closed_at     timestamptz,
    created_at    timestamptz NOT NULL
);

CREATE INDEX comparisons_due ON comparisons (vote_deadline) WHERE state = 'open';
CREATE INDEX comparisons_by_guild ON comparisons (guild_id, use_case, created_at);

CREATE TABLE panels (
    comparison_id  text             NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    idx            smallint         NOT NULL CHECK (idx BETWEEN 0 AND 3),
    letter         text             NOT NULL,
    model_id       text             NOT NULL,
    label          text             NOT NULL,
    adapter        text             NOT NULL,
    upstream_model text,
    status         text             NOT NULL CHECK (status IN ('ok', 'refused', 'failed')),
    reason         text,
    latency_s      double precision,
    -- price: what the panel cost at reserve time; credits: what was kept (0 when refunded)
    price          bigint           NOT NULL DEFAULT 0,
    credits        bigint           NOT NULL DEFAULT 0,
    width          integer,
    height         integer,
    image_bytes    bigint,
    image_sha256   text,
    params         text             NOT NULL DEFAULT '{}',
    PRIMARY KEY (comparison_id, idx)
);

CREATE INDEX panels_by_model ON panels (model_id);
