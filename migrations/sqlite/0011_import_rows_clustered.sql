-- An import's row outcomes are kept in the order of their key, (import, row), which is the
-- order they are written and read in. As a rowid table SQLite kept them twice: the rows, and
-- an index of the key beside them, a third of an import's outcome bytes and one more b-tree
-- insert for every spreadsheet row. Without a rowid the key is the table.

CREATE TABLE import_rows_clustered (
    import_id  TEXT NOT NULL,
    row        INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    record_id  TEXT,
    version    INTEGER,
    before     TEXT,
    errors     TEXT,
    cells      TEXT,
    PRIMARY KEY (import_id, row)
) STRICT, WITHOUT ROWID;

INSERT INTO import_rows_clustered (import_id, row, outcome, record_id, version, before, errors, cells)
    SELECT import_id, row, outcome, record_id, version, before, errors, cells FROM import_rows;

DROP TABLE import_rows;

ALTER TABLE import_rows_clustered RENAME TO import_rows;
