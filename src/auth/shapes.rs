//! The typed bodies and answers of `/api/users`, `/api/roles`, `/api/departments`,
//! `/api/tokens` and `/api/auth/me`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::permissions::Special;
use crate::store::auth::{DepartmentRow, RoleRow, TokenRow, UserRow};
use crate::wire::{nullable, timestamp};

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

/// The first administrator, made with the one-time setup token (`POST /api/auth/setup`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    pub token: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A token as a client asks for it: a name, and when it expires (RFC 3339; never when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A user account as the API shows it (never its password hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub active: bool,
    /// The department's id.
    pub department: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    pub language: String,
    pub time_zone: String,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

impl UserView {
    pub fn of(user: &UserRow, roles: Vec<String>) -> UserView {
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            active: user.active,
            department: user.department_id.clone(),
            roles,
            language: user.language.clone(),
            time_zone: user.time_zone.clone(),
            created_at: user.created_at,
        }
    }
}

/// `GET /api/auth/me`: the signed-in user (none for the system's own access), whether they
/// administer, and their special permissions.
#[derive(Debug, Serialize)]
pub struct Me {
    pub user: Option<UserView>,
    pub admin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub special: Option<Vec<Special>>,
}

/// A change to a user (`PATCH /api/users/{id}`): only what is given changes. A user may change
/// their own password (with the current one), name, language and time zone; the rest takes
/// `manage_users`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub email: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
    pub display_name: Option<String>,
    /// A department id, or `null` for none.
    #[serde(default, deserialize_with = "nullable")]
    pub department: Option<Option<String>>,
    /// Role names; they replace the user's roles.
    pub roles: Option<Vec<String>>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub active: Option<bool>,
}

impl UserChanges {
    /// Whether the change touches only what users may change about themselves.
    pub fn is_personal(&self) -> bool {
        self.email.is_none()
            && self.department.is_none()
            && self.roles.is_none()
            && self.active.is_none()
    }
}

/// A role as the API shows it; `label` is text in each language, `permissions` the
/// permission document (see docs/permissions.md).
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub label: Value,
    pub description: String,
    pub builtin: bool,
    pub permissions: Value,
}

impl RoleView {
    pub fn of(role: &RoleRow) -> RoleView {
        RoleView {
            id: role.id.clone(),
            name: role.name.clone(),
            label: role.label.clone(),
            description: role.description.clone(),
            builtin: role.builtin,
            permissions: role.permissions.clone(),
        }
    }
}

/// A role as a client writes it (`POST /api/roles`, `PUT /api/roles/{id}`). What is left out
/// keeps its value on a replace; `id` and `builtin` may be sent back as read and are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub name: Option<String>,
    pub label: Option<Value>,
    pub description: Option<String>,
    pub permissions: Option<Value>,
    #[serde(default, rename = "id")]
    pub _id: Option<Value>,
    #[serde(default, rename = "builtin")]
    pub _builtin: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DepartmentView {
    pub id: String,
    pub name: String,
    /// The parent department's id; `null` at the top.
    pub parent: Option<String>,
    /// The ids from the top down, `/a/b/`: a department's subtree is every path it starts.
    pub path: String,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

impl DepartmentView {
    pub fn of(d: &DepartmentRow) -> DepartmentView {
        DepartmentView {
            id: d.id.clone(),
            name: d.name.clone(),
            parent: d.parent_id.clone(),
            path: d.path.clone(),
            created_at: d.created_at,
        }
    }
}

/// A department as a client writes it: a new one needs `name`; a change renames it or moves
/// it (`parent`, `null` for the top).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInput {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub parent: Option<Option<String>>,
}

/// An API token as the API shows it: never its secret, except once, when it is made.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The user the token acts as.
    pub user: String,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenView {
    pub fn of(t: &TokenRow) -> TokenView {
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            user: t.user_id.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A token just made: its view and the secret, shown this once.
#[derive(Debug, Serialize)]
pub struct NewTokenView {
    #[serde(flatten)]
    pub view: TokenView,
    pub token: String,
}
