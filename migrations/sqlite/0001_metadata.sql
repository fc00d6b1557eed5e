-- Entity definitions and their history, archived fields and entities, auto-number counters.
-- Definitions are JSON text (not JSONB on PostgreSQL) so the order of fields is kept.

CREATE TABLE entities (
    name        TEXT NOT NULL PRIMARY KEY,
    definition  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE entity_versions (
    entity      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    changes     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (entity, version)
) STRICT;

CREATE TABLE archived_fields (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    entity       TEXT NOT NULL,
    field        TEXT NOT NULL,
    definition   TEXT NOT NULL,
    storage      TEXT NOT NULL,
    is_join      INTEGER NOT NULL,
    value_count  INTEGER NOT NULL,
    archived_at  TEXT NOT NULL
) STRICT;
CREATE INDEX archived_fields_entity ON archived_fields (entity);

CREATE TABLE archived_entities (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    tables       TEXT NOT NULL,
    archived_at  TEXT NOT NULL
) STRICT;

CREATE TABLE autonumber_counters (
    entity      TEXT NOT NULL,
    field       TEXT NOT NULL,
    next_value  INTEGER NOT NULL,
    PRIMARY KEY (entity, field)
) STRICT;
