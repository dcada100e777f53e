-- 0007 (PostgreSQL): the operator's provider spend per model of each comparison, as SQLite's
-- 0007. The day is the UTC date the comparison started.

CREATE TABLE provider_spend (
    comparison_id text        NOT NULL,
    model_id      text        NOT NULL,
    guild_id      bigint      NOT NULL,
    day           date        NOT NULL,
    cost          bigint      NOT NULL CHECK (cost >= 0),
    state         text        NOT NULL DEFAULT 'running'
                  CHECK (state IN ('running', 'spent', 'released')),
    created_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    PRIMARY KEY (comparison_id, model_id)
);

CREATE INDEX provider_spend_by_day ON provider_spend (day, guild_id);
CREATE INDEX provider_spend_running ON provider_spend (created_at) WHERE state = 'running';
