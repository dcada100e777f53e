-- 0008: what the OCR read back from each panel when the prompt quoted text, so the
-- leaderboard can show each model's mean measured text accuracy from the server's own history.
-- Only measured panels get a row: no quoted text, no image, or no OCR installed means none.

CREATE TABLE panel_text (
    comparison_id TEXT    NOT NULL,
    idx           INTEGER NOT NULL,
    requested     TEXT    NOT NULL,  -- JSON list of the quoted strings measured
    read          TEXT    NOT NULL,  -- JSON list of what was read for each
    score         REAL    NOT NULL CHECK (score BETWEEN 0 AND 1),
    exact         INTEGER NOT NULL CHECK (exact IN (0, 1)),
    truncated     INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1)),
    PRIMARY KEY (comparison_id, idx),
    FOREIGN KEY (comparison_id, idx) REFERENCES panels (comparison_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;
