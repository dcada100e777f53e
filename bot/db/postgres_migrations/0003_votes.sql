-- 0003 (PostgreSQL): votes from reactions and the record of each closed vote, as SQLite's 0003.

CREATE TABLE votes (
    comparison_id text        NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    user_id       bigint      NOT NULL,
    choice        text        NOT NULL CHECK (choice IN ('A', 'B', 'C', 'D', 'tie', 'bad')),
    emoji         text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (comparison_id, user_id)
);

-- Written in the same transaction that closes the comparison; announced_at stays NULL until
-- the bot has edited the message, so a restarted bot announces it.
CREATE TABLE vote_closures (
    comparison_id text        PRIMARY KEY REFERENCES comparisons (id) ON DELETE CASCADE,
    closed_by     bigint,  -- NULL: the deadline closed it
    winner        text        CHECK (winner IN ('A', 'B', 'C', 'D', 'tie', 'bad')),
    counts        text        NOT NULL,  -- JSON object, option -> votes
    closed_at     timestamptz NOT NULL,
    announced_at  timestamptz
);

CREATE INDEX vote_closures_unannounced ON vote_closures (closed_at) WHERE announced_at IS NULL;
