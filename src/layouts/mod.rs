//! Forms and views: how an entity's records are laid out for editing (forms) and listed
//! (list, kanban and calendar views). Both are data, checked against the entity they show
//! and versioned; the UI renders them.

pub mod forms;
pub mod shapes;
pub mod view_indexes;
pub mod views;

use serde_json::{Map, Value};

use crate::auth::Access;
use crate::error::FieldError;
use crate::schema::compiled::CompiledEntity;

/// Columns every record has besides its fields (a view or form may name them; trashed-at is
/// not shown).
pub fn is_system_field(name: &str) -> bool {
    name != "deleted_at" && crate::schema::names::SYSTEM_FIELDS.contains(&name)
}

/// Checks that `field` names a field (or system column) of `entity` the caller may read.
pub(crate) fn check_field_name(
    entity: &CompiledEntity,
    access: &Access,
    field: &str,
    path: &str,
    problems: &mut Vec<FieldError>,
) {
    let name = entity.def.name.as_str();
    if is_system_field(field) {
        return;
    }
    if entity.def.field(field).is_none() {
        problems.push(FieldError::new(
            path,
            format!("{name} has no field '{field}'"),
        ));
    } else if !access.can_read_field(name, field) {
        problems.push(FieldError::new(
            path,
            format!("you may not read {name}.{field}"),
        ));
    }
}

/// A label in several languages: `{"en": …, "zh-CN": …}` (a plain string counts as English).
pub(crate) fn check_label(
    value: Option<&Value>,
    path: &str,
    required: bool,
    problems: &mut Vec<FieldError>,
) -> Option<Value> {
    match value {
        None | Some(Value::Null) => {
            if required {
                problems.push(FieldError::new(path, "is required"));
            }
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let mut map = Map::new();
            map.insert("en".into(), Value::String(s.trim().to_owned()));
            Some(Value::Object(map))
        }
        Some(Value::Object(map))
            if !map.is_empty()
                && map
                    .iter()
                    .all(|(k, v)| matches!(k.as_str(), "en" | "zh-CN") && v.is_string()) =>
        {
            Some(Value::Object(map.clone()))
        }
        Some(_) => {
            problems.push(FieldError::new(
                path,
                "must be text or {\"en\": …, \"zh-CN\": …}",
            ));
            None
        }
    }
}

/// Names of forms and views: 1–64 letters, digits, `_` or `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
