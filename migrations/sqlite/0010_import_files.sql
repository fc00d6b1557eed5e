-- An import's uploaded file lives apart from its progress. SQLite writes a whole row again on
-- every update, overflow pages included, and an import's progress moves after every batch: with
-- the file in the same row, each batch copied the whole file (a million-row import ran at about
-- a thousand rows a second), and every progress read loaded it.

CREATE TABLE import_files (
    import_id  TEXT NOT NULL PRIMARY KEY,
    file       TEXT NOT NULL
) STRICT;

INSERT INTO import_files (import_id, file) SELECT id, file FROM imports WHERE file IS NOT NULL;

ALTER TABLE imports DROP COLUMN file;
