//! The records service for one record at a time: create, read, update, trash, restore, erase,
//! copy, history. Every write runs in one transaction with its history row, its formulas and
//! the rollups it moves.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::compute;
use super::input::{self, Input, Mode};
use super::output::{self, Expansion, Extras, Shape};
use crate::app::App;
use crate::error::{Error, FieldError, Result};
use crate::fields::{Kind, ResultKind, RollupOp};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::records::{self, pos};
use crate::store::{ColumnType, Executor, Ident, Row, SqlValue, Tx, entities, history, tags};

/// A record as returned, with its version for `ETag`.
#[derive(Debug)]
pub struct Saved {
    pub record: Value,
    pub version: i64,
}

fn saved(record: Value) -> Saved {
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
pub(crate) struct Target {
    pub catalog: Arc<Catalog>,
    pub entity: Arc<CompiledEntity>,
}

pub(crate) async fn target(app: &App, entity: &str) -> Result<Target> {
    let catalog = app.schema.catalog(&app.db).await?;
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
    let extras = output::extras(ex, entity, &entity.layout.full, &rows, &Shape::Full, &[]).await?;
    let row = rows.into_iter().next().unwrap_or_default();
    Ok(output::record(
        entity,
        &entity.layout.full,
        row,
        &Shape::Full,
        &extras,
    ))
}

/// Field-level changes between two versions of a record, for its history.
pub(crate) fn diff(entity: &CompiledEntity, old: Option<&Value>, new: Option<&Value>) -> Value {
    let mut changes = Map::new();
    let keys =
        entity
            .def
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .chain(["owner", "department", "tags"]);
    for key in keys {
        let before = old.and_then(|o| o.get(key)).cloned().unwrap_or(Value::Null);
        let after = new.and_then(|n| n.get(key)).cloned().unwrap_or(Value::Null);
        let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        if before != after && !(empty(&before) && empty(&after)) {
            changes.insert(key.to_owned(), json!({"old": before, "new": after}));
        }
    }
    Value::Object(changes)
}

/// Every referenced id must be a live record of its entity.
pub(crate) async fn check_references(tx: &mut Tx, input: &Input) -> Result<()> {
    let mut problems = Vec::new();
    for reference in &input.references {
        let found = records::existing_ids(tx, &reference.target, &reference.ids).await?;
        let missing: Vec<&str> = reference
            .ids
            .iter()
            .filter(|id| !found.contains(id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            problems.push(FieldError::new(
                reference.field.clone(),
                format!(
                    "there is no {} record {}",
                    reference.target,
                    missing.join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    Err(Error::invalid(
        format!("{} points at records that do not exist", fields.join(", ")),
        problems,
    ))
}

/// A unique value already taken is a 409 naming the field and the record that holds it.
pub(crate) async fn check_unique(
    tx: &mut Tx,
    entity: &CompiledEntity,
    values: &[(String, Ident, SqlValue)],
    id: &str,
) -> Result<()> {
    for (field, column, value) in values {
        if let Some(holder) =
            records::holder_of(tx, &entity.layout, column, value.clone(), id).await?
        {
            let message = format!("{field} must be unique; record {holder} already has this value");
            return Err(Error::conflict(
                message.clone(),
                vec![
                    FieldError::new(field.clone(), message)
                        .with_examples(vec![json!({"id": holder})]),
                ],
            ));
        }
    }
    Ok(())
}

/// Unique fields of a stored row that hold a value (checked again when it comes back from the
/// trash).
fn unique_values(entity: &CompiledEntity, row: &Row) -> Vec<(String, Ident, SqlValue)> {
    entity
        .layout
        .full
        .fields
        .iter()
        .filter_map(|(name, index)| {
            let field = entity.def.field(name.as_str())?;
            let value = row.get(*index)?;
            (field.has_unique_index() && !value.is_null())
                .then(|| (name.to_string(), Ident::column(name), value.clone()))
        })
        .collect()
}

/// What a new record's rollups start at: nothing points at it yet.
fn initial_rollups(entity: &CompiledEntity) -> Vec<(Ident, SqlValue)> {
    entity
        .def
        .fields
        .iter()
        .filter_map(|f| {
            let spec = f.rollup.as_ref()?;
            let ty = f.column_type()?;
            let value = match (spec.op, f.result) {
                (RollupOp::Count | RollupOp::Sum, Some(ResultKind::Integer)) => {
                    SqlValue::Integer(0)
                }
                (RollupOp::Sum, Some(ResultKind::Decimal)) => {
                    SqlValue::Decimal(rust_decimal::Decimal::ZERO, f.scale)
                }
                _ => SqlValue::Null(ty),
            };
            Some((Ident::column(&f.name), value))
        })
        .collect()
}

pub(crate) async fn write_tags(
    tx: &mut Tx,
    entity: &CompiledEntity,
    id: &str,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    tags::ensure(tx, names, now).await?;
    tags::set(tx, entity.def.name.as_str(), id, names).await
}

/// Creates a record inside a transaction; returns its row and JSON.
pub(crate) async fn insert(
    tx: &mut Tx,
    target: &Target,
    input: &Input,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Row, Value)> {
    let entity = &target.entity;
    let id = uuid::Uuid::now_v7().hyphenated().to_string();
    check_references(tx, input).await?;
    check_unique(tx, entity, &input.unique, &id).await?;
    let at = SqlValue::Datetime(now);
    let mut values: Vec<(Ident, SqlValue)> = vec![
        (Ident::fixed("id"), SqlValue::Text(id.clone())),
        (Ident::fixed("created_at"), at.clone()),
        (Ident::fixed("updated_at"), at),
        (
            Ident::fixed("created_by"),
            actor.map_or(SqlValue::Null(ColumnType::Id), |a| {
                SqlValue::Text(a.to_owned())
            }),
        ),
        (
            Ident::fixed("owner"),
            input
                .owner
                .clone()
                .or_else(|| actor.map(|a| SqlValue::Text(a.to_owned())))
                .unwrap_or(SqlValue::Null(ColumnType::Id)),
        ),
        (
            Ident::fixed("department"),
            input
                .department
                .clone()
                .unwrap_or(SqlValue::Null(ColumnType::Id)),
        ),
        (Ident::fixed("version"), SqlValue::Integer(1)),
    ];
    let mut fields: Vec<(Ident, SqlValue)> = input.columns.clone();
    for field in entity
        .def
        .fields
        .iter()
        .filter(|f| f.kind == Kind::Autonumber)
    {
        if let Some(pattern) = &field.autonumber {
            let n = entities::take_counter(tx, &entity.def.name, field.name.as_str()).await?;
            fields.push((
                Ident::column(&field.name),
                SqlValue::Text(pattern.format(n)),
            ));
        }
    }
    fields.extend(initial_rollups(entity));
    let mut by_name = fields
        .iter()
        .map(|(c, v)| (c.as_str().to_owned(), v.clone()))
        .collect();
    fields.extend(compute::formulas(entity, &mut by_name, now));
    values.extend(fields);
    // The stored row, in read order, from what is written (no read-back).
    let row: Row = entity
        .layout
        .full
        .columns()
        .iter()
        .map(|(column, ty)| {
            values
                .iter()
                .find(|(c, _)| c == column)
                .map_or(SqlValue::Null(*ty), |(_, v)| v.clone())
        })
        .collect();
    records::insert(tx, &entity.layout, values).await?;
    for (join, targets) in &input.links {
        records::set_links(tx, join, &id, targets).await?;
    }
    let tags = input.tags.clone().unwrap_or_default();
    if !tags.is_empty() {
        write_tags(tx, entity, &id, &tags, now).await?;
    }
    let extras = Extras::written(entity, &id, &input.links, &tags);
    let record = output::record(
        entity,
        &entity.layout.full,
        row.clone(),
        &Shape::Full,
        &extras,
    );
    history::record(
        tx,
        entity.def.name.as_str(),
        &id,
        "create",
        actor,
        now,
        &diff(entity, None, Some(&record)),
    )
    .await?;
    compute::ripple(tx, &target.catalog, entity, &[(None, Some(&row))], now).await?;
    Ok((row, record))
}

pub async fn create(app: &App, entity: &str, payload: &Value) -> Result<Saved> {
    let target = target(app, entity).await?;
    let input = input::parse(&target.entity, payload, Mode::Create)?;
    let now = Utc::now();
    let record = app
        .db
        .write(move |tx| {
            Box::pin(async move { Ok(insert(tx, &target, &input, None, now).await?.1) })
        })
        .await?;
    Ok(saved(record))
}

/// Reads one record; `expand` names lookups to include. Trashed records are found only when
/// asked for.
pub async fn get(
    app: &App,
    entity: &str,
    id: &str,
    expand: Option<&str>,
    include_trashed: bool,
) -> Result<Saved> {
    let target = target(app, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let expansions: Vec<Expansion> = match expand {
        Some(spec) => output::expansions(spec, entity, &target.catalog)
            .map_err(|m| Error::bad_parameter("expand", m))?,
        None => Vec::new(),
    };
    let mut db = &app.db;
    let row = records::get(&mut db, &entity.layout, &id, include_trashed)
        .await?
        .ok_or_else(|| no_record(entity, &id))?;
    let rows = vec![row];
    let extras: Extras = output::extras(
        &mut db,
        entity,
        &entity.layout.full,
        &rows,
        &Shape::Full,
        &expansions,
    )
    .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    Ok(saved(output::record(
        entity,
        &entity.layout.full,
        row,
        &Shape::Full,
        &extras,
    )))
}

fn stale(id: &str, version: i64, expected: i64) -> Error {
    Error::PreconditionFailed(format!(
        "record {id} is at version {version}, not {expected}; reload it and apply the change again"
    ))
}

/// Applies a checked payload to a live record inside a transaction; returns the new JSON.
pub(crate) async fn apply_update(
    tx: &mut Tx,
    target: &Target,
    id: &str,
    input: &Input,
    expected: Option<i64>,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Row, Value, Row)> {
    let entity = &target.entity;
    let old = records::get(tx, &entity.layout, id, false)
        .await?
        .ok_or_else(|| no_record(entity, id))?;
    let current = old[pos::VERSION].as_i64().unwrap_or_default();
    if let Some(expected) = expected
        && expected != current
    {
        return Err(stale(id, current, expected));
    }
    check_references(tx, input).await?;
    check_unique(tx, entity, &input.unique, id).await?;
    let old_json = full_json(tx, entity, old.clone()).await?;

    let mut sets = input.columns.clone();
    if let Some(owner) = &input.owner {
        sets.push((Ident::fixed("owner"), owner.clone()));
    }
    if let Some(department) = &input.department {
        sets.push((Ident::fixed("department"), department.clone()));
    }
    let mut values = compute::row_values(entity, &old);
    for (column, value) in &input.columns {
        values.insert(column.as_str().to_owned(), value.clone());
    }
    sets.extend(compute::formulas(entity, &mut values, now));
    let new = records::update(
        tx,
        &entity.layout,
        id,
        sets,
        SqlValue::Datetime(now),
        Some(current),
    )
    .await?
    .ok_or_else(|| stale(id, current + 1, current))?;
    for (join, targets) in &input.links {
        records::set_links(tx, join, id, targets).await?;
    }
    if let Some(names) = &input.tags {
        write_tags(tx, entity, id, names, now).await?;
    }
    let new_json = full_json(tx, entity, new.clone()).await?;
    let changes = diff(entity, Some(&old_json), Some(&new_json));
    if changes.as_object().is_some_and(|c| !c.is_empty()) {
        history::record(
            tx,
            entity.def.name.as_str(),
            id,
            "update",
            actor,
            now,
            &changes,
        )
        .await?;
    }
    compute::ripple(
        tx,
        &target.catalog,
        entity,
        &[(Some(&old), Some(&new))],
        now,
    )
    .await?;
    Ok((new, new_json, old))
}

pub async fn update(
    app: &App,
    entity: &str,
    id: &str,
    payload: &Value,
    if_match: Option<i64>,
) -> Result<Saved> {
    let target = target(app, entity).await?;
    let id = parse_id(&target.entity, id)?;
    let input = input::parse(&target.entity, payload, Mode::Update)?;
    let expected = if_match.or(input.version);
    let now = Utc::now();
    let record = app
        .db
        .write(move |tx| {
            Box::pin(async move {
                Ok(apply_update(tx, &target, &id, &input, expected, None, now)
                    .await?
                    .1)
            })
        })
        .await?;
    Ok(saved(record))
}

/// Moves a live record to the trash inside a transaction.
pub(crate) async fn trash(
    tx: &mut Tx,
    target: &Target,
    id: &str,
    expected: Option<i64>,
    actor: Option<&str>,
    now: DateTime<Utc>,
    details: Value,
) -> Result<Row> {
    let entity = &target.entity;
    let Some(old) = records::get(tx, &entity.layout, id, false).await? else {
        return Err(no_record(entity, id));
    };
    let current = old[pos::VERSION].as_i64().unwrap_or_default();
    if let Some(expected) = expected
        && expected != current
    {
        return Err(stale(id, current, expected));
    }
    let new = records::set_trashed(
        tx,
        &entity.layout,
        id,
        true,
        SqlValue::Datetime(now),
        Some(current),
    )
    .await?
    .ok_or_else(|| stale(id, current + 1, current))?;
    history::record(
        tx,
        entity.def.name.as_str(),
        id,
        "delete",
        actor,
        now,
        &details,
    )
    .await?;
    compute::ripple(
        tx,
        &target.catalog,
        entity,
        &[(Some(&old), Some(&new))],
        now,
    )
    .await?;
    Ok(new)
}

/// `DELETE`: to the trash, or (`permanent`) erased for good — straight from the list or from
/// the trash.
pub async fn delete(
    app: &App,
    entity: &str,
    id: &str,
    if_match: Option<i64>,
    permanent: bool,
) -> Result<()> {
    let target = target(app, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let now = Utc::now();
    app.db
        .write(move |tx| {
            Box::pin(async move { delete_in(tx, &target, &id, if_match, permanent, now).await })
        })
        .await
}

async fn delete_in(
    tx: &mut Tx,
    target: &Target,
    id: &str,
    if_match: Option<i64>,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let entity = &target.entity;
    match records::state(tx, &entity.layout, id).await? {
        None => return Err(no_record(entity, id)),
        Some((_, false)) => {
            trash(tx, target, id, if_match, None, now, json!({})).await?;
        }
        Some((_, true)) if !permanent => return Err(no_record(entity, id)),
        Some((version, true)) => {
            if let Some(expected) = if_match
                && expected != version
            {
                return Err(stale(id, version, expected));
            }
        }
    }
    if permanent {
        let row = records::get(tx, &entity.layout, id, true).await?;
        let last = match row {
            Some(row) => full_json(tx, entity, row).await?,
            None => Value::Null,
        };
        records::erase(tx, &entity.layout, id).await?;
        history::record(
            tx,
            entity.def.name.as_str(),
            id,
            "erase",
            None,
            now,
            &diff(entity, Some(&last), None),
        )
        .await?;
    }
    Ok(())
}

/// Brings a record back from the trash (its unique values must still be free).
pub async fn restore(app: &App, entity: &str, id: &str) -> Result<Saved> {
    let target = target(app, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let now = Utc::now();
    let record = app
        .db
        .write(move |tx| Box::pin(async move { restore_in(tx, &target, &id, now).await }))
        .await?;
    Ok(saved(record))
}

async fn restore_in(tx: &mut Tx, target: &Target, id: &str, now: DateTime<Utc>) -> Result<Value> {
    let entity = &target.entity;
    let old = match records::get(tx, &entity.layout, id, true).await? {
        Some(row) if !row[pos::DELETED_AT].is_null() => row,
        Some(_) => {
            return Err(Error::conflict(
                format!("record {id} is not in the trash"),
                Vec::new(),
            ));
        }
        None => return Err(no_record(entity, id)),
    };
    check_unique(tx, entity, &unique_values(entity, &old), id).await?;
    let new = records::set_trashed(tx, &entity.layout, id, false, SqlValue::Datetime(now), None)
        .await?
        .ok_or_else(|| no_record(entity, id))?;
    history::record(
        tx,
        entity.def.name.as_str(),
        id,
        "restore",
        None,
        now,
        &json!({}),
    )
    .await?;
    compute::ripple(
        tx,
        &target.catalog,
        entity,
        &[(Some(&old), Some(&new))],
        now,
    )
    .await?;
    full_json(tx, entity, new).await
}

/// A new record with the same values (computed fields are computed anew), changed by
/// `overrides`.
pub async fn copy(app: &App, entity: &str, id: &str, overrides: &Value) -> Result<Saved> {
    let target = target(app, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let Some(overrides) = overrides
        .as_object()
        .cloned()
        .or_else(|| overrides.is_null().then(Map::new))
    else {
        return Err(Error::bad_request(
            "the body of a copy is an object of values to change",
        ));
    };
    let mut db = &app.db;
    let row = records::get(&mut db, &entity.layout, &id, false)
        .await?
        .ok_or_else(|| no_record(entity, &id))?;
    let source = full_json(&mut db, entity, row).await?;
    let mut payload = Map::new();
    for field in entity.def.fields.iter().filter(|f| !f.is_computed()) {
        let value = &source[field.name.as_str()];
        let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        if !empty {
            payload.insert(field.name.to_string(), value.clone());
        }
    }
    for key in ["owner", "department", "tags"] {
        if !source[key].is_null() {
            payload.insert(key.into(), source[key].clone());
        }
    }
    payload.extend(overrides);
    let input = input::parse(entity, &Value::Object(payload), Mode::Create)?;
    let source_id = id;
    let now = Utc::now();
    let record = app
        .db
        .write(move |tx| {
            Box::pin(async move {
                let (_, record) = insert(tx, &target, &input, None, now).await?;
                let entity = &target.entity;
                let new_id = record["id"].as_str().unwrap_or_default().to_owned();
                history::record(
                    tx,
                    entity.def.name.as_str(),
                    &new_id,
                    "copy",
                    None,
                    now,
                    &json!({"copied_from": source_id}),
                )
                .await?;
                Ok(record)
            })
        })
        .await?;
    Ok(saved(record))
}

/// A record's history, newest first (also of trashed and erased records).
pub async fn history(app: &App, entity: &str, id: &str, limit: Option<i64>) -> Result<Value> {
    let target = target(app, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let limit = match limit {
        None => 100,
        Some(n) if (1..=1_000).contains(&n) => n,
        Some(_) => return Err(Error::bad_parameter("limit", "must be between 1 and 1000")),
    };
    let mut db = &app.db;
    let entries = history::of(&mut db, entity.def.name.as_str(), &id, limit).await?;
    if entries.is_empty()
        && records::state(&mut db, &entity.layout, &id)
            .await?
            .is_none()
    {
        return Err(no_record(entity, &id));
    }
    let items: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "action": e.action,
                "actor": e.actor,
                "at": crate::store::value::format_datetime(&e.at),
                "changes": e.changes,
            })
        })
        .collect();
    Ok(json!({ "items": items }))
}
