//! Compiled entities: a definition together with the JSON Schema validators for record
//! payloads and the table layout, cached per server and rebuilt when the stored version moves
//! (also when another server instance changed it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

use super::definition::{DRAFT_2020_12, EntityDef, FieldDef};
use super::names::{EntityName, FieldName};
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
    /// Formula fields in an order where each comes after the formulas it uses.
    pub formulas: Vec<FieldName>,
    /// Lookups in any entity that point at this one: (entity, field, is multi lookup).
    pub referrers: Vec<(EntityName, FieldName, bool)>,
    /// Rollups in any entity that aggregate this one: (entity, rollup field).
    pub rollups_over: Vec<(EntityName, FieldName)>,
    /// Positions in `def.fields` of the fields global search indexes, in order (asked of
    /// every record written, and each field's answer takes a lookup in its schema).
    pub searchable: Vec<usize>,
    /// The keys of a new record's JSON in order, each null: copied for every record created
    /// (`records::output::created`), a copy keeps the keys' hashes where inserting each key
    /// hashes it again.
    pub created_keys: Map<String, Value>,
}

/// The keys of a created record's JSON: `id`, the fields, the system fields but `deleted_at`,
/// and `tags` (as `records::output::record` writes them).
fn created_keys(def: &EntityDef) -> Map<String, Value> {
    std::iter::once("id")
        .chain(def.fields.iter().map(|f| f.name.as_str()))
        .chain(crate::store::records::pos::SHOWN.map(|(key, _)| key))
        .chain(std::iter::once("tags"))
        .map(|key| (key.to_owned(), Value::Null))
        .collect()
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
    properties.insert(
        "tags".into(),
        json!({"type": "array", "items": {"type": "string"}}),
    );
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
            formulas: formula_order(&def),
            referrers: Vec::new(),
            rollups_over: Vec::new(),
            searchable: (def.fields.iter().enumerate())
                .filter(|(_, f)| f.is_searchable())
                .map(|(i, _)| i)
                .collect(),
            created_keys: created_keys(&def),
            def,
            version,
        })
    }
}

/// Formulas sorted so that each comes after the formulas it reads.
fn formula_order(def: &EntityDef) -> Vec<FieldName> {
    let mut order: Vec<FieldName> = Vec::new();
    let formulas: Vec<&FieldDef> = def
        .fields
        .iter()
        .filter(|f| f.kind == crate::fields::Kind::Formula)
        .collect();
    while order.len() < formulas.len() {
        let before = order.len();
        for f in &formulas {
            if order.contains(&f.name) {
                continue;
            }
            let ready = f.formula_expr.as_ref().is_none_or(|e| {
                e.fields().iter().all(|(path, _)| {
                    !formulas.iter().any(|g| g.name.as_str() == path[0])
                        || order.iter().any(|o| o.as_str() == path[0])
                })
            });
            if ready {
                order.push(f.name.clone());
            }
        }
        if order.len() == before {
            break;
        }
    }
    order
}

/// Every entity, compiled, as of one schema epoch.
pub struct Catalog {
    pub epoch: i64,
    entities: HashMap<String, Arc<CompiledEntity>>,
    /// The installed templates, in name order: how the workspace groups entities.
    pub modules: Vec<Module>,
}

/// An installed template as the workspace sees it: a group of entities under a title.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    /// The title in each language (`{"en": …, "zh-CN": …}`), if the manifest has one.
    pub title: Option<serde_json::Value>,
    pub entities: Vec<String>,
}

impl Catalog {
    /// Every entity, by name.
    pub fn entities(&self) -> Vec<Arc<CompiledEntity>> {
        let mut all: Vec<Arc<CompiledEntity>> = self.entities.values().cloned().collect();
        all.sort_by(|a, b| a.def.name.as_str().cmp(b.def.name.as_str()));
        all
    }

    pub fn entity(&self, name: &str) -> Result<Arc<CompiledEntity>> {
        self.entities
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("there is no entity '{name}'")))
    }

    /// Every entity, in name order (menus, related lists).
    pub fn all(&self) -> Vec<Arc<CompiledEntity>> {
        let mut all: Vec<_> = self.entities.values().cloned().collect();
        all.sort_by(|a, b| a.def.name.as_str().cmp(b.def.name.as_str()));
        all
    }

    async fn load(db: &Db, epoch: i64) -> Result<Catalog> {
        Catalog::load_in(&mut &*db, epoch).await
    }

    /// Loads the catalog through any executor: inside a transaction, it sees the entities the
    /// transaction created.
    pub(crate) async fn load_in(
        ex: &mut impl crate::store::Executor,
        epoch: i64,
    ) -> Result<Catalog> {
        let mut compiled: Vec<CompiledEntity> = Vec::new();
        for stored in entities::list(ex).await? {
            let def = EntityDef::parse(&stored.definition).map_err(|errors| {
                Error::internal(format!(
                    "stored definition of {} is invalid: {errors:?}",
                    stored.name
                ))
            })?;
            compiled.push(CompiledEntity::compile(def, stored.version)?);
        }
        let mut referrers: HashMap<String, Vec<(EntityName, FieldName, bool)>> = HashMap::new();
        let mut rollups: HashMap<String, Vec<(EntityName, FieldName)>> = HashMap::new();
        for entity in &compiled {
            for field in &entity.def.fields {
                if let Some(target) = &field.target {
                    referrers.entry(target.to_string()).or_default().push((
                        entity.def.name.clone(),
                        field.name.clone(),
                        field.kind == crate::fields::Kind::MultiLookup,
                    ));
                }
                if let Some(spec) = &field.rollup {
                    rollups
                        .entry(spec.entity.to_string())
                        .or_default()
                        .push((entity.def.name.clone(), field.name.clone()));
                }
            }
        }
        let entities = compiled
            .into_iter()
            .map(|mut e| {
                let name = e.def.name.to_string();
                e.referrers = referrers.remove(&name).unwrap_or_default();
                e.rollups_over = rollups.remove(&name).unwrap_or_default();
                (name, Arc::new(e))
            })
            .collect();
        // Installing a template moves the schema epoch, so the modules stay as current as
        // the entities.
        let modules = crate::store::templates::installed(ex)
            .await?
            .into_iter()
            .map(|t| Module {
                entities: t.manifest["entities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect(),
                title: t.manifest.get("title").cloned(),
                name: t.name,
            })
            .collect();
        Ok(Catalog {
            epoch,
            entities,
            modules,
        })
    }
}

/// The current catalog, shared by every request of this server.
#[derive(Default)]
pub struct SchemaCache {
    current: RwLock<Option<Arc<Catalog>>>,
}

impl SchemaCache {
    /// The catalog as of the stored schema epoch: one indexed read per request confirms the
    /// cached one (so a change made through another server is seen at once); a new epoch
    /// reloads every definition.
    pub async fn catalog(&self, db: &Db) -> Result<Arc<Catalog>> {
        let epoch = entities::epoch(&mut &*db).await?;
        if let Some(current) = self.cached()
            && current.epoch == epoch
        {
            return Ok(current);
        }
        let fresh = Arc::new(Catalog::load(db, epoch).await?);
        if let Ok(mut slot) = self.current.write() {
            *slot = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// The catalog as of an epoch the caller has already read (when authenticating); asks the
    /// database only when the cached catalog is not of that epoch.
    pub async fn catalog_as_of(&self, db: &Db, epoch: Option<i64>) -> Result<Arc<Catalog>> {
        if let (Some(epoch), Some(current)) = (epoch, self.cached())
            && current.epoch == epoch
        {
            return Ok(current);
        }
        self.catalog(db).await
    }

    /// One entity of the current catalog (a 404 when there is none).
    pub async fn get(&self, db: &Db, name: &str) -> Result<Arc<CompiledEntity>> {
        self.catalog(db).await?.entity(name)
    }

    fn cached(&self) -> Option<Arc<Catalog>> {
        self.current.read().ok()?.clone()
    }

    /// Drops the cached catalog (after a change this server made).
    pub fn invalidate(&self) {
        if let Ok(mut slot) = self.current.write() {
            *slot = None;
        }
    }
}
