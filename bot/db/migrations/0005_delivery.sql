-- 0005: a comparison is recorded with its charge, before it is posted.
-- delivery: 'pending' (settled and stored, not yet shown), 'posted' (the member has it) or
-- 'failed' (it never reached the member and its charge was given back).
-- kind and parent_id: follow-ups (variants, reroll, swap, edit) are comparisons with a parent.

ALTER TABLE comparisons ADD COLUMN delivery TEXT NOT NULL DEFAULT 'posted'
    CHECK (delivery IN ('pending', 'posted', 'failed'));
ALTER TABLE comparisons ADD COLUMN kind TEXT NOT NULL DEFAULT 'compare';
ALTER TABLE comparisons ADD COLUMN parent_id TEXT;
ALTER TABLE comparisons ADD COLUMN hold_id INTEGER;
ALTER TABLE comparisons ADD COLUMN posted_at TEXT;

CREATE INDEX comparisons_pending ON comparisons (created_at) WHERE delivery = 'pending';
CREATE INDEX comparisons_by_parent ON comparisons (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX comparisons_by_user ON comparisons (guild_id, user_id, created_at);

-- Each delivered panel's image, so follow-ups (variants, reroll, swap) still work after a
-- restart and weeks later without depending on Discord's attachment URLs, which expire.
CREATE TABLE panel_images (
    comparison_id TEXT    NOT NULL,
    idx           INTEGER NOT NULL,
    mime_type     TEXT    NOT NULL,
    data          BLOB    NOT NULL,
    PRIMARY KEY (comparison_id, idx),
    FOREIGN KEY (comparison_id, idx) REFERENCES panels (comparison_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;

-- A reroll or swap shows its parent's other panels again: marked, so their old generation
-- times are not counted twice in the leaderboard's medians.
ALTER TABLE panels ADD COLUMN reused INTEGER NOT NULL DEFAULT 0 CHECK (reused IN (0, 1));

-- Only posted comparisons are rated: attaching the message changes what the board reads.
CREATE TRIGGER board_on_comparison_delivery AFTER UPDATE OF delivery, kind ON comparisons
BEGIN
    INSERT INTO board_generations (guild_id, generation) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;
