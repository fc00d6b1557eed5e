//! `Access`: who is acting and what their roles allow — the one permission check every service
//! asks. Data scopes become conditions on the records' `owner` and `department`, so lists,
//! counts, searches, bulk changes and reads by id are narrowed the same way.

use super::permissions::{Action, FieldAccess, Granted, Scope, Special};
use crate::error::{Error, Result};
use crate::store::query::{Alias, Cmp, Column, Condition};
use crate::store::{Ident, SqlValue};

/// A user's department and its place in the tree (`/hq/sales/east/` by ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: String,
    pub path: String,
}

/// The signed-in user.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub department: Option<Department>,
    pub language: String,
    pub time_zone: String,
}

/// The caller of a service: a user with their roles, or the system itself (command line,
/// internal jobs), which may do everything.
#[derive(Debug, Clone)]
pub struct Access {
    actor: Option<Actor>,
    granted: Granted,
    /// The schema epoch read while authenticating: the request works with the schema as of
    /// then, without asking the database again.
    schema_epoch: Option<i64>,
    /// The auth epoch the caller's roles were read under (see [`crate::auth::cache`]): two
    /// callers of one user and one auth epoch hold the same permissions.
    auth_epoch: Option<i64>,
    /// How deep in a chain of automations this caller acts: 0 for people and integrations,
    /// n for a script fired by a write made at depth n − 1.
    automation_depth: u32,
}

impl Access {
    /// The system: no user, every permission.
    pub fn system() -> Access {
        Access {
            actor: None,
            granted: Granted::default(),
            schema_epoch: None,
            auth_epoch: None,
            automation_depth: 0,
        }
    }

    pub fn user(actor: Actor, granted: Granted) -> Access {
        Access {
            actor: Some(actor),
            granted,
            schema_epoch: None,
            auth_epoch: None,
            automation_depth: 0,
        }
    }

    pub fn seen_schema(mut self, epoch: i64) -> Access {
        self.schema_epoch = Some(epoch);
        self
    }

    pub fn seen_auth(mut self, epoch: i64) -> Access {
        self.auth_epoch = Some(epoch);
        self
    }

    /// Who this caller is, as far as permissions and schema go: equal for two callers of one
    /// signed-in user under the same auth and schema epochs, who may therefore share one
    /// write. `None` when that cannot be told (a caller not read by signing in).
    pub fn sameness(&self) -> Option<String> {
        let actor = self.actor.as_ref()?;
        let auth = self.auth_epoch?;
        let schema = self.schema_epoch?;
        Some(format!(
            "{}\u{1f}{auth}\u{1f}{schema}\u{1f}{}",
            actor.id, self.automation_depth
        ))
    }

    /// The same caller acting inside an automation run at `depth`.
    pub fn in_automation(mut self, depth: u32) -> Access {
        self.automation_depth = depth;
        self
    }

    pub fn automation_depth(&self) -> u32 {
        self.automation_depth
    }

    pub fn schema_epoch(&self) -> Option<i64> {
        self.schema_epoch
    }

    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    pub fn actor_id(&self) -> Option<&str> {
        self.actor.as_ref().map(|a| a.id.as_str())
    }

    pub fn is_admin(&self) -> bool {
        self.actor.is_none() || self.granted.admin()
    }

    pub fn scope(&self, entity: &str, action: Action) -> Scope {
        if self.is_admin() {
            Scope::All
        } else {
            self.granted.scope(entity, action)
        }
    }

    pub fn field(&self, entity: &str, field: &str) -> FieldAccess {
        if self.is_admin() {
            FieldAccess::Write
        } else {
            self.granted.field(entity, field)
        }
    }

    pub fn can_read_field(&self, entity: &str, field: &str) -> bool {
        self.field(entity, field) > FieldAccess::Hidden
    }

    pub fn has(&self, special: Special) -> bool {
        self.is_admin() || self.granted.has(special)
    }

    pub fn specials(&self) -> Vec<Special> {
        if self.is_admin() {
            Special::ALL.to_vec()
        } else {
            self.granted.specials()
        }
    }

    /// A 403 unless the caller holds the special permission.
    pub fn require(&self, special: Special) -> Result<()> {
        if self.has(special) {
            Ok(())
        } else {
            let name = serde_json::to_value(special)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            Err(Error::Forbidden(format!(
                "this needs the '{name}' permission"
            )))
        }
    }

    /// A 403 unless the caller may take the action on the entity at all.
    pub fn require_action(&self, entity: &str, action: Action) -> Result<()> {
        if self.scope(entity, action) > Scope::None {
            Ok(())
        } else {
            let verb = match action {
                Action::Create => "create",
                Action::Read => "read",
                Action::Update => "change",
                Action::Delete => "delete",
            };
            Err(Error::Forbidden(format!(
                "you may not {verb} {entity} records"
            )))
        }
    }

    /// The records an action reaches, as a condition on the listed table.
    pub fn records(&self, entity: &str, action: Action) -> Condition {
        self.condition(self.scope(entity, action), Alias::T)
    }

    /// The same, on a related table (alias `r` inside lookup conditions).
    pub fn records_as(&self, entity: &str, action: Action, alias: Alias) -> Condition {
        self.condition(self.scope(entity, action), alias)
    }

    fn condition(&self, scope: Scope, alias: Alias) -> Condition {
        let column = |name: &'static str| Column {
            alias,
            name: Ident::fixed(name),
        };
        let Some(actor) = &self.actor else {
            return Condition::True;
        };
        let own = Condition::Compare {
            column: column("owner"),
            op: Cmp::Eq,
            value: SqlValue::Text(actor.id.clone()),
            or_null: false,
        };
        match (scope, &actor.department) {
            (Scope::All, _) => Condition::True,
            (Scope::None, _) => Condition::False,
            (Scope::Own, _) | (_, None) => own,
            (Scope::Department, Some(department)) => Condition::Or(vec![
                own,
                Condition::Compare {
                    column: column("department"),
                    op: Cmp::Eq,
                    value: SqlValue::Text(department.id.clone()),
                    or_null: false,
                },
            ]),
            (Scope::DepartmentTree, Some(department)) => Condition::Or(vec![
                own,
                Condition::DepartmentUnder {
                    column: column("department"),
                    path: department.path.clone(),
                },
            ]),
        }
    }

    /// Whether the caller may place a record (create it, or reassign it) with this owner and
    /// department for an action: the department must lie inside the caller's scope, and so
    /// must the owner (the caller, or a user of a department inside the scope). Stricter than
    /// reading: owning a record does not let one move it to another department.
    pub fn may_place(
        &self,
        entity: &str,
        action: Action,
        owner: Option<&str>,
        owner_department: Option<&Department>,
        department: Option<&Department>,
    ) -> bool {
        let Some(actor) = &self.actor else {
            return true;
        };
        let scope = self.scope(entity, action);
        let mine = owner == Some(actor.id.as_str());
        let inside = |d: Option<&Department>| -> bool {
            match (scope, d, &actor.department) {
                (Scope::All, _, _) => true,
                (Scope::None, _, _) | (_, None, _) | (_, _, None) => false,
                (Scope::DepartmentTree, Some(d), Some(my)) => d.path.starts_with(&my.path),
                (_, Some(d), Some(my)) => d.id == my.id,
            }
        };
        let owner_ok = match scope {
            Scope::None => false,
            Scope::All => true,
            Scope::Own => mine,
            _ => mine || inside(owner_department),
        };
        let department_ok = match department {
            None => scope == Scope::All || (scope > Scope::None && mine),
            Some(_) => inside(department),
        };
        owner_ok && department_ok
    }
}
