-- An import's uploaded file lives apart from its progress, which moves after every batch: an
-- update writes a new version of the whole row (the file's TOAST value is shared, but every
-- progress read loaded it). The SQLite migration says why it matters most there.

CREATE TABLE import_files (
    import_id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    file       TEXT NOT NULL
);

INSERT INTO import_files (import_id, file) SELECT id, file FROM imports WHERE file IS NOT NULL;

ALTER TABLE imports DROP COLUMN file;
