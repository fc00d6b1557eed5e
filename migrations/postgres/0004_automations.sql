-- Automations (scripts and their triggers), their run log, the durable job queue, mail
-- templates, the mail outbox and the system settings. JSON documents are kept as text.

CREATE TABLE automations (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    entity       TEXT,
    trigger_doc  TEXT NOT NULL,
    script       TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    run_as       TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    created_by   TEXT COLLATE "C",
    version      BIGINT NOT NULL,
    enabled_at   TIMESTAMPTZ NOT NULL,
    last_slot    TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX automations_trigger ON automations (trigger_kind, entity);

CREATE TABLE jobs (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind              TEXT NOT NULL,
    unique_key        TEXT COLLATE "C" UNIQUE,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    run_at            TIMESTAMPTZ NOT NULL,
    attempts          BIGINT NOT NULL,
    max_attempts      BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE automation_runs (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    automation_id  TEXT COLLATE "C" NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    trigger_doc    TEXT NOT NULL,
    slot           TIMESTAMPTZ,
    status         TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ NOT NULL,
    log            TEXT NOT NULL,
    error          TEXT,
    error_line     BIGINT,
    touched        TEXT NOT NULL,
    result         TEXT
);
CREATE INDEX automation_runs_automation ON automation_runs (automation_id, started_at);
CREATE INDEX automation_runs_started ON automation_runs (started_at);

CREATE TABLE mail_templates (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    variants     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    template    TEXT,
    recipients  TEXT NOT NULL,
    sender      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    last_error  TEXT,
    run_id      TEXT COLLATE "C",
    created_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ
);
CREATE INDEX outbox_created ON outbox (created_at);

CREATE TABLE settings (
    key         TEXT NOT NULL PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
