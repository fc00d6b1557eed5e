-- Entity definitions and their history, archived fields and entities, auto-number counters.
-- Definitions are JSON text (not JSONB) so the order of fields is kept.

CREATE TABLE entities (
    name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    definition  TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE entity_versions (
    entity      TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    changes     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (entity, version)
);

CREATE TABLE archived_fields (
    id           BIGSERIAL PRIMARY KEY,
    entity       TEXT COLLATE "C" NOT NULL,
    field        TEXT NOT NULL,
    definition   TEXT NOT NULL,
    storage      TEXT NOT NULL,
    is_join      BOOLEAN NOT NULL,
    value_count  BIGINT NOT NULL,
    archived_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX archived_fields_entity ON archived_fields (entity);

CREATE TABLE archived_entities (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    tables       TEXT NOT NULL,
    archived_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE autonumber_counters (
    entity      TEXT COLLATE "C" NOT NULL,
    field       TEXT COLLATE "C" NOT NULL,
    next_value  BIGINT NOT NULL,
    PRIMARY KEY (entity, field)
);
