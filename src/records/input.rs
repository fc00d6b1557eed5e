//! Record payloads: a flat JSON object checked against the entity's compiled JSON Schema and
//! converted field by field into stored values. Every problem is collected, so one 422 lists
//! every failing field.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::{Access, FieldAccess};
use crate::error::{Error, FieldError, Result};
use crate::fields::Kind;
use crate::schema::compiled::CompiledEntity;
use crate::schema::definition::FieldDef;
use crate::schema::names::{EntityName, SYSTEM_FIELDS};
use crate::store::{ColumnType, Ident, SqlValue};

/// The message of a field that needs a value (importers recognise it to say it in the user's
/// language).
pub const REQUIRED: &str = "is required";
/// The message of a field the caller may not write.
pub const NOT_WRITABLE: &str = "you may not change this field";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// A payload, checked and converted.
#[derive(Debug, Default)]
pub struct Input {
    /// Field columns to write.
    pub columns: Vec<(Ident, SqlValue)>,
    /// Multi-lookup fields to (re)write: join table and target ids.
    pub links: Vec<(Ident, Vec<String>)>,
    /// Ids that must be live records of their entity, with the field that names them.
    pub references: Vec<Reference>,
    /// Unique fields being given a value.
    pub unique: Vec<(String, Ident, SqlValue)>,
    pub owner: Option<SqlValue>,
    pub department: Option<SqlValue>,
    /// `version` from the body (optimistic concurrency on update).
    pub version: Option<i64>,
    /// `tags`, when given: the record's whole set of tags.
    pub tags: Option<Vec<String>>,
}

impl Input {
    /// Lays `other` over this input: what `other` sets wins (before-save script changes over
    /// the caller's payload).
    pub fn overlay(&mut self, other: Input) {
        fn merge<K: PartialEq + Clone, V>(into: &mut Vec<(K, V)>, from: Vec<(K, V)>) {
            for (key, value) in from {
                into.retain(|(k, _)| *k != key);
                into.push((key, value));
            }
        }
        merge(&mut self.columns, other.columns);
        merge(&mut self.links, other.links);
        for (field, column, value) in other.unique {
            self.unique.retain(|(f, _, _)| *f != field);
            self.unique.push((field, column, value));
        }
        for reference in other.references {
            self.references.retain(|r| r.field != reference.field);
            self.references.push(reference);
        }
        if other.owner.is_some() {
            self.owner = other.owner;
        }
        if other.department.is_some() {
            self.department = other.department;
        }
        if other.tags.is_some() {
            self.tags = other.tags;
        }
    }
}

/// Longest tag name, in characters.
pub const MAX_TAG: usize = 50;

/// Checks a list of tag names: trimmed, 1–50 characters, no repeats (first kept).
pub fn tag_list(value: &Value) -> Result<Vec<String>, String> {
    let items = value.as_array().ok_or("must be a list of tag names")?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let name = item.as_str().ok_or("each tag is a name (text)")?.trim();
        if name.is_empty() || name.chars().count() > MAX_TAG {
            return Err(format!("a tag name has 1 to {MAX_TAG} characters"));
        }
        if !out.iter().any(|t| t == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

#[derive(Debug)]
pub struct Reference {
    pub field: String,
    pub target: EntityName,
    pub ids: Vec<String>,
}

/// Collects problems per field, keeping the first message for each.
#[derive(Default)]
struct Problems(BTreeMap<String, String>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
}

const READ_ONLY_SYSTEM: &[&str] = &["id", "created_at", "updated_at", "created_by", "deleted_at"];

pub fn parse(
    entity: &CompiledEntity,
    payload: &Value,
    mode: Mode,
    access: &Access,
) -> Result<Input> {
    let Some(object) = payload.as_object() else {
        return Err(Error::bad_request(
            "a record is a JSON object of field names and values",
        ));
    };
    let def = &entity.def;
    let mut problems = Problems::default();

    for key in object.keys() {
        let key = key.as_str();
        if READ_ONLY_SYSTEM.contains(&key) || (key == "version" && mode == Mode::Create) {
            problems.add(key, "is set by the server and cannot be written");
        } else if SYSTEM_FIELDS.contains(&key) {
            // owner, department, version: writable system fields.
        } else {
            match def.field(key) {
                None => problems.add(key, format!("is not a field of {}", def.name)),
                Some(f) if f.is_computed() => problems.add(
                    key,
                    format!("is computed ({}) and cannot be written", f.kind.as_str()),
                ),
                Some(f)
                    if access.field(def.name.as_str(), f.name.as_str()) != FieldAccess::Write =>
                {
                    problems.add(key, NOT_WRITABLE)
                }
                Some(_) => {}
            }
        }
    }

    let validator = match mode {
        Mode::Create => &entity.create,
        Mode::Update => &entity.update,
    };
    for error in validator.iter_errors(payload) {
        use jsonschema::error::ValidationErrorKind as K;
        match error.kind() {
            K::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                problems.add(name, REQUIRED);
            }
            K::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    problems.add(name, format!("is not a field of {}", def.name));
                }
            }
            _ => {
                let pointer = error.instance_path().as_str();
                let field = pointer
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default();
                let message = friendly(def.field(field), object.get(field))
                    .unwrap_or_else(|| error.to_string());
                problems.add(field, message);
            }
        }
    }

    let mut input = Input::default();
    for (key, value) in object {
        if problems.has(key) {
            continue;
        }
        match key.as_str() {
            "owner" | "department" => {
                let stored = match value {
                    Value::Null => SqlValue::Null(ColumnType::Id),
                    Value::String(s) => match uuid::Uuid::parse_str(s) {
                        Ok(id) => SqlValue::Text(id.hyphenated().to_string()),
                        Err(_) => {
                            problems.add(key, "must be an id (UUID)");
                            continue;
                        }
                    },
                    _ => {
                        problems.add(key, "must be an id (UUID)");
                        continue;
                    }
                };
                if key == "owner" {
                    input.owner = Some(stored);
                } else {
                    input.department = Some(stored);
                }
            }
            "version" => input.version = value.as_i64(),
            "tags" => match tag_list(value) {
                Ok(tags) => input.tags = Some(tags),
                Err(message) => problems.add(key, message),
            },
            _ => {
                if let Some(field) = def.field(key) {
                    convert(&def.name, field, value, &mut input, &mut problems);
                }
            }
        }
    }

    if mode == Mode::Create {
        for field in def.fields.iter().filter(|f| !f.is_computed()) {
            if object.contains_key(field.name.as_str()) || problems.has(field.name.as_str()) {
                continue;
            }
            match &field.default {
                Some(default) => convert(&def.name, field, default, &mut input, &mut problems),
                None if field.required => problems.add(field.name.as_str(), REQUIRED),
                None => {}
            }
        }
    }

    if problems.0.is_empty() {
        return Ok(input);
    }
    // List problems in the entity's field order, unknown keys last.
    let position = |name: &str| {
        def.fields
            .iter()
            .position(|f| f.name.as_str() == name)
            .unwrap_or(usize::MAX)
    };
    let mut errors: Vec<FieldError> = problems
        .0
        .into_iter()
        .map(|(field, message)| FieldError::new(field, message))
        .collect();
    errors.sort_by_key(|e| position(&e.field));
    let message = match errors.len() {
        1 => format!("{} {}", errors[0].field, errors[0].message),
        n => format!(
            "{n} fields are invalid: {}",
            errors
                .iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(Error::invalid(message, errors))
}

/// The field kind's own message for a value the JSON Schema refused, when it has a clearer one.
fn friendly(field: Option<&FieldDef>, value: Option<&Value>) -> Option<String> {
    let (field, value) = (field?, value?);
    if value.is_null() {
        return Some(REQUIRED.into());
    }
    field.kind.field_type().to_sql(field, value).err()
}

fn convert(
    entity: &EntityName,
    field: &FieldDef,
    value: &Value,
    input: &mut Input,
    problems: &mut Problems,
) {
    let name = field.name.as_str();
    let stored = if value.is_null() {
        field.column_type().map_or(
            SqlValue::Json(Box::new(Value::Array(Vec::new()))),
            SqlValue::Null,
        )
    } else {
        match field.kind.field_type().to_sql(field, value) {
            Ok(v) => v,
            Err(message) => {
                problems.add(name, message);
                return;
            }
        }
    };
    let empty = match &stored {
        SqlValue::Null(_) => true,
        SqlValue::Json(json) => json.as_array().is_some_and(Vec::is_empty),
        _ => false,
    };
    if field.required && empty {
        problems.add(name, REQUIRED);
        return;
    }
    match field.kind {
        Kind::MultiLookup => {
            let ids = ids_of(&stored);
            if let Some(target) = &field.target {
                input.references.push(Reference {
                    field: name.to_owned(),
                    target: target.clone(),
                    ids: ids.clone(),
                });
            }
            input
                .links
                .push((Ident::join_table(entity, &field.name), ids));
        }
        Kind::Lookup => {
            if let (Some(target), SqlValue::Text(id)) = (&field.target, &stored) {
                input.references.push(Reference {
                    field: name.to_owned(),
                    target: target.clone(),
                    ids: vec![id.clone()],
                });
            }
            input.columns.push((Ident::column(&field.name), stored));
        }
        _ => {
            if field.has_unique_index() && !empty {
                input
                    .unique
                    .push((name.to_owned(), Ident::column(&field.name), stored.clone()));
            }
            input.columns.push((Ident::column(&field.name), stored));
        }
    }
}

fn ids_of(value: &SqlValue) -> Vec<String> {
    match value {
        SqlValue::Json(json) => json
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
