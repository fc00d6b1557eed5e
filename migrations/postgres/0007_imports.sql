-- Imports: one row per import (its parameters, the uploaded file while a job needs it, its
-- progress and report), and one row per spreadsheet row it created, updated or refused, with
-- what undo needs (the record's version after the import, and the values before an update).

CREATE TABLE imports (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    entity      TEXT NOT NULL,
    actor       TEXT COLLATE "C",
    status      TEXT NOT NULL,
    params      TEXT NOT NULL,
    file        TEXT,
    rows        BIGINT NOT NULL,
    done_row    BIGINT NOT NULL,
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    failed      BIGINT NOT NULL,
    report      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE import_rows (
    import_id  TEXT COLLATE "C" NOT NULL,
    row        BIGINT NOT NULL,
    outcome    TEXT NOT NULL,
    record_id  TEXT COLLATE "C",
    version    BIGINT,
    before     TEXT,
    errors     TEXT,
    cells      TEXT,
    PRIMARY KEY (import_id, row)
);
