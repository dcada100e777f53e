-- 0003: votes from reactions, and the record of each closed vote.
-- A comparison's open/closed state and deadline live on `comparisons` (0002).

-- One active vote per member per comparison; `emoji` is the exact reaction that cast it, so
-- removing that reaction (and no other) withdraws the vote.
CREATE TABLE votes (
    comparison_id TEXT    NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL,
    choice        TEXT    NOT NULL CHECK (choice IN ('A', 'B', 'C', 'D', 'tie', 'bad')),
    emoji         TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (comparison_id, user_id)
) WITHOUT ROWID;

-- Written in the same transaction that closes the comparison. announced_at stays NULL until
-- the bot has edited the message, so a bot that stops in between announces it after a restart.
CREATE TABLE vote_closures (
    comparison_id TEXT    PRIMARY KEY REFERENCES comparisons (id) ON DELETE CASCADE,
    closed_by     INTEGER,  -- NULL: the deadline closed it
    winner        TEXT    CHECK (winner IN ('A', 'B', 'C', 'D', 'tie', 'bad')),  -- NULL: no votes
    counts        TEXT    NOT NULL,  -- JSON object, option -> votes
    closed_at     TEXT    NOT NULL,
    announced_at  TEXT
);

CREATE INDEX vote_closures_unannounced ON vote_closures (closed_at) WHERE announced_at IS NULL;
