-- 0008 (PostgreSQL): what the OCR read back from each measured panel, as SQLite's 0008.

CREATE TABLE panel_text (
    comparison_id text             NOT NULL,
    idx           smallint         NOT NULL,
    requested     text             NOT NULL,  -- JSON list of the quoted strings measured
    read          text             NOT NULL,  -- JSON list of what was read for each
    score         double precision NOT NULL CHECK (score BETWEEN 0 AND 1),
    exact         boolean          NOT NULL,
    truncated     boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (comparison_id, idx),
    FOREIGN KEY (comparison_id, idx) REFERENCES panels (comparison_id, idx) ON DELETE CASCADE
);
