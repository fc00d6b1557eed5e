-- Global search: one row per (record, searchable field) with the field's text, the record's
-- title and placement (so the caller's read scope applies without a join), and its tokens in
-- an FTS5 table (tokenized in Rust: CJK bigrams, words, phone digits; see search/tokens.rs).
-- Outbound webhooks: endpoints, the deliveries queued in the same transaction as the change,
-- and every attempt made.

CREATE TABLE search_rows (
    id          INTEGER PRIMARY KEY,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    field       TEXT NOT NULL,
    is_title    INTEGER NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    owner       TEXT,
    department  TEXT
) STRICT;
CREATE UNIQUE INDEX search_rows_record ON search_rows (entity, record_id, field);

CREATE VIRTUAL TABLE search_fts USING fts5(tokens, content='', contentless_delete=1);

CREATE TABLE webhooks (
    id               TEXT NOT NULL PRIMARY KEY,
    url              TEXT NOT NULL,
    description      TEXT NOT NULL,
    entities         TEXT NOT NULL,
    events           TEXT NOT NULL,
    fields           TEXT NOT NULL,
    active           INTEGER NOT NULL,
    secret           TEXT NOT NULL,
    previous_secret  TEXT,
    previous_until   TEXT,
    disabled_reason  TEXT,
    created_by       TEXT NOT NULL,
    version          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    id            TEXT NOT NULL PRIMARY KEY,
    webhook_id    TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    entity        TEXT,
    record_id     TEXT,
    body          TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    next_attempt  TEXT,
    last_status   INTEGER,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    finished_at   TEXT
) STRICT;
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

CREATE TABLE webhook_attempts (
    id            TEXT NOT NULL PRIMARY KEY,
    delivery_id   TEXT NOT NULL,
    at            TEXT NOT NULL,
    status        INTEGER,
    duration_ms   INTEGER NOT NULL,
    response      TEXT,
    error         TEXT
) STRICT;
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, at);
