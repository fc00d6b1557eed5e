-- The auth epoch: a counter every change to who may do what moves on (a session ended, a
-- token revoked, a user changed or deactivated, their roles or department changed, a role's
-- permissions edited). Servers cache a token's access while the epoch they read with it is
-- still the current one, so a change holds on the next request on every server sharing the
-- database. Triggers move it, so no writer (the API, the CLI, a future one) can forget to.
-- A new session or token cannot make a cached answer wrong, so inserts there do not count.
ALTER TABLE schema_state ADD COLUMN auth_epoch BIGINT NOT NULL DEFAULT 1;

CREATE FUNCTION tessera_bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE schema_state SET auth_epoch = auth_epoch + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER auth_epoch_users AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_auth_epoch();
CREATE TRIGGER auth_epoch_user_roles AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_auth_epoch();
CREATE TRIGGER auth_epoch_roles AFTER UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_auth_epoch();
CREATE TRIGGER auth_epoch_departments AFTER UPDATE OR DELETE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_auth_epoch();
CREATE TRIGGER auth_epoch_sessions AFTER UPDATE OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_auth_epoch();
CREATE TRIGGER auth_epoch_api_tokens AFTER UPDATE OR DELETE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_auth_epoch();
