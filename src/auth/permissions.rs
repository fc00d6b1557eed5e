//! What a role allows, as data: per entity, create/read/update/delete each with a data scope,
//! per field hidden/read/write, and special permissions. A user with several roles gets the
//! union: the widest scope and the widest field access any role grants.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;

/// Which records an action reaches, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// No record.
    None,
    /// Records the user owns.
    Own,
    /// Records of the user's department (and their own).
    Department,
    /// Records of the user's department and every department below it (and their own).
    DepartmentTree,
    /// Every record.
    All,
}

/// What a user may do with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAccess {
    /// Never shown, never filtered, sorted or searched on.
    Hidden,
    /// Shown, never written.
    Read,
    /// Shown and written (within the update scope).
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
}

/// Permissions beyond records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Special {
    Export,
    Import,
    Merge,
    Bulk,
    ManageSchema,
    ManageAutomations,
    ManageTemplates,
    ManageUsers,
    ManageSettings,
}

impl Special {
    pub const ALL: [Special; 9] = [
        Special::Export,
        Special::Import,
        Special::Merge,
        Special::Bulk,
        Special::ManageSchema,
        Special::ManageAutomations,
        Special::ManageTemplates,
        Special::ManageUsers,
        Special::ManageSettings,
    ];
}

/// One entity's rule in a role. Actions left out fall back to the role's `"*"` rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<Scope>,
    /// Fields not listed are writable (for roles that reach the entity at all).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldAccess>,
}

impl EntityRule {
    fn action(&self, action: Action) -> Option<Scope> {
        match action {
            Action::Create => self.create,
            Action::Read => self.read,
            Action::Update => self.update,
            Action::Delete => self.delete,
        }
    }
}

/// A role's permissions document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Everything, everywhere (the administrator role).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// Per entity name, and `"*"` for every entity not named.
    #[serde(default)]
    pub entities: BTreeMap<String, EntityRule>,
    #[serde(default)]
    pub special: BTreeSet<Special>,
}

impl Permissions {
    /// Parses a permissions document, saying what is wrong in terms of the document.
    pub fn parse(value: &Value) -> Result<Permissions, Vec<FieldError>> {
        let permissions: Permissions = serde_json::from_value(value.clone())
            .map_err(|e| vec![FieldError::new("permissions", e.to_string())])?;
        let mut errors = Vec::new();
        for name in permissions.entities.keys() {
            if name != "*" && crate::schema::names::EntityName::parse(name).is_err() {
                errors.push(FieldError::new(
                    format!("permissions.entities.{name}"),
                    "is not an entity name (or \"*\" for every entity)",
                ));
            }
        }
        if errors.is_empty() {
            Ok(permissions)
        } else {
            Err(errors)
        }
    }

    /// This role's scope for an action on an entity.
    pub fn scope(&self, entity: &str, action: Action) -> Scope {
        if self.admin {
            return Scope::All;
        }
        self.entities
            .get(entity)
            .and_then(|r| r.action(action))
            .or_else(|| self.entities.get("*").and_then(|r| r.action(action)))
            .unwrap_or(Scope::None)
    }

    /// This role's access to a field: what it says, else write when the role reaches the entity
    /// at all (a role that grants nothing on an entity widens none of its fields).
    pub fn field(&self, entity: &str, field: &str) -> FieldAccess {
        if self.admin {
            return FieldAccess::Write;
        }
        if let Some(access) = self.entities.get(entity).and_then(|r| r.fields.get(field)) {
            return *access;
        }
        if self.scope(entity, Action::Read) > Scope::None {
            FieldAccess::Write
        } else {
            FieldAccess::Hidden
        }
    }
}

/// The union of a user's roles.
#[derive(Debug, Clone, Default)]
pub struct Granted {
    roles: Vec<Permissions>,
}

impl Granted {
    pub fn new(roles: Vec<Permissions>) -> Granted {
        Granted { roles }
    }

    pub fn admin(&self) -> bool {
        self.roles.iter().any(|r| r.admin)
    }

    pub fn scope(&self, entity: &str, action: Action) -> Scope {
        self.roles
            .iter()
            .map(|r| r.scope(entity, action))
            .max()
            .unwrap_or(Scope::None)
    }

    pub fn field(&self, entity: &str, field: &str) -> FieldAccess {
        self.roles
            .iter()
            .map(|r| r.field(entity, field))
            .max()
            .unwrap_or(FieldAccess::Hidden)
    }

    pub fn has(&self, special: Special) -> bool {
        self.roles
            .iter()
            .any(|r| r.admin || r.special.contains(&special))
    }

    pub fn specials(&self) -> Vec<Special> {
        Special::ALL.into_iter().filter(|s| self.has(*s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_unite_to_the_widest_grant() {
        let rep = Permissions::parse(&json!({
            "entities": {"*": {"create": "own", "read": "own", "update": "own"},
                         "customer": {"read": "department", "fields": {"credit_limit": "read", "secret": "hidden"}}},
            "special": ["export"]
        }))
        .unwrap();
        let auditor = Permissions::parse(&json!({
            "entities": {"customer": {"read": "all", "fields": {"secret": "read"}}}
        }))
        .unwrap();
        assert_eq!(rep.scope("customer", Action::Read), Scope::Department);
        assert_eq!(rep.scope("customer", Action::Update), Scope::Own);
        assert_eq!(rep.scope("customer", Action::Delete), Scope::None);
        assert_eq!(rep.scope("order", Action::Read), Scope::Own);
        let both = Granted::new(vec![rep.clone(), auditor]);
        assert_eq!(both.scope("customer", Action::Read), Scope::All);
        assert_eq!(both.field("customer", "secret"), FieldAccess::Read);
        assert_eq!(both.field("customer", "credit_limit"), FieldAccess::Write);
        let alone = Granted::new(vec![rep]);
        assert_eq!(alone.field("customer", "credit_limit"), FieldAccess::Read);
        assert_eq!(alone.field("customer", "secret"), FieldAccess::Hidden);
        assert!(alone.has(Special::Export) && !alone.has(Special::Merge));
        assert!(Permissions::parse(&json!({"entities": {"Bad Name": {}}})).is_err());
        assert!(Permissions::parse(&json!({"entities": {"x": {"read": "everyone"}}})).is_err());
        assert!(Permissions::parse(&json!({"special": ["fly"]})).is_err());
    }
}
