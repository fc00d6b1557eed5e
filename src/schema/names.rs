//! Entity and field names: parsed once at the edge, trusted everywhere after (they become SQL
//! identifiers, so the rules are strict).

use std::fmt;

use serde::{Serialize, Serializer};

/// Columns every entity table has; no field may take these names.
pub const SYSTEM_FIELDS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "department",
    "version",
    "deleted_at",
    "tags",
];

/// Further names reserved for the API (`?expand=`, record payloads).
const RESERVED_FIELDS: &[&str] = &["expand", "entity", "trashed"];

pub const MAX_ENTITY_NAME: usize = 40;
pub const MAX_FIELD_NAME: usize = 48;

fn check_name(kind: &str, s: &str, max: usize) -> Result<(), String> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(format!("{kind} name is empty")),
        Some(c) if !c.is_ascii_lowercase() => {
            return Err(format!(
                "{kind} name '{s}' must start with a lowercase letter (a-z)"
            ));
        }
        _ => {}
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "{kind} name '{s}' may contain only a-z, 0-9 and _ (found '{bad}')"
        ));
    }
    if s.len() > max {
        return Err(format!("{kind} name '{s}' is longer than {max} characters"));
    }
    Ok(())
}

/// The name of an entity: `[a-z][a-z0-9_]*`, at most 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityName(String);

impl EntityName {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_name("entity", s, MAX_ENTITY_NAME)?;
        Ok(EntityName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntityName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The name of a field: `[a-z][a-z0-9_]*`, at most 48 characters, not a system name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_name("field", s, MAX_FIELD_NAME)?;
        if SYSTEM_FIELDS.contains(&s) || RESERVED_FIELDS.contains(&s) {
            return Err(format!("field name '{s}' is reserved"));
        }
        Ok(FieldName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for FieldName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_strict() {
        assert!(EntityName::parse("customer").is_ok());
        assert!(EntityName::parse("sales_order_2").is_ok());
        for bad in [
            "",
            "Customer",
            "1st",
            "a-b",
            "客户",
            "a b",
            "_x",
            &"x".repeat(41),
        ] {
            assert!(EntityName::parse(bad).is_err(), "{bad}");
        }
        assert!(FieldName::parse("id").is_err());
        assert!(FieldName::parse("owner").is_err());
        assert!(FieldName::parse("owner_name").is_ok());
        assert!(FieldName::parse("\"; drop table x").is_err());
    }
}
