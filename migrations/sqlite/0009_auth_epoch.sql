-- The auth epoch: a counter every change to who may do what moves on (a session ended, a
-- token revoked, a user changed or deactivated, their roles or department changed, a role's
-- permissions edited). Servers cache a token's access while the epoch they read with it is
-- still the current one, so a change holds on the next request on every server sharing the
-- database. Triggers move it, so no writer (the API, the CLI, a future one) can forget to.
-- A new session or token cannot make a cached answer wrong, so inserts there do not count.
ALTER TABLE schema_state ADD COLUMN auth_epoch INTEGER NOT NULL DEFAULT 1;

CREATE TRIGGER auth_epoch_users_update AFTER UPDATE ON users
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_users_delete AFTER DELETE ON users
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_user_roles_insert AFTER INSERT ON user_roles
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_user_roles_update AFTER UPDATE ON user_roles
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_user_roles_delete AFTER DELETE ON user_roles
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_roles_update AFTER UPDATE ON roles
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_roles_delete AFTER DELETE ON roles
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_departments_update AFTER UPDATE ON departments
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_departments_delete AFTER DELETE ON departments
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_sessions_update AFTER UPDATE ON sessions
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_sessions_delete AFTER DELETE ON sessions
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_api_tokens_update AFTER UPDATE ON api_tokens
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_api_tokens_delete AFTER DELETE ON api_tokens
BEGIN UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1; END;
