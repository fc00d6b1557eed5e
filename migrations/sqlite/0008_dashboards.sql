-- Dashboards: cards of report queries drawn as charts, as versioned documents (their versions
-- go to layout_versions with kind 'dashboard'), shared or personal.
CREATE TABLE dashboards (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    -- '' for a shared dashboard, else the id of the user whose personal dashboard it is.
    scope       TEXT NOT NULL,
    document    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_by  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (scope, name)
) STRICT;
