-- 0012: panel images move to an ordinary (rowid) table.
--
-- 0005 made panel_images WITHOUT ROWID. That layout keeps each whole row, blob included, in
-- the primary key's b-tree, and SQLite compares keys by loading the whole cell: every insert
-- read several stored images (megabytes each, page by page) while searching for its place,
-- and more as the table grew. A 2 × 2K comparison's record cost ~95 ms of CPU, ~40 ms here,
-- all of it inside the settle transaction that every other ledger write waits behind.
-- The images are copied once; a large database takes a while to open the first time.

CREATE TABLE panel_images_new (
    comparison_id TEXT    NOT NULL,
    idx           INTEGER NOT NULL,
    mime_type     TEXT    NOT NULL,
    data          BLOB    NOT NULL,
    PRIMARY KEY (comparison_id, idx),
    FOREIGN KEY (comparison_id, idx) REFERENCES panels (comparison_id, idx) ON DELETE CASCADE
);

INSERT INTO panel_images_new (comparison_id, idx, mime_type, data)
    SELECT comparison_id, idx, mime_type, data FROM panel_images ORDER BY comparison_id, idx;

DROP TABLE panel_images;

ALTER TABLE panel_images_new RENAME TO panel_images;
