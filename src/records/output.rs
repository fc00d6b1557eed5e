//! Stored rows back to the flat JSON records clients see: `id`, the fields in definition
//! order, the system fields and `tags`. Whatever a page needs beyond its rows — multi-lookup
//! links, tags, expanded related records — is loaded with one query per kind for the whole
//! page, never per record.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::auth::{Access, Action};
use crate::error::Result;
use crate::fields::{Kind, stored_to_json};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::records::{self, Projection, pos};
use crate::store::{Executor, Row, SqlValue, tags};

/// Which keys a record shows: every key the caller may read, or `id` plus a chosen few
/// (`?fields=`). Hidden fields never show.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    only: Option<HashSet<String>>,
    hidden: HashSet<String>,
}

impl Shape {
    /// Every key (the system's own view).
    pub fn full() -> Shape {
        Shape::default()
    }

    /// Every key the caller may read.
    pub fn readable(entity: &CompiledEntity, access: &Access) -> Shape {
        let name = entity.def.name.as_str();
        Shape {
            only: None,
            hidden: entity
                .def
                .fields
                .iter()
                .filter(|f| !access.can_read_field(name, f.name.as_str()))
                .map(|f| f.name.to_string())
                .collect(),
        }
    }

    /// Only these keys (and `id`).
    pub fn only(mut self, keys: HashSet<String>) -> Shape {
        self.only = Some(keys);
        self
    }

    pub fn shows(&self, key: &str) -> bool {
        if self.hidden.contains(key) {
            return false;
        }
        match &self.only {
            None => true,
            Some(keys) => key == "id" || keys.contains(key),
        }
    }

    /// Removes hidden keys from an object (history entries).
    pub fn strip(&self, value: &mut Value) {
        if let Some(map) = value.as_object_mut() {
            map.retain(|k, _| !self.hidden.contains(k));
        }
    }
}

/// What a page carries beside its rows.
#[derive(Default)]
pub struct Extras {
    /// field → record id → linked ids
    links: HashMap<String, HashMap<String, Vec<String>>>,
    tags: Option<HashMap<String, Vec<String>>>,
    /// field → (related id → related record)
    expanded: Vec<(String, bool, HashMap<String, Value>)>,
}

impl Extras {
    /// What a record just written carries, known without reading it back.
    pub fn written(
        entity: &CompiledEntity,
        id: &str,
        links: &[(crate::store::Ident, Vec<String>)],
        tags: &[String],
    ) -> Extras {
        let mut extras = Extras::default();
        for (field, join) in &entity.layout.joins {
            let targets = links
                .iter()
                .find(|(j, _)| j == join)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            extras
                .links
                .insert(field.to_string(), HashMap::from([(id.to_owned(), targets)]));
        }
        let mut tags = tags.to_vec();
        tags.sort();
        extras.tags = Some(HashMap::from([(id.to_owned(), tags)]));
        extras
    }
}

/// A relation to expand: a lookup or multi lookup field, the entity it points at, and what
/// of it the caller may see.
pub struct Expansion {
    pub field: String,
    pub multi: bool,
    pub target: Arc<CompiledEntity>,
    pub scope: crate::store::query::Condition,
    pub shape: Shape,
}

fn ids_of(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r[pos::ID].as_str().map(str::to_owned))
        .collect()
}

/// Loads links, tags and expansions for a page of rows.
pub async fn extras(
    ex: &mut impl Executor,
    entity: &CompiledEntity,
    projection: &Projection,
    rows: &[Row],
    shape: &Shape,
    expand: &[Expansion],
) -> Result<Extras> {
    let mut out = Extras::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let ids = ids_of(rows);
    for (field, join) in &entity.layout.joins {
        let wanted =
            shape.shows(field.as_str()) || expand.iter().any(|e| e.field == field.as_str());
        if !wanted {
            continue;
        }
        let mut by_source: HashMap<String, Vec<String>> = HashMap::new();
        for (source, target) in records::links(ex, join, &ids).await? {
            by_source.entry(source).or_default().push(target);
        }
        out.links.insert(field.to_string(), by_source);
    }
    if shape.shows("tags") {
        out.tags = Some(tags::of_records(ex, entity.def.name.as_str(), &ids).await?);
    }
    for expansion in expand {
        let related: Vec<String> = if expansion.multi {
            let mut seen = HashSet::new();
            out.links
                .get(&expansion.field)
                .into_iter()
                .flat_map(|m| m.values().flatten())
                .filter(|id| seen.insert((*id).clone()))
                .cloned()
                .collect()
        } else {
            let index = projection
                .fields
                .iter()
                .find(|(n, _)| n.as_str() == expansion.field)
                .map(|(_, i)| *i);
            let mut seen = HashSet::new();
            rows.iter()
                .filter_map(|r| index.and_then(|i| r[i].as_str()))
                .filter(|id| seen.insert((*id).to_owned()))
                .map(str::to_owned)
                .collect()
        };
        let target = &expansion.target;
        let found = records::get_many_in(ex, &target.layout, &related, &expansion.scope).await?;
        let by_id = found
            .into_iter()
            .map(|row| {
                let id = row[pos::ID].as_str().unwrap_or_default().to_owned();
                let value = record(
                    target,
                    &target.layout.full,
                    row,
                    &expansion.shape,
                    &Extras::default(),
                );
                (id, value)
            })
            .collect();
        out.expanded
            .push((expansion.field.clone(), expansion.multi, by_id));
    }
    Ok(out)
}

fn take(row: &mut [Option<SqlValue>], index: usize) -> Value {
    row.get_mut(index)
        .and_then(Option::take)
        .map_or(Value::Null, stored_to_json)
}

/// One record as JSON.
pub fn record(
    entity: &CompiledEntity,
    projection: &Projection,
    row: Row,
    shape: &Shape,
    extras: &Extras,
) -> Value {
    let mut row: Vec<Option<SqlValue>> = row.into_iter().map(Some).collect();
    let id = take(&mut row, pos::ID);
    let id_text = id.as_str().unwrap_or_default().to_owned();
    // The id, the fields, the seven system values and the tags.
    let mut out = Map::with_capacity(entity.def.fields.len() + 9);
    out.insert("id".into(), id);
    // The projection lists its fields in the entity's order: each is looked for from where
    // the one before was found, not from the start.
    let mut next = 0;
    let projected = &projection.fields;
    for field in &entity.def.fields {
        let name = field.name.as_str();
        if !shape.shows(name) {
            continue;
        }
        let value = if field.kind == Kind::MultiLookup {
            let targets = extras
                .links
                .get(name)
                .and_then(|by| by.get(&id_text))
                .cloned()
                .unwrap_or_default();
            json!(targets)
        } else {
            let found = super::position_from(projected, next, |(n, _)| n.as_str() == name);
            if let Some(i) = found {
                next = i + 1;
            }
            match found.map(|i| &projected[i]) {
                Some((_, index)) => match row.get_mut(*index).and_then(Option::take) {
                    Some(v) => field.kind.field_type().to_json(field, v),
                    None => Value::Null,
                },
                None => Value::Null,
            }
        };
        out.insert(name.to_owned(), value);
    }
    for (name, index) in pos::SHOWN {
        if shape.shows(name) {
            out.insert(name.into(), take(&mut row, index));
        }
    }
    let deleted_at = take(&mut row, pos::DELETED_AT);
    if !deleted_at.is_null() {
        out.insert("deleted_at".into(), deleted_at);
    }
    if let Some(tags) = &extras.tags {
        out.insert(
            "tags".into(),
            json!(tags.get(&id_text).cloned().unwrap_or_default()),
        );
    }
    if !extras.expanded.is_empty() {
        let mut expanded = Map::new();
        for (field, multi, by_id) in &extras.expanded {
            let value = if *multi {
                let ids = extras
                    .links
                    .get(field)
                    .and_then(|by| by.get(&id_text))
                    .cloned()
                    .unwrap_or_default();
                Value::Array(ids.iter().filter_map(|i| by_id.get(i).cloned()).collect())
            } else {
                out.get(field)
                    .and_then(Value::as_str)
                    .and_then(|i| by_id.get(i).cloned())
                    .unwrap_or(Value::Null)
            };
            expanded.insert(field.clone(), value);
        }
        out.insert("expand".into(), Value::Object(expanded));
    }
    Value::Object(out)
}

/// A record just created as JSON, from its row and the links and tags written with it: what
/// [`record`] makes of it with [`Shape::full`] and [`Extras::written`], filled into a copy of
/// the entity's keys (a batch makes one a row: inserting each key hashed it again).
pub fn created(
    entity: &CompiledEntity,
    row: &Row,
    links: &[(crate::store::Ident, Vec<String>)],
    tags: &[String],
) -> Value {
    // A new row is never deleted, so `deleted_at` (shown only when set) has no key here.
    debug_assert!(row.get(pos::DELETED_AT).is_none_or(SqlValue::is_null));
    let value_at = |i: usize| row.get(i).cloned().map_or(Value::Null, stored_to_json);
    let mut out = entity.created_keys.clone();
    let mut slots = out.values_mut();
    if let Some(slot) = slots.next() {
        *slot = value_at(pos::ID);
    }
    let columns = &entity.layout.full.fields;
    let mut next = 0;
    for field in &entity.def.fields {
        let Some(slot) = slots.next() else { break };
        let name = field.name.as_str();
        *slot = if field.kind == Kind::MultiLookup {
            let targets = entity
                .layout
                .joins
                .iter()
                .find(|(f, _)| f.as_str() == name)
                .and_then(|(_, join)| links.iter().find(|(j, _)| j == join))
                .map(|(_, targets)| targets.clone())
                .unwrap_or_default();
            json!(targets)
        } else {
            match super::position_from(columns, next, |(n, _)| n.as_str() == name) {
                Some(i) => {
                    next = i + 1;
                    row.get(columns[i].1).map_or(Value::Null, |v| {
                        field.kind.field_type().to_json(field, v.clone())
                    })
                }
                None => Value::Null,
            }
        };
    }
    for (_, index) in pos::SHOWN {
        if let Some(slot) = slots.next() {
            *slot = value_at(index);
        }
    }
    if let Some(slot) = slots.next() {
        let mut tags = tags.to_vec();
        tags.sort();
        *slot = json!(tags);
    }
    Value::Object(out)
}

/// Checks `?expand=` against the entity and the caller: readable lookups and multi lookups
/// into entities the caller may read (a 403 otherwise); related records outside the caller's
/// scope expand to nothing.
pub fn expansions(
    spec: &str,
    entity: &CompiledEntity,
    catalog: &Catalog,
    access: &Access,
) -> Result<Vec<Expansion>> {
    let bad = |m: String| crate::error::Error::bad_parameter("expand", m);
    let mut out: Vec<Expansion> = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let field = entity
            .def
            .field(name)
            .filter(|f| access.can_read_field(entity.def.name.as_str(), f.name.as_str()))
            .ok_or_else(|| {
                bad(format!(
                    "{} has no field '{name}' to expand",
                    entity.def.name
                ))
            })?;
        let target = match (&field.kind, &field.target) {
            (Kind::Lookup | Kind::MultiLookup, Some(target)) => catalog
                .entity(target.as_str())
                .map_err(|_| bad(format!("{name} points at a missing entity")))?,
            _ => {
                return Err(bad(format!(
                    "{name} is not a lookup, so it cannot be expanded"
                )));
            }
        };
        if out.iter().any(|e| e.field == name) {
            continue;
        }
        let target_name = target.def.name.to_string();
        access.require_action(&target_name, Action::Read)?;
        out.push(Expansion {
            field: name.to_owned(),
            multi: field.kind == Kind::MultiLookup,
            scope: access.records(&target_name, Action::Read),
            shape: Shape::readable(&target, access),
            target,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::definition::EntityDef;
    use crate::store::Ident;

    /// A new record's JSON made on a copy of the keys is the one the general way makes, with
    /// every kind of value, links and tags (and an empty multi lookup).
    #[test]
    fn a_created_record_is_what_a_read_of_it_shows() {
        let def = EntityDef::parse(&json!({
            "name": "deal",
            "label": {"en": "Deal", "zh-CN": "商机"},
            "schema": {"type": "object", "properties": {
                "title": {"x-kind": "text"},
                "amount": {"x-kind": "money"},
                "stage": {"x-kind": "select", "x-options": [{"value": "new"}]},
                "close": {"x-kind": "date"},
                "contacts": {"x-kind": "multi_lookup", "x-target": "contact"},
                "partners": {"x-kind": "multi_lookup", "x-target": "contact"},
                "won": {"x-kind": "boolean"}
            }, "required": ["title"]}
        }))
        .unwrap();
        let entity = CompiledEntity::compile(def, 1).unwrap();
        let id = "0190a0a0-0000-7000-8000-000000000001";
        let row: Row = entity
            .layout
            .full
            .columns()
            .iter()
            .map(|(column, ty)| match column.as_str() {
                "id" => SqlValue::Text(id.to_owned()),
                "created_at" | "updated_at" => SqlValue::Datetime(chrono::Utc::now()),
                "owner" => SqlValue::Text("0190a0a0-0000-7000-8000-0000000000aa".to_owned()),
                "version" => SqlValue::Integer(1),
                "title" => SqlValue::Text("Big deal".to_owned()),
                "amount" => SqlValue::Decimal(rust_decimal::Decimal::new(12345, 2), 2),
                "stage" => SqlValue::Text("new".to_owned()),
                "close" => SqlValue::Date(chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()),
                "won" => SqlValue::Boolean(true),
                _ => SqlValue::Null(*ty),
            })
            .collect();
        let contacts = entity.layout.joins[0].1.clone();
        let links: Vec<(Ident, Vec<String>)> = vec![(contacts, vec!["c1".into(), "c2".into()])];
        let tags = vec!["vip".to_owned(), "a-list".to_owned()];
        let general = record(
            &entity,
            &entity.layout.full,
            row.clone(),
            &Shape::full(),
            &Extras::written(&entity, id, &links, &tags),
        );
        let made = created(&entity, &row, &links, &tags);
        assert_eq!(made, general);
        // Same keys in the same order, not only the same map.
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&made), keys(&general));
        assert_eq!(made["contacts"], json!(["c1", "c2"]));
        assert_eq!(made["partners"], json!([]));
        assert_eq!(made["tags"], json!(["a-list", "vip"]));
        assert_eq!(made["amount"], json!("123.45"));
    }
}
