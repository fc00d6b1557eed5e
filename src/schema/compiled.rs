//! Compiled entities: a definition together with the JSON Schema validators for record
//! payloads and the table layout, cached per server and rebuilt when the stored version moves
//! (also when another server instance changed it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

use super::definition::{DRAFT_2020_12, EntityDef, FieldDef};
use super::names::EntityName;
use crate::error::{Error, Result};
use crate::store::records::Layout;
use crate::store::{Db, entities};

/// Keywords of a completed property that constrain record values.
const VALUE_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "enum",
    "items",
    "uniqueItems",
    "maxLength",
    "minLength",
    "pattern",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
];

/// A definition ready to validate and store records.
pub struct CompiledEntity {
    pub def: EntityDef,
    pub version: i64,
    pub layout: Layout,
    /// Validates a full payload (create): required fields must be present.
    pub create: Validator,
    /// Validates a partial payload (update): only what is present.
    pub update: Validator,
}

impl std::fmt::Debug for CompiledEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledEntity")
            .field("name", &self.def.name)
            .field("version", &self.version)
            .finish()
    }
}

/// The JSON Schema a field's values must satisfy in a payload. Optional fields accept null
/// (clears the value). Decimal bounds are left to the field kind, which compares exactly.
fn value_schema(field: &FieldDef) -> Value {
    let mut schema: Map<String, Value> = field
        .schema
        .iter()
        .filter(|(k, _)| VALUE_KEYWORDS.contains(&k.as_str()))
        .filter(|(k, _)| !(field.kind.is_decimal() && matches!(k.as_str(), "minimum" | "maximum")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !field.required {
        let ty = match schema.remove("type") {
            Some(Value::Array(mut types)) => {
                types.push(json!("null"));
                Value::Array(types)
            }
            Some(ty) => json!([ty, "null"]),
            None => Value::Null,
        };
        if !ty.is_null() {
            schema.insert("type".into(), ty);
        }
        if let Some(Value::Array(values)) = schema.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    Value::Object(schema)
}

/// The record schema of an entity: its writable fields and the writable system fields.
pub fn record_schema(def: &EntityDef, for_create: bool) -> Value {
    let mut properties = Map::new();
    for field in def.fields.iter().filter(|f| !f.is_computed()) {
        properties.insert(field.name.to_string(), value_schema(field));
    }
    let id = json!({"type": ["string", "null"], "format": "uuid"});
    properties.insert("owner".into(), id.clone());
    properties.insert("department".into(), id);
    if !for_create {
        properties.insert("version".into(), json!({"type": "integer", "minimum": 1}));
    }
    let mut schema = json!({
        "$schema": DRAFT_2020_12,
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if for_create {
        let required: Vec<&str> = def
            .fields
            .iter()
            .filter(|f| f.required && f.default.is_none())
            .map(|f| f.name.as_str())
            .collect();
        schema["required"] = json!(required);
    }
    schema
}

fn validator(schema: &Value) -> Result<Validator> {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| Error::internal(format!("record schema does not compile: {e}")))
}

impl CompiledEntity {
    pub fn compile(def: EntityDef, version: i64) -> Result<CompiledEntity> {
        Ok(CompiledEntity {
            create: validator(&record_schema(&def, true))?,
            update: validator(&record_schema(&def, false))?,
            layout: Layout::of(&def, version),
            def,
            version,
        })
    }
}

/// Compiled entities by name.
#[derive(Default)]
pub struct SchemaCache {
    entries: RwLock<HashMap<String, Arc<CompiledEntity>>>,
}

impl SchemaCache {
    /// The current compiled definition of an entity: one indexed read confirms the cached copy
    /// is the stored version; otherwise it is loaded and compiled again.
    pub async fn get(&self, db: &Db, name: &str) -> Result<Arc<CompiledEntity>> {
        let not_found = || Error::not_found(format!("there is no entity '{name}'"));
        let Some(version) = entities::version(&mut &*db, name).await? else {
            self.forget(name);
            return Err(not_found());
        };
        if let Some(hit) = self.cached(name)
            && hit.version == version
        {
            return Ok(hit);
        }
        let entity_name = EntityName::parse(name).map_err(|_| not_found())?;
        let stored = entities::get(&mut &*db, &entity_name)
            .await?
            .ok_or_else(not_found)?;
        let def = EntityDef::parse(&stored.definition).map_err(|errors| {
            Error::internal(format!(
                "stored definition of {name} is invalid: {errors:?}"
            ))
        })?;
        let compiled = Arc::new(CompiledEntity::compile(def, stored.version)?);
        self.entries
            .write()
            .map_err(|_| Error::internal("schema cache poisoned"))?
            .insert(name.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn cached(&self, name: &str) -> Option<Arc<CompiledEntity>> {
        self.entries.read().ok()?.get(name).cloned()
    }

    pub fn forget(&self, name: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(name);
        }
    }
}
