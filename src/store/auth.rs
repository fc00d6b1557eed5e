//! System tables of users and their access: departments, users, roles, sessions, API tokens,
//! login throttling, the one-time setup token.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, opt_text, opt_time, text, time};
use super::{ColumnType, Executor, Row, Sql, SqlValue, Tx};
use crate::error::{Error, Result};

// ---- departments ------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct DepartmentRow {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub path: String,
    pub created_at: DateTime<Utc>,
}

const DEPARTMENT_COLUMNS: [ColumnType; 5] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Datetime,
];

fn department(row: &Row) -> DepartmentRow {
    DepartmentRow {
        id: text(&row[0]),
        name: text(&row[1]),
        parent_id: opt_text(&row[2]),
        path: text(&row[3]),
        created_at: time(&row[4]),
    }
}

pub async fn departments(ex: &mut impl Executor) -> Result<Vec<DepartmentRow>> {
    let rows = ex
        .fetch_all(
            &Sql::new(
                "SELECT id, name, parent_id, path, created_at FROM departments ORDER BY path",
            ),
            &DEPARTMENT_COLUMNS,
        )
        .await?;
    Ok(rows.iter().map(department).collect())
}

pub async fn department_by_id(ex: &mut impl Executor, id: &str) -> Result<Option<DepartmentRow>> {
    let sql =
        Sql::new("SELECT id, name, parent_id, path, created_at FROM departments WHERE id = $1")
            .bind(id);
    let rows = ex.fetch_all(&sql, &DEPARTMENT_COLUMNS).await?;
    Ok(rows.first().map(department))
}

pub async fn insert_department(tx: &mut Tx, row: &DepartmentRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO departments (id, name, parent_id, path, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(SqlValue::from(row.parent_id.clone()))
    .bind(row.path.clone())
    .bind(row.created_at);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn rename_department(
    tx: &mut Tx,
    id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new("UPDATE departments SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now)
        .bind(id);
    tx.execute(&sql).await?;
    Ok(())
}

/// Moves a department (and everything below it) under a new parent.
pub async fn move_department(
    tx: &mut Tx,
    id: &str,
    parent_id: Option<&str>,
    old_path: &str,
    new_path: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new("UPDATE departments SET parent_id = $1, updated_at = $2 WHERE id = $3")
        .bind(SqlValue::from(parent_id.map(str::to_owned)))
        .bind(now)
        .bind(id);
    tx.execute(&sql).await?;
    let sql = Sql::new(
        "UPDATE departments SET path = $1 || substr(path, CAST($2 AS INTEGER)) WHERE path LIKE $3",
    )
    .bind(new_path)
    .bind(old_path.chars().count() as i64 + 1)
    .bind(format!("{old_path}%"));
    tx.execute(&sql).await?;
    Ok(())
}

/// How many sub-departments and users a department has.
pub async fn department_contents(ex: &mut impl Executor, id: &str) -> Result<(i64, i64)> {
    let sql = Sql::new(
        "SELECT (SELECT COUNT(*) FROM departments WHERE parent_id = $1), \
         (SELECT COUNT(*) FROM users WHERE department_id = $1)",
    )
    .bind(id);
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Integer, ColumnType::Integer])
        .await?;
    let row = rows.first().ok_or_else(|| Error::internal("no count"))?;
    Ok((
        row[0].as_i64().unwrap_or_default(),
        row[1].as_i64().unwrap_or_default(),
    ))
}

pub async fn delete_department(tx: &mut Tx, id: &str) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM departments WHERE id = $1").bind(id))
        .await?;
    Ok(())
}

// ---- users ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub active: bool,
    pub department_id: Option<String>,
    pub department_path: Option<String>,
    pub language: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

const USER_SELECT: &str = "SELECT u.id, u.email, u.display_name, u.password_hash, u.active, \
     u.department_id, d.path, u.language, u.time_zone, u.created_at \
     FROM users u LEFT JOIN departments d ON d.id = u.department_id";

const USER_COLUMNS: [ColumnType; 10] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Boolean,
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Datetime,
];

fn user(row: &Row) -> UserRow {
    UserRow {
        id: text(&row[0]),
        email: text(&row[1]),
        display_name: text(&row[2]),
        password_hash: text(&row[3]),
        active: matches!(row[4], SqlValue::Boolean(true)),
        department_id: opt_text(&row[5]),
        department_path: opt_text(&row[6]),
        language: text(&row[7]),
        time_zone: text(&row[8]),
        created_at: time(&row[9]),
    }
}

pub async fn user_count(ex: &mut impl Executor) -> Result<i64> {
    let rows = ex
        .fetch_all(
            &Sql::new("SELECT COUNT(*) FROM users"),
            &[ColumnType::Integer],
        )
        .await?;
    Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default())
}

pub async fn users(ex: &mut impl Executor) -> Result<Vec<UserRow>> {
    let sql = Sql::new(format!("{USER_SELECT} ORDER BY u.email"));
    let rows = ex.fetch_all(&sql, &USER_COLUMNS).await?;
    Ok(rows.iter().map(user).collect())
}

/// Active users holding a role (by role name), by email.
pub async fn active_users_with_role(ex: &mut impl Executor, role: &str) -> Result<Vec<UserRow>> {
    let sql = Sql::new(format!(
        "{USER_SELECT} WHERE u.active = {} AND u.id IN (SELECT ur.user_id FROM user_roles ur \
         JOIN roles r ON r.id = ur.role_id WHERE r.name = $1) ORDER BY u.email",
        ex.dialect().true_literal()
    ))
    .bind(role);
    let rows = ex.fetch_all(&sql, &USER_COLUMNS).await?;
    Ok(rows.iter().map(user).collect())
}

pub async fn user_by_id(ex: &mut impl Executor, id: &str) -> Result<Option<UserRow>> {
    let sql = Sql::new(format!("{USER_SELECT} WHERE u.id = $1")).bind(id);
    let rows = ex.fetch_all(&sql, &USER_COLUMNS).await?;
    Ok(rows.first().map(user))
}

pub async fn user_by_email(ex: &mut impl Executor, email: &str) -> Result<Option<UserRow>> {
    let sql = Sql::new(format!("{USER_SELECT} WHERE u.email = $1")).bind(email);
    let rows = ex.fetch_all(&sql, &USER_COLUMNS).await?;
    Ok(rows.first().map(user))
}

pub async fn insert_user(tx: &mut Tx, row: &UserRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO users (id, email, display_name, password_hash, active, department_id, \
         language, time_zone, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(row.id.clone())
    .bind(row.email.clone())
    .bind(row.display_name.clone())
    .bind(row.password_hash.clone())
    .bind(row.active)
    .bind(SqlValue::from(row.department_id.clone()))
    .bind(row.language.clone())
    .bind(row.time_zone.clone())
    .bind(row.created_at);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn update_user(tx: &mut Tx, row: &UserRow, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "UPDATE users SET email = $1, display_name = $2, password_hash = $3, active = $4, \
         department_id = $5, language = $6, time_zone = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(row.email.clone())
    .bind(row.display_name.clone())
    .bind(row.password_hash.clone())
    .bind(row.active)
    .bind(SqlValue::from(row.department_id.clone()))
    .bind(row.language.clone())
    .bind(row.time_zone.clone())
    .bind(now)
    .bind(row.id.clone());
    tx.execute(&sql).await?;
    Ok(())
}

// ---- roles ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RoleRow {
    pub id: String,
    pub name: String,
    pub label: Value,
    pub description: String,
    pub builtin: bool,
    pub permissions: Value,
}

const ROLE_COLUMNS: [ColumnType; 6] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Boolean,
    ColumnType::Text,
];

fn role(row: &Row) -> RoleRow {
    RoleRow {
        id: text(&row[0]),
        name: text(&row[1]),
        label: json(&row[2]),
        description: text(&row[3]),
        builtin: matches!(row[4], SqlValue::Boolean(true)),
        permissions: json(&row[5]),
    }
}

pub async fn roles(ex: &mut impl Executor) -> Result<Vec<RoleRow>> {
    let sql = Sql::new(
        "SELECT id, name, label, description, builtin, permissions FROM roles ORDER BY name",
    );
    let rows = ex.fetch_all(&sql, &ROLE_COLUMNS).await?;
    Ok(rows.iter().map(role).collect())
}

pub async fn role_by(ex: &mut impl Executor, id_or_name: &str) -> Result<Option<RoleRow>> {
    let sql = Sql::new(
        "SELECT id, name, label, description, builtin, permissions FROM roles \
         WHERE id = $1 OR name = $1",
    )
    .bind(id_or_name);
    let rows = ex.fetch_all(&sql, &ROLE_COLUMNS).await?;
    Ok(rows.first().map(role))
}

pub async fn save_role(tx: &mut Tx, row: &RoleRow, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO roles (id, name, label, description, builtin, permissions, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, label = excluded.label, \
         description = excluded.description, permissions = excluded.permissions, \
         updated_at = excluded.updated_at",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(row.label.to_string())
    .bind(row.description.clone())
    .bind(row.builtin)
    .bind(row.permissions.to_string())
    .bind(now);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn delete_role(tx: &mut Tx, id: &str) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM roles WHERE id = $1").bind(id))
        .await?;
    Ok(())
}

/// The roles of many users at once: `(user id, role name)`.
pub async fn role_names(ex: &mut impl Executor) -> Result<Vec<(String, String)>> {
    let sql = Sql::new(
        "SELECT ur.user_id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
         ORDER BY ur.user_id, r.name",
    );
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Id, ColumnType::Text])
        .await?;
    Ok(rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect())
}

/// The permission documents of one user's roles.
pub async fn permissions_of(ex: &mut impl Executor, user_id: &str) -> Result<Vec<(String, Value)>> {
    let sql = Sql::new(
        "SELECT r.name, r.permissions FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
         WHERE ur.user_id = $1 ORDER BY r.name",
    )
    .bind(user_id);
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Text, ColumnType::Text])
        .await?;
    Ok(rows.iter().map(|r| (text(&r[0]), json(&r[1]))).collect())
}

pub async fn set_user_roles(tx: &mut Tx, user_id: &str, role_ids: &[String]) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM user_roles WHERE user_id = $1").bind(user_id))
        .await?;
    for role in role_ids {
        let sql = Sql::new("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
            .bind(user_id)
            .bind(role.clone());
        tx.execute(&sql).await?;
    }
    Ok(())
}

// ---- sessions and tokens ----------------------------------------------------------------

pub async fn insert_session(
    tx: &mut Tx,
    token_hash: &str,
    user_id: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $3)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at);
    tx.execute(&sql).await?;
    Ok(())
}

/// A signed-in user, the permission documents of their roles (`(role name, permissions)`),
/// and when the session or token expires (`None`: never).
pub struct Signed {
    pub user: UserRow,
    pub roles: Vec<(String, Value)>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Columns of a sign-in lookup: the user's (as `USER_COLUMNS`), then one role per row, then
/// the expiry of the session or token (`expiry`, a column of the joined table).
fn signed_select(expiry: &str) -> String {
    format!(
        "SELECT u.id, u.email, u.display_name, u.password_hash, u.active, \
         u.department_id, d.path, u.language, u.time_zone, u.created_at, r.name, r.permissions, \
         {expiry} \
         FROM users u LEFT JOIN departments d ON d.id = u.department_id \
         LEFT JOIN user_roles ur ON ur.user_id = u.id LEFT JOIN roles r ON r.id = ur.role_id"
    )
}

fn signed(rows: &[Row]) -> Option<Signed> {
    let user = user(rows.first()?);
    let roles = rows
        .iter()
        .filter_map(|r| Some((r[10].as_str()?.to_owned(), json(&r[11]))))
        .collect();
    let expires_at = opt_time(&rows[0][12]);
    Some(Signed {
        user,
        roles,
        expires_at,
    })
}

fn signed_columns() -> Vec<ColumnType> {
    let mut columns = USER_COLUMNS.to_vec();
    columns.extend([ColumnType::Text, ColumnType::Text, ColumnType::Datetime]);
    columns
}

/// The schema epoch and the auth epoch (moved by triggers on every change to sessions,
/// tokens, users, their roles and departments), read together: one primary-key lookup.
pub async fn epochs(ex: &mut impl Executor) -> Result<(i64, i64)> {
    let sql = Sql::new("SELECT epoch, auth_epoch FROM schema_state WHERE id = 1");
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Integer, ColumnType::Integer])
        .await?;
    Ok(rows
        .first()
        .map(|r| {
            (
                r[0].as_i64().unwrap_or_default(),
                r[1].as_i64().unwrap_or_default(),
            )
        })
        .unwrap_or_default())
}

/// The active user behind a session that has not expired, with their roles.
pub async fn session_user(
    ex: &mut impl Executor,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Signed>> {
    let sql = Sql::new(format!(
        "{} JOIN sessions s ON s.user_id = u.id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active = $3",
        signed_select("s.expires_at")
    ))
    .bind(token_hash)
    .bind(now)
    .bind(true);
    let rows = ex.fetch_all(&sql, &signed_columns()).await?;
    Ok(signed(&rows))
}

pub async fn delete_session(tx: &mut Tx, token_hash: &str) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash))
        .await?;
    Ok(())
}

pub async fn delete_sessions_of(tx: &mut Tx, user_id: &str) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM sessions WHERE user_id = $1").bind(user_id))
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: [ColumnType; 7] = [
    ColumnType::Id,
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Datetime,
    ColumnType::Datetime,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn token(row: &Row) -> TokenRow {
    TokenRow {
        id: text(&row[0]),
        user_id: text(&row[1]),
        name: text(&row[2]),
        created_at: time(&row[3]),
        expires_at: opt_time(&row[4]),
        revoked_at: opt_time(&row[5]),
        last_used_at: opt_time(&row[6]),
    }
}

pub async fn insert_token(tx: &mut Tx, row: &TokenRow, token_hash: &str) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(row.id.clone())
    .bind(row.user_id.clone())
    .bind(row.name.clone())
    .bind(token_hash)
    .bind(row.created_at)
    .bind(
        row.expires_at
            .map_or(SqlValue::Null(ColumnType::Datetime), SqlValue::Datetime),
    );
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn tokens_of(ex: &mut impl Executor, user_id: &str) -> Result<Vec<TokenRow>> {
    let sql = Sql::new(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at, last_used_at \
         FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC",
    )
    .bind(user_id);
    let rows = ex.fetch_all(&sql, &TOKEN_COLUMNS).await?;
    Ok(rows.iter().map(token).collect())
}

pub async fn token_by_id(ex: &mut impl Executor, id: &str) -> Result<Option<TokenRow>> {
    let sql = Sql::new(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at, last_used_at \
         FROM api_tokens WHERE id = $1",
    )
    .bind(id);
    let rows = ex.fetch_all(&sql, &TOKEN_COLUMNS).await?;
    Ok(rows.first().map(token))
}

pub async fn revoke_token(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<()> {
    let sql =
        Sql::new("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id);
    tx.execute(&sql).await?;
    Ok(())
}

/// The active user behind an API token that is neither revoked nor expired, with their roles.
pub async fn token_user(
    ex: &mut impl Executor,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Signed>> {
    let sql = Sql::new(format!(
        "{} JOIN api_tokens t ON t.user_id = u.id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
         AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.active = $3",
        signed_select("t.expires_at")
    ))
    .bind(token_hash)
    .bind(now)
    .bind(true);
    let rows = ex.fetch_all(&sql, &signed_columns()).await?;
    Ok(signed(&rows))
}

// ---- login throttling and setup ---------------------------------------------------------

/// Failures counted for a key (an account or an address) since its window started.
pub async fn failures(ex: &mut impl Executor, key: &str) -> Result<Option<(i64, DateTime<Utc>)>> {
    let sql =
        Sql::new("SELECT failures, window_start FROM login_throttle WHERE key = $1").bind(key);
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Integer, ColumnType::Datetime])
        .await?;
    Ok(rows
        .first()
        .map(|r| (r[0].as_i64().unwrap_or_default(), time(&r[1]))))
}

/// Counts one failure; a window older than `window_start_after` starts again at one.
pub async fn record_failure(
    tx: &mut Tx,
    key: &str,
    now: DateTime<Utc>,
    window_start_after: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO login_throttle (key, failures, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN login_throttle.window_start > $3 THEN login_throttle.failures + 1 ELSE 1 END, \
         window_start = CASE WHEN login_throttle.window_start > $3 THEN login_throttle.window_start ELSE $2 END",
    )
    .bind(key)
    .bind(now)
    .bind(window_start_after);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn clear_failures(tx: &mut Tx, key: &str) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM login_throttle WHERE key = $1").bind(key))
        .await?;
    Ok(())
}

pub async fn insert_setup_token(
    tx: &mut Tx,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM setup_tokens")).await?;
    let sql = Sql::new("INSERT INTO setup_tokens (token_hash, expires_at) VALUES ($1, $2)")
        .bind(token_hash)
        .bind(expires_at);
    tx.execute(&sql).await?;
    Ok(())
}

/// Uses up the setup token, if it is the one and still valid.
pub async fn take_setup_token(tx: &mut Tx, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
    let sql = Sql::new("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
        .bind(token_hash)
        .bind(now);
    Ok(tx.execute(&sql).await? > 0)
}
