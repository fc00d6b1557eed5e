//! The auth service: signing in and out, resolving a bearer token to an [`Access`], and the
//! administration of users, departments, roles and API tokens.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::access::{Access, Actor, Department};
use super::permissions::{Granted, Permissions, Special};
use super::roles::builtin_roles;
use super::secrets::{
    API_TOKEN_PREFIX, SESSION_PREFIX, decoy_hash, hash_password, new_token, token_hash,
    verify_password,
};
use super::shapes::{
    DepartmentInput, DepartmentView, Me, NewTokenView, RoleInput, RoleView, TokenView, UserChanges,
    UserView,
};
pub use super::shapes::{NewToken, NewUser, Setup};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::auth::{self as store, DepartmentRow, RoleRow, TokenRow, UserRow};
use crate::wire::Items;

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
) -> Result<(String, UserView)> {
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
    let view = UserView::of(&user, role_names_of(ctx, &user.id).await?);
    Ok((token, view))
}

/// Ends a session (an API token is revoked instead, with `DELETE /api/tokens/{id}`).
pub async fn logout(ctx: &Context, token: &str) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    store::delete_session(&mut tx, &token_hash(token)).await?;
    tx.commit().await
}

pub async fn me(ctx: &Context, access: &Access) -> Result<Me> {
    let Some(actor) = access.actor() else {
        return Ok(Me {
            user: None,
            admin: true,
            special: None,
        });
    };
    let user = store::user_by_id(&mut &ctx.db, &actor.id)
        .await?
        .ok_or_else(|| Error::Unauthorized("the user no longer exists".into()))?;
    let roles = role_names_of(ctx, &user.id).await?;
    Ok(Me {
        user: Some(UserView::of(&user, roles)),
        admin: access.is_admin(),
        special: Some(access.specials()),
    })
}

// ---- users ------------------------------------------------------------------------------

async fn role_names_of(ctx: &Context, user_id: &str) -> Result<Vec<String>> {
    Ok(store::permissions_of(&mut &ctx.db, user_id)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

pub async fn list_users(ctx: &Context, access: &Access) -> Result<Items<UserView>> {
    access.require(Special::ManageUsers)?;
    let mut db = &ctx.db;
    let users = store::users(&mut db).await?;
    let names = store::role_names(&mut db).await?;
    Ok(Items::of(&users, |u| {
        let roles: Vec<String> = names
            .iter()
            .filter(|(id, _)| *id == u.id)
            .map(|(_, n)| n.clone())
            .collect();
        UserView::of(u, roles)
    }))
}

pub async fn get_user(ctx: &Context, access: &Access, id: &str) -> Result<UserView> {
    if access.actor_id() != Some(id) {
        access.require(Special::ManageUsers)?;
    }
    let user = store::user_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no user '{id}'")))?;
    Ok(UserView::of(&user, role_names_of(ctx, &user.id).await?))
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
pub async fn create_user(ctx: &Context, access: &Access, new: NewUser) -> Result<UserView> {
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
    changes: UserChanges,
) -> Result<UserView> {
    let own = access.actor_id() == Some(id);
    if !own || !changes.is_personal() {
        access.require(Special::ManageUsers)?;
    }
    let mut user = store::user_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no user '{id}'")))?;
    let mut problems = Vec::new();
    if let Some(email) = &changes.email {
        let email = normalize_email(email);
        check_email(&email, &mut problems);
        if let Some(other) = store::user_by_email(&mut &ctx.db, &email).await?
            && other.id != user.id
        {
            problems.push(FieldError::new("email", "is taken"));
        }
        user.email = email;
    }
    if let Some(password) = &changes.password {
        // Changing one's own password takes the current one: a stolen session alone cannot
        // lock the owner out.
        let current_matches = if own {
            let hash = user.password_hash.clone();
            let given = changes.current_password.clone().unwrap_or_default();
            changes.current_password.is_some()
                && tokio::task::spawn_blocking(move || verify_password(&given, &hash))
                    .await
                    .map_err(|e| Error::internal(e.to_string()))?
        } else {
            true
        };
        if !current_matches {
            problems.push(FieldError::new(
                "current_password",
                "is needed to change your own password, and must be right",
            ));
        } else {
            check_password(password, &mut problems);
            if problems.is_empty() {
                let password = password.clone();
                user.password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
                    .await
                    .map_err(|e| Error::internal(e.to_string()))??;
            }
        }
    }
    if let Some(name) = &changes.display_name {
        if name.trim().is_empty() || name.chars().count() > 100 {
            problems.push(FieldError::new(
                "display_name",
                "must have 1 to 100 characters",
            ));
        }
        user.display_name = name.trim().to_owned();
    }
    match &changes.department {
        None => {}
        Some(None) => user.department_id = None,
        Some(Some(department)) => {
            check_department(ctx, department, &mut problems).await?;
            user.department_id = Some(department.clone());
        }
    }
    let roles = match &changes.roles {
        Some(names) => Some(role_ids(ctx, names, &mut problems).await?),
        None => None,
    };
    if let Some(language) = &changes.language {
        check_language(language, &mut problems);
        user.language = language.clone();
    }
    if let Some(zone) = &changes.time_zone {
        check_time_zone(zone, &mut problems);
        user.time_zone = zone.clone();
    }
    if let Some(active) = changes.active {
        if own && !active {
            problems.push(FieldError::new("active", "you cannot deactivate yourself"));
        }
        user.active = active;
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let mut tx = ctx.db.begin().await?;
    store::update_user(&mut tx, &user, Utc::now()).await?;
    if let Some(roles) = roles {
        store::set_user_roles(&mut tx, &user.id, &roles).await?;
    }
    if !user.active || changes.password.is_some() {
        store::delete_sessions_of(&mut tx, &user.id).await?;
    }
    tx.commit().await?;
    get_user(ctx, &Access::system(), id).await
}

// ---- roles ------------------------------------------------------------------------------

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

pub async fn list_roles(ctx: &Context, access: &Access) -> Result<Items<RoleView>> {
    access.require(Special::ManageUsers)?;
    let roles = store::roles(&mut &ctx.db).await?;
    Ok(Items::of(&roles, RoleView::of))
}

pub async fn get_role(ctx: &Context, access: &Access, id: &str) -> Result<RoleView> {
    access.require(Special::ManageUsers)?;
    let role = store::role_by(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no role '{id}'")))?;
    Ok(RoleView::of(&role))
}

/// Creates (`id` None) or replaces a role from `{name, label, description, permissions}`.
pub async fn save_role(
    ctx: &Context,
    access: &Access,
    id: Option<&str>,
    body: RoleInput,
) -> Result<RoleView> {
    access.require(Special::ManageUsers)?;
    let existing = match id {
        Some(id) => Some(
            store::role_by(&mut &ctx.db, id)
                .await?
                .ok_or_else(|| Error::not_found(format!("there is no role '{id}'")))?,
        ),
        None => None,
    };
    let mut problems = Vec::new();
    let name = body
        .name
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
        .permissions
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
            .label
            .or_else(|| existing.as_ref().map(|r| r.label.clone()))
            .unwrap_or_else(|| json!({})),
        description: body
            .description
            .or_else(|| existing.as_ref().map(|r| r.description.clone()))
            .unwrap_or_default(),
        builtin: existing.as_ref().is_some_and(|r| r.builtin),
        permissions,
    };
    let mut tx = ctx.db.begin().await?;
    store::save_role(&mut tx, &role, Utc::now()).await?;
    tx.commit().await?;
    Ok(RoleView::of(&role))
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

pub async fn list_departments(ctx: &Context) -> Result<Items<DepartmentView>> {
    let all = store::departments(&mut &ctx.db).await?;
    Ok(Items::of(&all, DepartmentView::of))
}

fn department_name(given: Option<&str>) -> Result<Option<String>> {
    match given {
        None => Ok(None),
        Some(n) if !n.trim().is_empty() && n.chars().count() <= 100 => {
            Ok(Some(n.trim().to_owned()))
        }
        Some(_) => Err(Error::invalid_field(
            "name",
            "must have 1 to 100 characters",
        )),
    }
}

pub async fn create_department(
    ctx: &Context,
    access: &Access,
    body: DepartmentInput,
) -> Result<DepartmentView> {
    access.require(Special::ManageUsers)?;
    let name = department_name(body.name.as_deref())?
        .ok_or_else(|| Error::invalid_field("name", "is required"))?;
    let id = new_id();
    let parent_id = body.parent.flatten();
    let path = match &parent_id {
        None => format!("/{id}/"),
        Some(parent) => {
            let parent = store::department_by_id(&mut &ctx.db, parent)
                .await?
                .ok_or_else(|| Error::invalid_field("parent", "there is no such department"))?;
            format!("{}{id}/", parent.path)
        }
    };
    let row = DepartmentRow {
        id,
        name,
        parent_id,
        path,
        created_at: Utc::now(),
    };
    let mut tx = ctx.db.begin().await?;
    store::insert_department(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(DepartmentView::of(&row))
}

/// Renames (`name`) or moves (`parent`, null for the top) a department. A department cannot
/// move below itself.
pub async fn update_department(
    ctx: &Context,
    access: &Access,
    id: &str,
    body: DepartmentInput,
) -> Result<DepartmentView> {
    access.require(Special::ManageUsers)?;
    let department = store::department_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no department '{id}'")))?;
    let now = Utc::now();
    let mut tx = ctx.db.begin().await?;
    if let Some(name) = department_name(body.name.as_deref())? {
        store::rename_department(&mut tx, id, &name, now).await?;
    }
    if let Some(parent) = &body.parent {
        let (parent_id, base) = match parent {
            None => (None, "/".to_owned()),
            Some(p) => {
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
    Ok(DepartmentView::of(&updated))
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

fn signed_in(access: &Access) -> Result<&str> {
    access
        .actor_id()
        .ok_or_else(|| Error::bad_request("API tokens belong to a user"))
}

pub async fn list_tokens(ctx: &Context, access: &Access) -> Result<Items<TokenView>> {
    let user = signed_in(access)?;
    let tokens = store::tokens_of(&mut &ctx.db, user).await?;
    Ok(Items::of(&tokens, TokenView::of))
}

/// Creates a named API token acting as the caller. The token is shown once, here.
pub async fn create_token(ctx: &Context, access: &Access, new: NewToken) -> Result<NewTokenView> {
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
    Ok(NewTokenView {
        view: TokenView::of(&row),
        token: secret,
    })
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
) -> Result<UserView> {
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

/// Creates the first administrator with the one-time setup token, and signs them in.
pub async fn setup(
    ctx: &Context,
    setup: Setup,
    address: Option<IpAddr>,
) -> Result<(String, UserView)> {
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
