-- 0005 (PostgreSQL): a comparison is recorded with its charge, before it is posted; follow-ups
-- have a kind and a parent; each delivered panel's image is kept. As SQLite's 0005.

ALTER TABLE comparisons ADD COLUMN delivery text NOT NULL DEFAULT 'posted'
    CHECK (delivery IN ('pending', 'posted', 'failed'));
ALTER TABLE comparisons ADD COLUMN kind text NOT NULL DEFAULT 'compare';
ALTER TABLE comparisons ADD COLUMN parent_id text;
ALTER TABLE comparisons ADD COLUMN hold_id bigint;
ALTER TABLE comparisons ADD COLUMN posted_at timestamptz;

CREATE INDEX comparisons_pending ON comparisons (created_at) WHERE delivery = 'pending';
CREATE INDEX comparisons_by_parent ON comparisons (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX comparisons_by_user ON comparisons (guild_id, user_id, created_at);

CREATE TABLE panel_images (
    comparison_id text     NOT NULL,
    idx           smallint NOT NULL,
    mime_type     text     NOT NULL,
    data          bytea    NOT NULL,
    PRIMARY KEY (comparison_id, idx),
    FOREIGN KEY (comparison_id, idx) REFERENCES panels (comparison_id, idx) ON DELETE CASCADE
);

-- A reroll or swap shows its parent's other panels again: their old times are not counted twice.
ALTER TABLE panels ADD COLUMN reused boolean NOT NULL DEFAULT false;

-- Only posted comparisons are rated: attaching the message changes what the board reads.
CREATE TRIGGER board_on_comparison_delivery AFTER UPDATE OF delivery, kind ON comparisons
FOR EACH ROW EXECUTE FUNCTION board_on_comparison();
