-- Global search: one row per (record, searchable field) with the field's text, the record's
-- title and placement (so the caller's read scope applies without a join), and its tokens as
-- a tsvector('simple') with a GIN index (tokenized in Rust: CJK bigrams, words, phone digits;
-- see search/tokens.rs). Outbound webhooks: endpoints, the deliveries queued in the same
-- transaction as the change, and every attempt made.

CREATE TABLE search_rows (
    id          BIGSERIAL PRIMARY KEY,
    entity      TEXT NOT NULL,
    record_id   TEXT COLLATE "C" NOT NULL,
    field       TEXT NOT NULL,
    is_title    BOOLEAN NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    owner       TEXT COLLATE "C",
    department  TEXT COLLATE "C",
    tokens      TSVECTOR NOT NULL
);
CREATE UNIQUE INDEX search_rows_record ON search_rows (entity, record_id, field);
CREATE INDEX search_rows_tokens ON search_rows USING GIN (tokens);

CREATE TABLE webhooks (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    url              TEXT NOT NULL,
    description      TEXT NOT NULL,
    entities         TEXT NOT NULL,
    events           TEXT NOT NULL,
    fields           TEXT NOT NULL,
    active           BOOLEAN NOT NULL,
    secret           TEXT NOT NULL,
    previous_secret  TEXT,
    previous_until   TIMESTAMPTZ,
    disabled_reason  TEXT,
    created_by       TEXT COLLATE "C" NOT NULL,
    version          BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    webhook_id    TEXT COLLATE "C" NOT NULL,
    event_type    TEXT NOT NULL,
    entity        TEXT,
    record_id     TEXT COLLATE "C",
    body          TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      BIGINT NOT NULL,
    next_attempt  TIMESTAMPTZ,
    last_status   BIGINT,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

CREATE TABLE webhook_attempts (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    delivery_id   TEXT COLLATE "C" NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    status        BIGINT,
    duration_ms   BIGINT NOT NULL,
    response      TEXT,
    error         TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, at);
