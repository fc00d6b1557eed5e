-- The schema epoch (bumped by every definition change, so every server notices), record
-- history, and tags shared by all entities.

CREATE TABLE schema_state (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL
);
INSERT INTO schema_state (id, epoch) VALUES (1, 1);

CREATE TABLE record_history (
    id         BIGSERIAL PRIMARY KEY,
    entity     TEXT COLLATE "C" NOT NULL,
    record_id  TEXT COLLATE "C" NOT NULL,
    action     TEXT NOT NULL,
    actor      TEXT,
    at         TIMESTAMPTZ NOT NULL,
    changes    TEXT NOT NULL
);
CREATE INDEX record_history_record ON record_history (entity, record_id, id);

CREATE TABLE tags (
    name        TEXT NOT NULL PRIMARY KEY,
    color       TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE record_tags (
    entity     TEXT COLLATE "C" NOT NULL,
    record_id  TEXT COLLATE "C" NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (entity, record_id, tag)
);
CREATE INDEX record_tags_tag ON record_tags (tag, entity, record_id);
