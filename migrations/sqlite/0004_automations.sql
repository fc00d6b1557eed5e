-- Automations (scripts and their triggers), their run log, the durable job queue, mail
-- templates, the mail outbox and the system settings. JSON documents are kept as text.

CREATE TABLE automations (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    entity       TEXT,
    trigger_doc  TEXT NOT NULL,
    script       TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    run_as       TEXT NOT NULL REFERENCES users (id),
    created_by   TEXT,
    version      INTEGER NOT NULL,
    enabled_at   TEXT NOT NULL,
    last_slot    TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE INDEX automations_trigger ON automations (trigger_kind, entity);

CREATE TABLE jobs (
    id                TEXT NOT NULL PRIMARY KEY,
    kind              TEXT NOT NULL,
    unique_key        TEXT UNIQUE,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    run_at            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    last_error        TEXT,
    created_at        TEXT NOT NULL,
    finished_at       TEXT
) STRICT;
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE automation_runs (
    id             TEXT NOT NULL PRIMARY KEY,
    automation_id  TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    trigger_doc    TEXT NOT NULL,
    slot           TEXT,
    status         TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT NOT NULL,
    log            TEXT NOT NULL,
    error          TEXT,
    error_line     INTEGER,
    touched        TEXT NOT NULL,
    result         TEXT
) STRICT;
CREATE INDEX automation_runs_automation ON automation_runs (automation_id, started_at);
CREATE INDEX automation_runs_started ON automation_runs (started_at);

CREATE TABLE mail_templates (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    variants     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE outbox (
    id          TEXT NOT NULL PRIMARY KEY,
    template    TEXT,
    recipients  TEXT NOT NULL,
    sender      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    run_id      TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
) STRICT;
CREATE INDEX outbox_created ON outbox (created_at);

CREATE TABLE settings (
    key         TEXT NOT NULL PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
