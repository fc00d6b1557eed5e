//! The records service: create, read, list, update and delete records of any entity. Handlers
//! call these; the store runs the SQL.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::{Value, json};

use super::input::{self, Input, Mode};
use super::output::{Links, load_links, record_json};
use crate::app::App;
use crate::error::{Error, FieldError, Result};
use crate::fields::Kind;
use crate::schema::compiled::CompiledEntity;
use crate::store::records;
use crate::store::{ColumnType, Ident, SqlValue, Tx, entities};

/// Page size when the caller does not say.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page a caller may ask for.
pub const MAX_LIMIT: i64 = 500;

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

fn no_record(entity: &CompiledEntity, id: &str) -> Error {
    Error::not_found(format!("{} has no record '{id}'", entity.def.name))
}

/// Record ids are UUIDs; anything else cannot name a record.
fn parse_id(entity: &CompiledEntity, id: &str) -> Result<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| no_record(entity, id))
}

/// Every referenced id must be a live record of its entity.
async fn check_references(tx: &mut Tx, input: &Input) -> Result<()> {
    let mut problems = Vec::new();
    for reference in &input.references {
        let found = records::existing_ids(tx, &reference.target, &reference.ids).await?;
        let missing: Vec<&String> = reference
            .ids
            .iter()
            .filter(|id| !found.contains(id))
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            problems.push(FieldError::new(
                reference.field.clone(),
                format!("there is no {} record {list}", reference.target),
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let message = format!(
            "{} points at records that do not exist",
            problems
                .iter()
                .map(|p| p.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Err(Error::invalid(message, problems))
    }
}

/// Unique fields: a taken value is a 409 that names the field and the record holding it.
async fn check_unique(tx: &mut Tx, entity: &CompiledEntity, input: &Input, id: &str) -> Result<()> {
    for (field, column, value) in &input.unique {
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

pub async fn create(app: &App, entity: &str, payload: &Value) -> Result<Saved> {
    let entity = app.schema.get(&app.db, entity).await?;
    let input = input::parse(&entity, payload, Mode::Create)?;
    let id = uuid::Uuid::now_v7().hyphenated().to_string();
    let now = SqlValue::Datetime(Utc::now());

    let mut tx = app.db.begin().await?;
    check_references(&mut tx, &input).await?;
    check_unique(&mut tx, &entity, &input, &id).await?;
    let mut values: Vec<(Ident, SqlValue)> = vec![
        (Ident::fixed("id"), SqlValue::Text(id.clone())),
        (Ident::fixed("created_at"), now.clone()),
        (Ident::fixed("updated_at"), now),
        (Ident::fixed("created_by"), SqlValue::Null(ColumnType::Id)),
        (
            Ident::fixed("owner"),
            input
                .owner
                .clone()
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
    for field in entity
        .def
        .fields
        .iter()
        .filter(|f| f.kind == Kind::Autonumber)
    {
        if let Some(pattern) = &field.autonumber {
            let n = entities::take_counter(&mut tx, &entity.def.name, field.name.as_str()).await?;
            values.push((
                Ident::column(&field.name),
                SqlValue::Text(pattern.format(n)),
            ));
        }
    }
    values.extend(input.columns.iter().cloned());
    records::insert(&mut tx, &entity.layout, values).await?;
    for (join, targets) in &input.links {
        records::set_links(&mut tx, join, &id, targets).await?;
    }
    let row = records::get(&mut tx, &entity.layout, &id)
        .await?
        .ok_or_else(|| Error::internal("inserted record not found"))?;
    tx.commit().await?;
    let links = links_of(&entity, &id, &input);
    Ok(saved(record_json(&entity, row, &links)))
}

/// The links just written, so a write needs no read-back of its join tables.
fn links_of(entity: &CompiledEntity, id: &str, input: &Input) -> Links {
    let mut links = Links::new();
    for (field, join) in &entity.layout.joins {
        if let Some((_, targets)) = input.links.iter().find(|(j, _)| j == join) {
            let mut by_source = HashMap::new();
            by_source.insert(id.to_owned(), targets.clone());
            links.insert(field.to_string(), by_source);
        }
    }
    links
}

pub async fn get(app: &App, entity: &str, id: &str) -> Result<Saved> {
    let entity = app.schema.get(&app.db, entity).await?;
    let id = parse_id(&entity, id)?;
    let mut db = &app.db;
    let row = records::get(&mut db, &entity.layout, &id)
        .await?
        .ok_or_else(|| no_record(&entity, &id))?;
    let rows = vec![row];
    let links = load_links(&mut db, &entity, &rows).await?;
    let row = rows.into_iter().next().unwrap_or_default();
    Ok(saved(record_json(&entity, row, &links)))
}

/// One page of records, newest first.
pub async fn list(app: &App, entity: &str, limit: Option<i64>) -> Result<Value> {
    let entity = app.schema.get(&app.db, entity).await?;
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(Error::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {n}"
            )));
        }
    };
    let mut db = &app.db;
    let rows = records::list_newest(&mut db, &entity.layout, limit).await?;
    let links = load_links(&mut db, &entity, &rows).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|row| record_json(&entity, row, &links))
        .collect();
    Ok(json!({"items": items, "next_cursor": null}))
}

/// The version a write must match: `If-Match` wins over a `version` in the body.
fn expected_version(if_match: Option<i64>, input: &Input) -> Option<i64> {
    if_match.or(input.version)
}

async fn stale_or_missing(
    tx: &mut Tx,
    entity: &CompiledEntity,
    id: &str,
    expected: Option<i64>,
) -> Result<Error> {
    Ok(match records::state(tx, &entity.layout, id).await? {
        Some((version, false)) => Error::PreconditionFailed(format!(
            "record {id} is at version {version}, not {}; reload it and apply the change again",
            expected.unwrap_or_default()
        )),
        _ => no_record(entity, id),
    })
}

pub async fn update(
    app: &App,
    entity: &str,
    id: &str,
    payload: &Value,
    if_match: Option<i64>,
) -> Result<Saved> {
    let entity = app.schema.get(&app.db, entity).await?;
    let id = parse_id(&entity, id)?;
    let input = input::parse(&entity, payload, Mode::Update)?;
    let expected = expected_version(if_match, &input);

    let mut tx = app.db.begin().await?;
    match records::state(&mut tx, &entity.layout, &id).await? {
        Some((version, false)) => {
            if expected.is_some_and(|e| e != version) {
                return Err(stale_or_missing(&mut tx, &entity, &id, expected).await?);
            }
        }
        _ => return Err(no_record(&entity, &id)),
    }
    check_references(&mut tx, &input).await?;
    check_unique(&mut tx, &entity, &input, &id).await?;
    let mut sets = input.columns.clone();
    if let Some(owner) = &input.owner {
        sets.push((Ident::fixed("owner"), owner.clone()));
    }
    if let Some(department) = &input.department {
        sets.push((Ident::fixed("department"), department.clone()));
    }
    let now = SqlValue::Datetime(Utc::now());
    let Some(row) = records::update(&mut tx, &entity.layout, &id, sets, now, expected).await?
    else {
        return Err(stale_or_missing(&mut tx, &entity, &id, expected).await?);
    };
    for (join, targets) in &input.links {
        records::set_links(&mut tx, join, &id, targets).await?;
    }
    let rows = vec![row];
    let links = load_links(&mut tx, &entity, &rows).await?;
    tx.commit().await?;
    let row = rows.into_iter().next().unwrap_or_default();
    Ok(saved(record_json(&entity, row, &links)))
}

/// Moves a record to the trash.
pub async fn delete(app: &App, entity: &str, id: &str, if_match: Option<i64>) -> Result<()> {
    let entity = app.schema.get(&app.db, entity).await?;
    let id = parse_id(&entity, id)?;
    let mut tx = app.db.begin().await?;
    let now = SqlValue::Datetime(Utc::now());
    if !records::trash(&mut tx, &entity.layout, &id, now, if_match).await? {
        return Err(stale_or_missing(&mut tx, &entity, &id, if_match).await?);
    }
    tx.commit().await?;
    Ok(())
}
