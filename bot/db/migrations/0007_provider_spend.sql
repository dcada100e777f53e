-- 0007: the operator's provider spend, one row per model of each comparison, counted in the
-- catalog's credits per image (what the image costs the operator, whatever a server charges).
-- 'running' while the models work, then 'spent' (delivered) or 'released' (refused, failed,
-- never delivered). The day is the UTC date the comparison started.

CREATE TABLE provider_spend (
    comparison_id TEXT    NOT NULL,
    model_id      TEXT    NOT NULL,
    guild_id      INTEGER NOT NULL,
    day           TEXT    NOT NULL,
    cost          INTEGER NOT NULL CHECK (typeof(cost) = 'integer' AND cost >= 0),
    state         TEXT    NOT NULL DEFAULT 'running'
                  CHECK (state IN ('running', 'spent', 'released')),
    created_at    TEXT    NOT NULL,
    closed_at     TEXT,
    PRIMARY KEY (comparison_id, model_id)
) WITHOUT ROWID;

CREATE INDEX provider_spend_by_day ON provider_spend (day, guild_id);
CREATE INDEX provider_spend_running ON provider_spend (created_at) WHERE state = 'running';
