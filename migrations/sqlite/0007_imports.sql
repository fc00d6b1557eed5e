-- Imports: one row per import (its parameters, the uploaded file while a job needs it, its
-- progress and report), and one row per spreadsheet row it created, updated or refused, with
-- what undo needs (the record's version after the import, and the values before an update).

CREATE TABLE imports (
    id          TEXT NOT NULL PRIMARY KEY,
    entity      TEXT NOT NULL,
    actor       TEXT,
    status      TEXT NOT NULL,
    params      TEXT NOT NULL,
    file        TEXT,
    rows        INTEGER NOT NULL,
    done_row    INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    report      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE import_rows (
    import_id  TEXT NOT NULL,
    row        INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    record_id  TEXT,
    version    INTEGER,
    before     TEXT,
    errors     TEXT,
    cells      TEXT,
    PRIMARY KEY (import_id, row)
) STRICT;
