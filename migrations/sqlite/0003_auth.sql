-- Departments (a tree, with materialized paths), users, roles, sessions, API tokens, login
-- throttling and the one-time setup token. Tokens are stored only as SHA-256 hashes.

CREATE TABLE departments (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    parent_id   TEXT REFERENCES departments (id),
    path        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX departments_parent ON departments (parent_id);
CREATE INDEX departments_path ON departments (path);

CREATE TABLE users (
    id             TEXT NOT NULL PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    active         INTEGER NOT NULL,
    department_id  TEXT REFERENCES departments (id),
    language       TEXT NOT NULL,
    time_zone      TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX users_department ON users (department_id);

CREATE TABLE roles (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    description  TEXT NOT NULL,
    builtin      INTEGER NOT NULL,
    permissions  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE user_roles (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id  TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
) STRICT;
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE sessions (
    token_hash    TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT,
    last_used_at  TEXT
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE login_throttle (
    key           TEXT NOT NULL PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  TEXT NOT NULL
) STRICT;

CREATE TABLE setup_tokens (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    expires_at  TEXT NOT NULL
) STRICT;
