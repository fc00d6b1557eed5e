-- The schema epoch (bumped by every definition change, so every server notices), record
-- history, and tags shared by all entities.

CREATE TABLE schema_state (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL
) STRICT;
INSERT INTO schema_state (id, epoch) VALUES (1, 1);

CREATE TABLE record_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    entity     TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor      TEXT,
    at         TEXT NOT NULL,
    changes    TEXT NOT NULL
) STRICT;
CREATE INDEX record_history_record ON record_history (entity, record_id, id);

CREATE TABLE tags (
    name        TEXT NOT NULL PRIMARY KEY,
    color       TEXT,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE record_tags (
    entity     TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (entity, record_id, tag)
) STRICT;
CREATE INDEX record_tags_tag ON record_tags (tag, entity, record_id);
