-- Forms and views (presentation as data, versioned like entity definitions), and the template
-- packages installed, with what each installed (the baseline an upgrade compares against).

CREATE TABLE forms (
    entity      TEXT NOT NULL,
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (entity, name)
);

CREATE TABLE views (
    id          TEXT NOT NULL PRIMARY KEY,
    entity      TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- '' for a shared view, else the id of the user whose personal view it is.
    scope       TEXT NOT NULL,
    document    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_by  TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (entity, scope, name)
);
CREATE INDEX views_scope ON views (scope, entity);

-- Every saved version of a form ('form', 'entity/name') or view ('view', id).
CREATE TABLE layout_versions (
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    document    TEXT NOT NULL,
    saved_by    TEXT,
    saved_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, key, version)
);

CREATE TABLE installed_templates (
    name          TEXT NOT NULL PRIMARY KEY,
    version       TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    sample_data   BOOLEAN NOT NULL,
    installed_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- What a template installed, item by item, as it installed it.
CREATE TABLE template_items (
    template   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    baseline   TEXT NOT NULL,
    PRIMARY KEY (template, kind, key)
);

-- Addresses that asked to receive no more campaign mail.
CREATE TABLE unsubscribes (
    email       TEXT NOT NULL PRIMARY KEY,
    campaign    TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

-- Server-wide secrets (the key that signs unsubscribe links), made on first start.
CREATE TABLE secrets (
    name   TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
);
