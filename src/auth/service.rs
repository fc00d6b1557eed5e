//! The auth service: signing in and out, resolving a bearer token to an [`Access`], and the
//! administration of users, departments, roles and API tokens.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::access::{Access, Actor, Department};
use super::permissions::{Granted, Permissions, Special};
use super::roles::builtin_roles;
use super::secrets::{
    API_TOKEN_PREFIX, SESSION_PREFIX, decoy_hash, hash_password, new_token, token_hash,
    verify_password,
};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::auth::{self as store, DepartmentRow, RoleRow, TokenRow, UserRow};
use crate::store::value::format_datetime;

/// How long a sign-in lasts.
pub const SESSION_DAYS: i64 = 14;
/// Failed sign-ins allowed per account within the window…
pub const MAX_FAILURES: i64 = 5;
/// …and per address (higher: an office behind one address shares it).
pub const MAX_ADDRESS_FAILURES: i64 = 20;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
pub const LANGUAGES: &[&str] = &["en", "zh-CN"];
const MIN_PASSWORD: usize = 8;

fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

// ---- who is calling ---------------------------------------------------------------------

/// The access of the user behind a session or API token, or `None` when it is unknown,
/// expired, revoked or its user is deactivated. Answers are cached while the auth epoch they
/// were read under holds (see [`crate::auth::cache`]): a revocation or a deactivation holds
/// on the next request on every server sharing the database.
pub async fn authenticate(ctx: &Context, token: &str) -> Result<Option<Access>> {
    let hash = token_hash(token);
    let now = Utc::now();
    let mut db = &ctx.db;
    let (schema_epoch, auth_epoch) = ctx.db.epochs().await?;
    if let Some(access) = ctx.sign_ins.get(&hash, auth_epoch, now) {
        return Ok(Some(access.seen_schema(schema_epoch).seen_auth(auth_epoch)));
    }
    let signed = if token.starts_with(API_TOKEN_PREFIX) {
        store::token_user(&mut db, &hash, now).await?
    } else if token.starts_with(SESSION_PREFIX) {
        store::session_user(&mut db, &hash, now).await?
    } else {
        None
    };
    Ok(signed.map(|signed| {
        let access = access_of(signed.user, signed.roles);
        ctx.sign_ins
            .put(hash, access.clone(), auth_epoch, signed.expires_at);
        access.seen_schema(schema_epoch)
    }))
}

/// The access of a user by id (an automation's run-as user), or `None` when the user is
/// missing or deactivated.
pub async fn access_of_user(ctx: &Context, user_id: &str) -> Result<Option<Access>> {
    let mut db = &ctx.db;
    let Some(user) = store::user_by_id(&mut db, user_id)
        .await?
        .filter(|u| u.active)
    else {
        return Ok(None);
    };
    let roles = store::permissions_of(&mut db, user_id).await?;
    let epoch = crate::store::entities::epoch(&mut db).await?;
    Ok(Some(access_of(user, roles).seen_schema(epoch)))
}

/// [`access_of_user`] read through any executor (inside a transaction, say), without the
/// schema epoch.
pub async fn access_of_user_in(
    ex: &mut impl crate::store::Executor,
    user_id: &str,
) -> Result<Option<Access>> {
    let Some(user) = store::user_by_id(ex, user_id).await?.filter(|u| u.active) else {
        return Ok(None);
    };
    let roles = store::permissions_of(ex, user_id).await?;
    Ok(Some(access_of(user, roles)))
}

fn access_of(user: UserRow, roles: Vec<(String, Value)>) -> Access {
    let granted = Granted::new(
        roles
            .into_iter()
            .filter_map(|(name, doc)| match Permissions::parse(&doc) {
                Ok(p) => Some(p),
                Err(errors) => {
                    tracing::error!(role = name, ?errors, "stored role does not parse; ignored");
                    None
                }
            })
            .collect(),
    );
    let department = match (&user.department_id, &user.department_path) {
        (Some(id), Some(path)) => Some(Department {
            id: id.clone(),
            path: path.clone(),
        }),
        _ => None,
    };
    Access::user(
        Actor {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            department,
            language: user.language,
            time_zone: user.time_zone,
        },
        granted,
    )
}

// ---- signing in -------------------------------------------------------------------------

/// Signs in: a session token for `Authorization: Bearer` or the session cookie. Failures are
/// counted per account and per address; past the limit the answer is 429 until the window
/// passes. The answer never says whether the email exists, and the password check takes the
/// same time either way.
pub async fn login(
    ctx: &Context,
    email: &str,
    password: &str,
    address: Option<IpAddr>,
) -> Result<(String, Value)> {
    let email = normalize_email(email);
    let now = Utc::now();
    let window_start = now - Duration::minutes(FAILURE_WINDOW_MINUTES);
    let keys: Vec<(String, i64)> = [
        Some((format!("email:{email}"), MAX_FAILURES)),
        address.map(|a| (format!("address:{a}"), MAX_ADDRESS_FAILURES)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut db = &ctx.db;
    for (key, limit) in &keys {
        if let Some((failures, since)) = store::failures(&mut db, key).await?
            && since > window_start
            && failures >= *limit
        {
            let wait = (since + Duration::minutes(FAILURE_WINDOW_MINUTES) - now)
                .num_minutes()
                .max(1);
            return Err(Error::TooManyRequests(format!(
                "too many failed sign-ins; try again in {wait} minutes"
            )));
        }
    }
    let user = store::user_by_email(&mut db, &email).await?;
    let hash = user
        .as_ref()
        .map_or(decoy_hash(), |u| u.password_hash.as_str())
        .to_owned();
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    let user = user.filter(|u| matches && u.active);
    let mut tx = ctx.db.begin().await?;
    let Some(user) = user else {
        for (key, _) in &keys {
            store::record_failure(&mut tx, key, now, window_start).await?;
        }
        tx.commit().await?;
        return Err(Error::Unauthorized(
            "the email or the password is wrong".into(),
        ));
    };
    store::clear_failures(&mut tx, &format!("email:{email}")).await?;
    let token = new_token(SESSION_PREFIX)?;
    store::insert_session(
        &mut tx,
        &token_hash(&token),
        &user.id,
        now,
        now + Duration::days(SESSION_DAYS),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user = %user.email, "signed in");
    let view = user_view(&user, &role_names_of(ctx, &user.id).await?);
    Ok((token, view))
}

/// Ends a session (an API token is revoked instead, with `DELETE /api/tokens/{id}`).
pub async fn logout(ctx: &Context, token: &str) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    store::delete_session(&mut tx, &token_hash(token)).await?;
    tx.commit().await
}

pub async fn me(ctx: &Context, access: &Access) -> Result<Value> {
    let Some(actor) = access.actor() else {
        return Ok(json!({"user": null, "admin": true}));
    };
    let user = store::user_by_id(&mut &ctx.db, &actor.id)
        .await?
        .ok_or_else(|| Error::Unauthorized("the user no longer exists".into()))?;
    let roles = role_names_of(ctx, &user.id).await?;
    Ok(json!({
        "user": user_view(&user, &roles),
        "admin": access.is_admin(),
        "special": access.specials(),
    }))
}

// ---- users ------------------------------------------------------------------------------

async fn role_names_of(ctx: &Context, user_id: &str) -> Result<Vec<String>> {
    Ok(store::permissions_of(&mut &ctx.db, user_id)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

fn user_view(user: &UserRow, roles: &[String]) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "active": user.active,
        "department": user.department_id,
        "roles": roles,
        "language": user.language,
        "time_zone": user.time_zone,
        "created_at": format_datetime(&user.created_at),
    })
}

pub async fn list_users(ctx: &Context, access: &Access) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let mut db = &ctx.db;
    let users = store::users(&mut db).await?;
    let names = store::role_names(&mut db).await?;
    let items: Vec<Value> = users
        .iter()
        .map(|u| {
            let roles: Vec<String> = names
                .iter()
                .filter(|(id, _)| *id == u.id)
                .map(|(_, n)| n.clone())
                .collect();
            user_view(u, &roles)
        })
        .collect();
    Ok(json!({ "items": items }))
}

pub async fn get_user(ctx: &Context, access: &Access, id: &str) -> Result<Value> {
    if access.actor_id() != Some(id) {
        access.require(Special::ManageUsers)?;
    }
    let user = store::user_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no user '{id}'")))?;
    Ok(user_view(&user, &role_names_of(ctx, &user.id).await?))
}

/// A user account as an administrator (or the first start) writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

fn check_email(email: &str, problems: &mut Vec<FieldError>) {
    if !crate::fields::is_email(email) {
        problems.push(FieldError::new(
            "email",
            format!("'{email}' is not an email address"),
        ));
    }
}

fn check_password(password: &str, problems: &mut Vec<FieldError>) {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=1024).contains(&n) {
        problems.push(FieldError::new(
            "password",
            format!("must have at least {MIN_PASSWORD} characters"),
        ));
    }
}

fn check_language(language: &str, problems: &mut Vec<FieldError>) {
    if !LANGUAGES.contains(&language) {
        problems.push(FieldError::new("language", "must be en or zh-CN"));
    }
}

fn check_time_zone(zone: &str, problems: &mut Vec<FieldError>) {
    let ok = !zone.is_empty()
        && zone.len() <= 64
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if !ok {
        problems.push(FieldError::new(
            "time_zone",
            "must be a time zone name like Asia/Shanghai",
        ));
    }
}

async fn role_ids(
    ctx: &Context,
    names: &[String],
    problems: &mut Vec<FieldError>,
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in names {
        match store::role_by(&mut &ctx.db, name).await? {
            Some(role) => {
                if !ids.contains(&role.id) {
                    ids.push(role.id);
                }
            }
            None => problems.push(FieldError::new(
                "roles",
                format!("there is no role '{name}'"),
            )),
        }
    }
    Ok(ids)
}

async fn check_department(ctx: &Context, id: &str, problems: &mut Vec<FieldError>) -> Result<()> {
    if store::department_by_id(&mut &ctx.db, id).await?.is_none() {
        problems.push(FieldError::new(
            "department",
            format!("there is no department '{id}'"),
        ));
    }
    Ok(())
}

fn invalid(problems: Vec<FieldError>) -> Error {
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    Error::invalid(format!("invalid: {}", fields.join(", ")), problems)
}

/// Creates a user. `access` must manage users (the first start passes the system).
pub async fn create_user(ctx: &Context, access: &Access, new: NewUser) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let email = normalize_email(&new.email);
    let mut problems = Vec::new();
    check_email(&email, &mut problems);
    check_password(&new.password, &mut problems);
    let language = new.language.clone().unwrap_or_else(|| "zh-CN".to_owned());
    check_language(&language, &mut problems);
    let time_zone = new
        .time_zone
        .clone()
        .unwrap_or_else(|| "Asia/Shanghai".to_owned());
    check_time_zone(&time_zone, &mut problems);
    if let Some(department) = &new.department {
        check_department(ctx, department, &mut problems).await?;
    }
    let roles = role_ids(ctx, &new.roles, &mut problems).await?;
    let display_name = new
        .display_name
        .clone()
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    if display_name.trim().is_empty() || display_name.chars().count() > 100 {
        problems.push(FieldError::new(
            "display_name",
            "must have 1 to 100 characters",
        ));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if store::user_by_email(&mut &ctx.db, &email).await?.is_some() {
        return Err(Error::conflict(
            format!("a user with the email {email} exists"),
            vec![FieldError::new("email", "is taken")],
        ));
    }
    let password = new.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    let user = UserRow {
        id: new_id(),
        email,
        display_name: display_name.trim().to_owned(),
        password_hash,
        active: new.active.unwrap_or(true),
        department_id: new.department.clone(),
        department_path: None,
        language,
        time_zone,
        created_at: Utc::now(),
    };
    let mut tx = ctx.db.begin().await?;
    store::insert_user(&mut tx, &user).await?;
    store::set_user_roles(&mut tx, &user.id, &roles).await?;
    tx.commit().await?;
    tracing::info!(user = %user.email, "user created");
    get_user(ctx, &Access::system(), &user.id).await
}

/// Changes a user: `email`, `password`, `display_name`, `department` (null clears), `roles`,
/// `language`, `time_zone`, `active`. Users may change their own name, password, language and
/// time zone; the rest needs `manage_users`. Deactivating ends the user's sessions at once.
pub async fn update_user(
    ctx: &Context,
    access: &Access,
    id: &str,
    changes: &Value,
) -> Result<Value> {
    let Some(changes) = changes.as_object() else {
        return Err(Error::bad_request("the body is an object of changes"));
    };
    let own = access.actor_id() == Some(id);
    let personal = [
        "password",
        "current_password",
        "display_name",
        "language",
        "time_zone",
    ];
    if !own || changes.keys().any(|k| !personal.contains(&k.as_str())) {
        access.require(Special::ManageUsers)?;
    }
    let mut user = store::user_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no user '{id}'")))?;
    let mut problems = Vec::new();
    let mut roles = None;
    let text = |key: &str, v: &Value, problems: &mut Vec<FieldError>| -> Option<String> {
        let s = v.as_str().map(str::to_owned);
        if s.is_none() {
            problems.push(FieldError::new(key, "must be text"));
        }
        s
    };
    for (key, value) in changes {
        match key.as_str() {
            "email" => {
                if let Some(email) = text(key, value, &mut problems) {
                    let email = normalize_email(&email);
                    check_email(&email, &mut problems);
                    if let Some(other) = store::user_by_email(&mut &ctx.db, &email).await?
                        && other.id != user.id
                    {
                        problems.push(FieldError::new("email", "is taken"));
                    }
                    user.email = email;
                }
            }
            "current_password" => {}
            "password" => {
                // Changing one's own password takes the current one: a stolen session alone
                // cannot lock the owner out.
                if own {
                    let current = changes.get("current_password").and_then(Value::as_str);
                    let hash = user.password_hash.clone();
                    let given = current.unwrap_or_default().to_owned();
                    let matches =
                        tokio::task::spawn_blocking(move || verify_password(&given, &hash))
                            .await
                            .map_err(|e| Error::internal(e.to_string()))?;
                    if current.is_none() || !matches {
                        problems.push(FieldError::new(
                            "current_password",
                            "is needed to change your own password, and must be right",
                        ));
                        continue;
                    }
                }
                if let Some(password) = text(key, value, &mut problems) {
                    check_password(&password, &mut problems);
                    if problems.is_empty() {
                        user.password_hash =
                            tokio::task::spawn_blocking(move || hash_password(&password))
                                .await
                                .map_err(|e| Error::internal(e.to_string()))??;
                    }
                }
            }
            "display_name" => {
                if let Some(name) = text(key, value, &mut problems) {
                    if name.trim().is_empty() || name.chars().count() > 100 {
                        problems.push(FieldError::new(key, "must have 1 to 100 characters"));
                    }
                    user.display_name = name.trim().to_owned();
                }
            }
            "department" => match value {
                Value::Null => user.department_id = None,
                Value::String(d) => {
                    check_department(ctx, d, &mut problems).await?;
                    user.department_id = Some(d.clone());
                }
                _ => problems.push(FieldError::new(key, "must be a department id or null")),
            },
            "roles" => match serde_json::from_value::<Vec<String>>(value.clone()) {
                Ok(names) => roles = Some(role_ids(ctx, &names, &mut problems).await?),
                Err(_) => problems.push(FieldError::new(key, "must be a list of role names")),
            },
            "language" => {
                if let Some(language) = text(key, value, &mut problems) {
                    check_language(&language, &mut problems);
                    user.language = language;
                }
            }
            "time_zone" => {
                if let Some(zone) = text(key, value, &mut problems) {
                    check_time_zone(&zone, &mut problems);
                    user.time_zone = zone;
                }
            }
            "active" => match value.as_bool() {
                Some(active) => user.active = active,
                None => problems.push(FieldError::new(key, "must be true or false")),
            },
            other => problems.push(FieldError::new(other, "is not a user setting")),
        }
    }
    if own && changes.get("active") == Some(&Value::Bool(false)) {
        problems.push(FieldError::new("active", "you cannot deactivate yourself"));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let mut tx = ctx.db.begin().await?;
    store::update_user(&mut tx, &user, Utc::now()).await?;
    if let Some(roles) = roles {
        store::set_user_roles(&mut tx, &user.id, &roles).await?;
    }
    if !user.active || changes.contains_key("password") {
        store::delete_sessions_of(&mut tx, &user.id).await?;
    }
    tx.commit().await?;
    get_user(ctx, &Access::system(), id).await
}

// ---- roles ------------------------------------------------------------------------------

fn role_view(role: &RoleRow) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "label": role.label,
        "description": role.description,
        "builtin": role.builtin,
        "permissions": role.permissions,
    })
}

/// Creates the built-in roles that are missing (idempotent; edits are kept).
pub async fn ensure_builtin_roles(ctx: &Context) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    let now = Utc::now();
    for (name, label, description, permissions) in builtin_roles() {
        if store::role_by(&mut tx, name).await?.is_none() {
            store::save_role(
                &mut tx,
                &RoleRow {
                    id: new_id(),
                    name: name.to_owned(),
                    label,
                    description: description.to_owned(),
                    builtin: true,
                    permissions,
                },
                now,
            )
            .await?;
        }
    }
    tx.commit().await
}

pub async fn list_roles(ctx: &Context, access: &Access) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let roles = store::roles(&mut &ctx.db).await?;
    Ok(json!({ "items": roles.iter().map(role_view).collect::<Vec<_>>() }))
}

pub async fn get_role(ctx: &Context, access: &Access, id: &str) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let role = store::role_by(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no role '{id}'")))?;
    Ok(role_view(&role))
}

/// Creates (`id` None) or replaces a role from `{name, label, description, permissions}`.
pub async fn save_role(
    ctx: &Context,
    access: &Access,
    id: Option<&str>,
    body: &Value,
) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let existing = match id {
        Some(id) => Some(
            store::role_by(&mut &ctx.db, id)
                .await?
                .ok_or_else(|| Error::not_found(format!("there is no role '{id}'")))?,
        ),
        None => None,
    };
    let Some(body) = body.as_object() else {
        return Err(Error::bad_request("a role is an object"));
    };
    let mut problems = Vec::new();
    if let Some(key) = body.keys().find(|k| {
        ![
            "name",
            "label",
            "description",
            "permissions",
            "id",
            "builtin",
        ]
        .contains(&k.as_str())
    }) {
        problems.push(FieldError::new(key.as_str(), "is not a role setting"));
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| existing.as_ref().map(|r| r.name.clone()))
        .unwrap_or_default();
    let valid_name = !name.is_empty()
        && name.len() <= 50
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        problems.push(FieldError::new(
            "name",
            "must be 1-50 characters of a-z, 0-9 and _",
        ));
    }
    let permissions = body
        .get("permissions")
        .cloned()
        .or_else(|| existing.as_ref().map(|r| r.permissions.clone()))
        .unwrap_or_else(|| json!({}));
    if let Err(errors) = Permissions::parse(&permissions) {
        problems.extend(errors);
    }
    if existing
        .as_ref()
        .is_some_and(|r| r.builtin && r.name == "administrator")
    {
        return Err(Error::Forbidden(
            "the administrator role cannot be changed".into(),
        ));
    }
    if let Some(other) = store::role_by(&mut &ctx.db, &name).await?
        && existing.as_ref().is_none_or(|r| r.id != other.id)
    {
        problems.push(FieldError::new("name", "is taken"));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let role = RoleRow {
        id: existing.as_ref().map_or_else(new_id, |r| r.id.clone()),
        name,
        label: body
            .get("label")
            .cloned()
            .or_else(|| existing.as_ref().map(|r| r.label.clone()))
            .unwrap_or_else(|| json!({})),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| existing.as_ref().map(|r| r.description.clone()))
            .unwrap_or_default(),
        builtin: existing.as_ref().is_some_and(|r| r.builtin),
        permissions,
    };
    let mut tx = ctx.db.begin().await?;
    store::save_role(&mut tx, &role, Utc::now()).await?;
    tx.commit().await?;
    Ok(role_view(&role))
}

pub async fn delete_role(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    access.require(Special::ManageUsers)?;
    let role = store::role_by(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no role '{id}'")))?;
    if role.builtin {
        return Err(Error::Forbidden("built-in roles cannot be deleted".into()));
    }
    let mut tx = ctx.db.begin().await?;
    store::delete_role(&mut tx, &role.id).await?;
    tx.commit().await
}

// ---- departments ------------------------------------------------------------------------

fn department_view(d: &DepartmentRow) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "parent": d.parent_id,
        "path": d.path,
        "created_at": format_datetime(&d.created_at),
    })
}

pub async fn list_departments(ctx: &Context) -> Result<Value> {
    let all = store::departments(&mut &ctx.db).await?;
    Ok(json!({ "items": all.iter().map(department_view).collect::<Vec<_>>() }))
}

fn department_name(body: &Map<String, Value>) -> Result<Option<String>> {
    match body.get("name") {
        None => Ok(None),
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 100 => {
            Ok(Some(n.trim().to_owned()))
        }
        Some(_) => Err(Error::invalid_field(
            "name",
            "must have 1 to 100 characters",
        )),
    }
}

pub async fn create_department(ctx: &Context, access: &Access, body: &Value) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let body = body
        .as_object()
        .ok_or_else(|| Error::bad_request("a department is an object"))?;
    if let Some(key) = body
        .keys()
        .find(|k| !["name", "parent"].contains(&k.as_str()))
    {
        return Err(Error::invalid_field(
            key.as_str(),
            "is not a department setting",
        ));
    }
    let name = department_name(body)?.ok_or_else(|| Error::invalid_field("name", "is required"))?;
    let id = new_id();
    let path = match body.get("parent") {
        None | Some(Value::Null) => format!("/{id}/"),
        Some(Value::String(parent)) => {
            let parent = store::department_by_id(&mut &ctx.db, parent)
                .await?
                .ok_or_else(|| Error::invalid_field("parent", "there is no such department"))?;
            format!("{}{id}/", parent.path)
        }
        Some(_) => return Err(Error::invalid_field("parent", "must be a department id")),
    };
    let row = DepartmentRow {
        id,
        name,
        parent_id: body
            .get("parent")
            .and_then(Value::as_str)
            .map(str::to_owned),
        path,
        created_at: Utc::now(),
    };
    let mut tx = ctx.db.begin().await?;
    store::insert_department(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(department_view(&row))
}

/// Renames (`name`) or moves (`parent`, null for the top) a department. A department cannot
/// move below itself.
pub async fn update_department(
    ctx: &Context,
    access: &Access,
    id: &str,
    body: &Value,
) -> Result<Value> {
    access.require(Special::ManageUsers)?;
    let body = body
        .as_object()
        .ok_or_else(|| Error::bad_request("the body is an object of changes"))?;
    if let Some(key) = body
        .keys()
        .find(|k| !["name", "parent"].contains(&k.as_str()))
    {
        return Err(Error::invalid_field(
            key.as_str(),
            "is not a department setting",
        ));
    }
    let department = store::department_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no department '{id}'")))?;
    let now = Utc::now();
    let mut tx = ctx.db.begin().await?;
    if let Some(name) = department_name(body)? {
        store::rename_department(&mut tx, id, &name, now).await?;
    }
    if let Some(parent) = body.get("parent") {
        let (parent_id, base) = match parent {
            Value::Null => (None, "/".to_owned()),
            Value::String(p) => {
                let parent = store::department_by_id(&mut tx, p)
                    .await?
                    .ok_or_else(|| Error::invalid_field("parent", "there is no such department"))?;
                if parent.path.starts_with(&department.path) {
                    return Err(Error::invalid_field(
                        "parent",
                        "a department cannot move below itself",
                    ));
                }
                (Some(parent.id), parent.path)
            }
            _ => {
                return Err(Error::invalid_field(
                    "parent",
                    "must be a department id or null",
                ));
            }
        };
        let new_path = format!("{base}{id}/");
        store::move_department(
            &mut tx,
            id,
            parent_id.as_deref(),
            &department.path,
            &new_path,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    let updated = store::department_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::internal("department vanished"))?;
    Ok(department_view(&updated))
}

/// Deletes a department that has no sub-departments and no users.
pub async fn delete_department(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    access.require(Special::ManageUsers)?;
    store::department_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no department '{id}'")))?;
    let (children, users) = store::department_contents(&mut &ctx.db, id).await?;
    if children > 0 || users > 0 {
        return Err(Error::conflict(
            format!(
                "the department has {children} sub-departments and {users} users; move them first"
            ),
            vec![
                FieldError::new("department", "is not empty").with_count((children + users) as u64),
            ],
        ));
    }
    let mut tx = ctx.db.begin().await?;
    store::delete_department(&mut tx, id).await?;
    tx.commit().await
}

// ---- API tokens -------------------------------------------------------------------------

fn token_view(t: &TokenRow) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "user": t.user_id,
        "created_at": format_datetime(&t.created_at),
        "expires_at": t.expires_at.as_ref().map(format_datetime),
        "revoked_at": t.revoked_at.as_ref().map(format_datetime),
    })
}

fn signed_in(access: &Access) -> Result<&str> {
    access
        .actor_id()
        .ok_or_else(|| Error::bad_request("API tokens belong to a user"))
}

pub async fn list_tokens(ctx: &Context, access: &Access) -> Result<Value> {
    let user = signed_in(access)?;
    let tokens = store::tokens_of(&mut &ctx.db, user).await?;
    Ok(json!({ "items": tokens.iter().map(token_view).collect::<Vec<_>>() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Creates a named API token acting as the caller. The token is shown once, here.
pub async fn create_token(ctx: &Context, access: &Access, new: NewToken) -> Result<Value> {
    let user = signed_in(access)?.to_owned();
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid_field(
            "name",
            "must have 1 to 100 characters",
        ));
    }
    let now = Utc::now();
    let expires_at: Option<DateTime<Utc>> = match &new.expires_at {
        None => None,
        Some(text) => match crate::store::value::parse_datetime(text) {
            Some(t) if t > now => Some(t),
            Some(_) => return Err(Error::invalid_field("expires_at", "is in the past")),
            None => {
                return Err(Error::invalid_field(
                    "expires_at",
                    "must be a date and time (RFC 3339)",
                ));
            }
        },
    };
    let secret = new_token(API_TOKEN_PREFIX)?;
    let row = TokenRow {
        id: new_id(),
        user_id: user,
        name,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let mut tx = ctx.db.begin().await?;
    store::insert_token(&mut tx, &row, &token_hash(&secret)).await?;
    tx.commit().await?;
    let mut view = token_view(&row);
    view["token"] = json!(secret);
    Ok(view)
}

/// Revokes a token: the caller's own, or any with `manage_users`.
pub async fn revoke_token(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    let token = store::token_by_id(&mut &ctx.db, id)
        .await?
        .filter(|t| {
            access.actor_id() == Some(t.user_id.as_str()) || access.has(Special::ManageUsers)
        })
        .ok_or_else(|| Error::not_found(format!("there is no token '{id}'")))?;
    let mut tx = ctx.db.begin().await?;
    store::revoke_token(&mut tx, &token.id, Utc::now()).await?;
    tx.commit().await
}

// ---- the first administrator ------------------------------------------------------------

/// The first administrator: with no user yet, creates one from the given email and password,
/// or else issues a one-time setup token (valid a day) and returns it. Returns `None` when
/// users exist or the administrator was created.
pub async fn first_start(
    ctx: &Context,
    admin_email: Option<&str>,
    admin_password: Option<&str>,
) -> Result<Option<String>> {
    ensure_builtin_roles(ctx).await?;
    if store::user_count(&mut &ctx.db).await? > 0 {
        return Ok(None);
    }
    if let (Some(email), Some(password)) = (admin_email, admin_password) {
        create_admin(ctx, email, password, None).await?;
        tracing::info!(email, "created the administrator from the environment");
        return Ok(None);
    }
    let token = new_token("setup_")?;
    let mut tx = ctx.db.begin().await?;
    store::insert_setup_token(&mut tx, &token_hash(&token), Utc::now() + Duration::days(1)).await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Creates a user with the administrator role.
pub async fn create_admin(
    ctx: &Context,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<Value> {
    create_user(
        ctx,
        &Access::system(),
        NewUser {
            email: email.to_owned(),
            password: password.to_owned(),
            display_name: name.map(str::to_owned),
            roles: vec!["administrator".into()],
            ..NewUser::default()
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    pub token: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Creates the first administrator with the one-time setup token, and signs them in.
pub async fn setup(
    ctx: &Context,
    setup: Setup,
    address: Option<IpAddr>,
) -> Result<(String, Value)> {
    if store::user_count(&mut &ctx.db).await? > 0 {
        return Err(Error::conflict(
            "Tessera is set up already; sign in",
            Vec::new(),
        ));
    }
    let mut problems = Vec::new();
    check_email(&normalize_email(&setup.email), &mut problems);
    check_password(&setup.password, &mut problems);
    if setup
        .display_name
        .as_ref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 100)
    {
        problems.push(FieldError::new(
            "display_name",
            "must have 1 to 100 characters",
        ));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let mut tx = ctx.db.begin().await?;
    if !store::take_setup_token(&mut tx, &token_hash(&setup.token), Utc::now()).await? {
        return Err(Error::Unauthorized(
            "the setup link is not valid (used, expired or mistyped)".into(),
        ));
    }
    tx.commit().await?;
    create_admin(
        ctx,
        &setup.email,
        &setup.password,
        setup.display_name.as_deref(),
    )
    .await?;
    login(ctx, &setup.email, &setup.password, address).await
}
