//! Reading one record (by id, with expansions) and its history, and what the read and write
//! paths share: the record's full JSON, ids, the entity a request works on, field diffs.

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value, json};

use super::output::{self, Expansion, Extras, Shape};
use crate::auth::{Access, Action};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::records;
use crate::store::{Executor, Row, history};

/// A record as returned, with its version for `ETag`.
#[derive(Debug)]
pub struct Saved {
    pub record: Value,
    pub version: i64,
}

pub(crate) fn saved(record: Value) -> Saved {
    let version = record["version"].as_i64().unwrap_or_default();
    Saved { record, version }
}

pub(crate) fn no_record(entity: &CompiledEntity, id: &str) -> Error {
    Error::not_found(format!("{} has no record '{id}'", entity.def.name))
}

/// Record ids are UUIDs; anything else cannot name a record.
pub(crate) fn parse_id(entity: &CompiledEntity, id: &str) -> Result<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| no_record(entity, id))
}

/// The entity and the catalog it belongs to, for one request.
#[derive(Clone)]
pub struct Target {
    pub catalog: Arc<Catalog>,
    pub entity: Arc<CompiledEntity>,
}

pub async fn target(ctx: &Context, access: &Access, entity: &str) -> Result<Target> {
    let catalog = ctx
        .schema
        .catalog_as_of(&ctx.db, access.schema_epoch())
        .await?;
    let entity = catalog.entity(entity)?;
    Ok(Target { catalog, entity })
}

/// One record as JSON with everything it carries (links, tags).
pub(crate) async fn full_json(
    ex: &mut impl Executor,
    entity: &CompiledEntity,
    row: Row,
) -> Result<Value> {
    let rows = vec![row];
    let extras =
        output::extras(ex, entity, &entity.layout.full, &rows, &Shape::full(), &[]).await?;
    let row = rows.into_iter().next().unwrap_or_default();
    Ok(output::record(
        entity,
        &entity.layout.full,
        row,
        &Shape::full(),
        &extras,
    ))
}

/// Field-level changes between two versions of a record, for its history.
pub(crate) fn diff(entity: &CompiledEntity, old: Option<&Value>, new: Option<&Value>) -> Value {
    if let (None, Some(Value::Object(new))) = (old, new) {
        return Value::Object(created_changes(entity, new));
    }
    let mut changes = Map::new();
    for key in tracked(entity) {
        let before = old.and_then(|o| o.get(key)).cloned().unwrap_or(Value::Null);
        let after = new.and_then(|n| n.get(key)).cloned().unwrap_or(Value::Null);
        let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        if before != after && !(empty(&before) && empty(&after)) {
            changes.insert(key.to_owned(), json!({"old": before, "new": after}));
        }
    }
    Value::Object(changes)
}

/// The keys a history follows: the fields, then owner and department, then tags (the order
/// `output::record` writes them in).
fn tracked(entity: &CompiledEntity) -> impl Iterator<Item = &str> {
    entity
        .def
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .chain(["owner", "department", "tags"])
}

/// The changes of a new record: every value it has is a change from nothing,
/// `{"field": {"old": null, "new": …}}`.
pub(crate) fn created_changes(
    entity: &CompiledEntity,
    new: &Map<String, Value>,
) -> Map<String, Value> {
    // Each change is a copy of `{"old": null, "new": null}` with its second value set: a copy
    // of a map takes its keys' hashes along, where inserting hashes each key again.
    static NOTHING_TO_NULL: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        let mut change = Map::with_capacity(2);
        change.insert("old".to_owned(), Value::Null);
        change.insert("new".to_owned(), Value::Null);
        change
    });
    created_values(entity, new)
        .into_iter()
        .map(|(key, value)| {
            let mut change = NOTHING_TO_NULL.clone();
            if let Some(new) = change.values_mut().nth(1) {
                *new = value.clone();
            }
            (key.to_owned(), Value::Object(change))
        })
        .collect()
}

/// [`created_changes`] as the JSON text a history entry keeps, written straight from the
/// record: a batch of an import writes a million of them, and nothing else reads them as
/// values (its events leave their changes to [`created_changes`] when a subscriber asks).
pub(crate) fn created_changes_text(entity: &CompiledEntity, new: &Map<String, Value>) -> String {
    struct Change<'v>(&'v Value);
    impl serde::Serialize for Change<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("old", &())?;
            map.serialize_entry("new", self.0)?;
            map.end()
        }
    }
    struct Changes<'v>(Vec<(&'v str, &'v Value)>);
    impl serde::Serialize for Changes<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(key, value)| (key, Change(value))))
        }
    }
    // Plain strings, numbers and arrays always serialize.
    serde_json::to_string(&Changes(created_values(entity, new))).unwrap_or_default()
}

/// The values of a new record that are changes from nothing (not null, not an empty list),
/// with their keys, in [`tracked`] order. The record's entries are walked in their own order
/// (the order [`tracked`] follows) rather than looked up by name, as each lookup hashes the
/// key; a record in another order is looked up.
fn created_values<'r>(
    entity: &CompiledEntity,
    new: &'r Map<String, Value>,
) -> Vec<(&'r str, &'r Value)> {
    let is_change =
        |value: &Value| !(value.is_null() || value.as_array().is_some_and(Vec::is_empty));
    let mut values = Vec::with_capacity(new.len());
    let mut wanted = tracked(entity).peekable();
    for (key, value) in new {
        if wanted.peek() == Some(&key.as_str()) {
            wanted.next();
            if is_change(value) {
                values.push((key.as_str(), value));
            }
        }
    }
    if wanted.peek().is_none() {
        return values;
    }
    values.clear();
    for key in tracked(entity) {
        if let Some((key, value)) = new.get_key_value(key).filter(|(_, v)| is_change(v)) {
            values.push((key.as_str(), value));
        }
    }
    values
}

pub async fn get(
    ctx: &Context,
    access: &Access,
    entity: &str,
    id: &str,
    expand: Option<&str>,
    include_trashed: bool,
) -> Result<Saved> {
    let target = target(ctx, access, entity).await?;
    get_in(&mut &ctx.db, &target, access, id, expand, include_trashed).await
}

/// Reads one record through `ex` (the pools, or a script run's transaction).
pub(crate) async fn get_in(
    ex: &mut impl Executor,
    target: &Target,
    access: &Access,
    id: &str,
    expand: Option<&str>,
    include_trashed: bool,
) -> Result<Saved> {
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let expansions: Vec<Expansion> = match expand {
        Some(spec) => output::expansions(spec, entity, &target.catalog, access)?,
        None => Vec::new(),
    };
    let scope = access.records(entity.def.name.as_str(), Action::Read);
    let row = records::get_in(ex, &entity.layout, &id, include_trashed, &scope)
        .await?
        .ok_or_else(|| no_record(entity, &id))?;
    let shape = Shape::readable(entity, access);
    let rows = vec![row];
    let extras: Extras =
        output::extras(ex, entity, &entity.layout.full, &rows, &shape, &expansions).await?;
    let row = rows.into_iter().next().unwrap_or_default();
    Ok(saved(output::record(
        entity,
        &entity.layout.full,
        row,
        &shape,
        &extras,
    )))
}

pub async fn history(
    ctx: &Context,
    access: &Access,
    entity: &str,
    id: &str,
    limit: Option<i64>,
) -> Result<Value> {
    let target = target(ctx, access, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let limit = match limit {
        None => 100,
        Some(n) if (1..=1_000).contains(&n) => n,
        Some(_) => return Err(Error::bad_parameter("limit", "must be between 1 and 1000")),
    };
    let name = entity.def.name.as_str();
    let scope = access.records(name, Action::Read);
    let mut db = &ctx.db;
    let visible = match records::state(&mut db, &entity.layout, &id).await? {
        Some(_) => records::get_in(&mut db, &entity.layout, &id, true, &scope)
            .await?
            .is_some(),
        None => access.scope(name, Action::Read) == crate::auth::Scope::All,
    };
    if !visible {
        return Err(no_record(entity, &id));
    }
    let entries = history::of(&mut db, name, &id, limit).await?;
    if entries.is_empty()
        && records::state(&mut db, &entity.layout, &id)
            .await?
            .is_none()
    {
        return Err(no_record(entity, &id));
    }
    let shape = Shape::readable(entity, access);
    let items: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut changes = e.changes;
            shape.strip(&mut changes);
            json!({
                "id": e.id,
                "action": e.action,
                "actor": e.actor,
                "at": crate::store::value::format_datetime(&e.at),
                "changes": changes,
            })
        })
        .collect();
    Ok(json!({ "items": items }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::definition::EntityDef;

    fn deal() -> CompiledEntity {
        let def = EntityDef::parse(&json!({
            "name": "deal",
            "label": {"en": "Deal", "zh-CN": "交易"},
            "schema": {"type": "object", "properties": {
                "name": {"x-kind": "text", "x-label": {"en": "Name", "zh-CN": "名称"}},
                "stage": {"x-kind": "text", "x-label": {"en": "Stage", "zh-CN": "阶段"}}
            }}
        }))
        .unwrap();
        CompiledEntity::compile(def, 1).unwrap()
    }

    #[test]
    fn a_new_records_changes_are_its_values_in_either_order_as_values_and_as_text() {
        let entity = deal();
        let expected = json!({
            "name": {"old": null, "new": "Acme \"East\" 东区"},
            "owner": {"old": null, "new": "u1"},
            "tags": {"old": null, "new": ["vip"]}
        });
        // As `output::record` writes a record, system values between the fields.
        let in_order = json!({"id": "r1", "name": "Acme \"East\" 东区", "stage": null,
            "created_at": "t", "owner": "u1", "department": null, "version": 1,
            "tags": ["vip"]});
        let record = in_order.as_object().unwrap();
        let changes = created_changes(&entity, record);
        assert_eq!(Value::Object(changes.clone()), expected);
        assert_eq!(
            changes.keys().collect::<Vec<_>>(),
            ["name", "owner", "tags"]
        );
        assert_eq!(diff(&entity, None, Some(&in_order)), expected);
        // The history's text is what serializing the changes gives, byte for byte.
        assert_eq!(
            created_changes_text(&entity, record),
            serde_json::to_string(&changes).unwrap()
        );
        // Another order, and empty tags: looked up key by key, same order of changes.
        let shuffled = json!({"tags": [], "owner": "u1", "name": "Acme", "id": "r1",
            "amount": 5});
        let shuffled = shuffled.as_object().unwrap();
        let expected =
            json!({"name": {"old": null, "new": "Acme"}, "owner": {"old": null, "new": "u1"}});
        assert_eq!(Value::Object(created_changes(&entity, shuffled)), expected);
        assert_eq!(
            created_changes_text(&entity, shuffled),
            serde_json::to_string(&expected).unwrap()
        );
        // Nothing set: no changes.
        let empty = json!({"id": "r2", "name": null, "tags": []});
        assert_eq!(
            created_changes_text(&entity, empty.as_object().unwrap()),
            "{}"
        );
    }
}
