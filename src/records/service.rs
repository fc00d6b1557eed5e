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
use crate::auth::{Access, Action, Department};
use crate::automation::definition::Event;
use crate::automation::triggers;
use crate::error::{Error, FieldError, Result};
use crate::fields::{Kind, ResultKind, RollupOp};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::query::Condition;
use crate::store::records::{self, pos};
use crate::store::{ColumnType, Executor, Ident, Row, SqlValue, Tx, auth, entities, history, tags};

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
#[derive(Clone)]
pub(crate) struct Target {
    pub catalog: Arc<Catalog>,
    pub entity: Arc<CompiledEntity>,
}

pub(crate) async fn target(app: &App, access: &Access, entity: &str) -> Result<Target> {
    let catalog = app
        .schema
        .catalog_as_of(&app.db, access.schema_epoch())
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

/// Every referenced id must be a live record of its entity that the caller may read (a record
/// out of reach is as good as missing).
pub(crate) async fn check_references(tx: &mut Tx, input: &Input, access: &Access) -> Result<()> {
    let mut problems = Vec::new();
    for reference in &input.references {
        let scope = access.records(reference.target.as_str(), Action::Read);
        let found = records::existing_ids(tx, &reference.target, &reference.ids, &scope).await?;
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

/// A unique value already taken is a 409 naming the field, and the record that holds it when
/// the caller may read that record.
pub(crate) async fn check_unique(
    tx: &mut Tx,
    entity: &CompiledEntity,
    values: &[(String, Ident, SqlValue)],
    id: &str,
    access: &Access,
) -> Result<()> {
    for (field, column, value) in values {
        let Some(holder) =
            records::holder_of(tx, &entity.layout, column, value.clone(), id).await?
        else {
            continue;
        };
        let readable = access.records(entity.def.name.as_str(), Action::Read);
        let visible = records::get_in(tx, &entity.layout, &holder, false, &readable)
            .await?
            .is_some();
        let (message, examples) = if visible {
            (
                format!("{field} must be unique; record {holder} already has this value"),
                vec![json!({"id": holder})],
            )
        } else {
            (
                format!("{field} must be unique; another record already has this value"),
                Vec::new(),
            )
        };
        return Err(Error::conflict(
            message.clone(),
            vec![FieldError::new(field.clone(), message).with_examples(examples)],
        ));
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

/// A department id with its path in the tree, if the department exists.
async fn department(ex: &mut impl Executor, id: &str) -> Result<Option<Department>> {
    Ok(auth::department_by_id(ex, id).await?.map(|d| Department {
        id: d.id,
        path: d.path,
    }))
}

/// Settles a record's owner and department and checks the caller may place it there:
/// `requested` owner and department (each `None` when not given), and the current ones for a
/// reassignment. The department follows the owner unless it is given. A placement outside the
/// caller's scope for the action is a 422 naming the field.
async fn placement(
    ex: &mut impl Executor,
    access: &Access,
    entity: &str,
    action: Action,
    requested: (Option<&SqlValue>, Option<&SqlValue>),
    current: (Option<String>, Option<String>),
) -> Result<(Option<String>, Option<String>)> {
    let text = |v: Option<&SqlValue>| v.map(|v| v.as_str().map(str::to_owned));
    let (asked_owner, asked_department) = (text(requested.0), text(requested.1));
    let creating = action == Action::Create;
    let owner = match (&asked_owner, creating) {
        (Some(owner), _) => owner.clone(),
        (None, true) => access.actor_id().map(str::to_owned),
        (None, false) => current.0.clone(),
    };
    let mut problems = Vec::new();
    let me = access.actor_id();
    // The owner's user (not needed when it is the caller, whose department is known).
    let owner_row = match &owner {
        Some(id) if Some(id.as_str()) != me => {
            let user = auth::user_by_id(ex, id).await?;
            if asked_owner.is_some() && user.as_ref().is_none_or(|u| !u.active) {
                problems.push(FieldError::new(
                    "owner",
                    format!("there is no active user '{id}'"),
                ));
            }
            user
        }
        _ => None,
    };
    let my_department = access
        .actor()
        .and_then(|a| a.department.as_ref().map(|d| d.id.clone()));
    let owners_department = match (&owner_row, &owner) {
        (Some(user), _) => user.department_id.clone(),
        (None, Some(_)) => my_department.clone(),
        (None, None) => None,
    };
    let department_id = match (&asked_department, &asked_owner) {
        (Some(department), _) => department.clone(),
        // A new owner brings their department along; so does a new record.
        (None, Some(_)) => owners_department.clone(),
        (None, None) if creating => my_department.clone(),
        (None, None) => current.1.clone(),
    };
    let department = match &department_id {
        Some(id) => {
            let found = self::department(ex, id).await?;
            if found.is_none() {
                problems.push(FieldError::new(
                    "department",
                    format!("there is no department '{id}'"),
                ));
            }
            found
        }
        None => None,
    };
    let owner_department = match &owners_department {
        Some(d) => self::department(ex, d).await?,
        None => None,
    };
    let placed = access.may_place(
        entity,
        action,
        owner.as_deref(),
        owner_department.as_ref(),
        department.as_ref(),
    );
    if problems.is_empty() && !placed {
        let field = if asked_department.is_some() && asked_owner.is_none() {
            "department"
        } else {
            "owner"
        };
        problems.push(FieldError::new(
            field,
            "places the record outside the records you may work with",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::invalid(
            "the record cannot be placed there",
            problems,
        ));
    }
    Ok((owner, department_id))
}

/// A record the caller may read (404 otherwise) and act on (403 otherwise), inside `tx`.
pub(crate) async fn reachable(
    tx: &mut Tx,
    entity: &CompiledEntity,
    access: &Access,
    id: &str,
    action: Action,
    trashed: bool,
) -> Result<Row> {
    let name = entity.def.name.as_str();
    let readable = access.records(name, Action::Read);
    let Some(row) = records::get_in(tx, &entity.layout, id, trashed, &readable).await? else {
        return Err(no_record(entity, id));
    };
    if matches!(row[pos::DELETED_AT], SqlValue::Null(_)) == trashed {
        return Err(no_record(entity, id));
    }
    let allowed = access.records(name, action);
    if !matches!(allowed, Condition::True)
        && records::get_in(tx, &entity.layout, id, trashed, &allowed)
            .await?
            .is_none()
    {
        return Err(Error::Forbidden(format!(
            "you may read this {name} record but not {}",
            match action {
                Action::Update => "change it",
                Action::Delete => "delete or restore it",
                _ => "do that",
            }
        )));
    }
    Ok(row)
}

/// Creates a record inside a transaction; returns its row and JSON.
pub(crate) async fn insert(
    tx: &mut Tx,
    target: &Target,
    input: &Input,
    access: &Access,
    now: DateTime<Utc>,
) -> Result<(Row, Value)> {
    let entity = &target.entity;
    let actor = access.actor_id();
    let (owner, department) = placement(
        tx,
        access,
        entity.def.name.as_str(),
        Action::Create,
        (input.owner.as_ref(), input.department.as_ref()),
        (None, None),
    )
    .await?;
    let id = uuid::Uuid::now_v7().hyphenated().to_string();
    check_references(tx, input, access).await?;
    check_unique(tx, entity, &input.unique, &id, access).await?;
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
        (Ident::fixed("owner"), SqlValue::from(owner)),
        (Ident::fixed("department"), SqlValue::from(department)),
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
        &Shape::full(),
        &extras,
    );
    let changes = diff(entity, None, Some(&record));
    history::record(
        tx,
        entity.def.name.as_str(),
        &id,
        "create",
        actor,
        now,
        &changes,
    )
    .await?;
    compute::ripple(tx, &target.catalog, entity, &[(None, Some(&row))], now).await?;
    triggers::after_write(
        tx,
        target,
        access,
        Event::Created,
        &id,
        &record,
        None,
        &changes,
        now,
    )
    .await?;
    Ok((row, record))
}

pub async fn create(app: &App, access: &Access, entity: &str, payload: &Value) -> Result<Saved> {
    let target = target(app, access, entity).await?;
    access.require_action(target.entity.def.name.as_str(), Action::Create)?;
    let mut input = input::parse(&target.entity, payload, Mode::Create, access)?;
    for overlay in triggers::before_save(app, &target, Event::Created, payload, None).await? {
        input.overlay(overlay);
    }
    let now = Utc::now();
    let shape = Shape::readable(&target.entity, access);
    let caller = access.clone();
    let mut record = app
        .db
        .write(move |tx| {
            Box::pin(async move { Ok(insert(tx, &target, &input, &caller, now).await?.1) })
        })
        .await?;
    shape.strip(&mut record);
    Ok(saved(record))
}

/// Reads one record; `expand` names lookups to include. Trashed records are found only when
/// asked for. A record outside the caller's read scope does not exist for them.
pub async fn get(
    app: &App,
    access: &Access,
    entity: &str,
    id: &str,
    expand: Option<&str>,
    include_trashed: bool,
) -> Result<Saved> {
    let target = target(app, access, entity).await?;
    get_in(&mut &app.db, &target, access, id, expand, include_trashed).await
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

fn stale(id: &str, version: i64, expected: i64) -> Error {
    Error::PreconditionFailed(format!(
        "record {id} is at version {version}, not {expected}; reload it and apply the change again"
    ))
}

/// Applies a checked payload to a record the caller may change, inside a transaction; returns
/// the new row, its JSON and the old row.
pub(crate) async fn apply_update(
    tx: &mut Tx,
    target: &Target,
    access: &Access,
    id: &str,
    input: &Input,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(Row, Value, Row)> {
    let entity = &target.entity;
    let old = reachable(tx, entity, access, id, Action::Update, false).await?;
    let current = old[pos::VERSION].as_i64().unwrap_or_default();
    if let Some(expected) = expected
        && expected != current
    {
        return Err(stale(id, current, expected));
    }
    let mut sets = input.columns.clone();
    if input.owner.is_some() || input.department.is_some() {
        let (owner, department) = placement(
            tx,
            access,
            entity.def.name.as_str(),
            Action::Update,
            (input.owner.as_ref(), input.department.as_ref()),
            (
                old[pos::OWNER].as_str().map(str::to_owned),
                old[pos::DEPARTMENT].as_str().map(str::to_owned),
            ),
        )
        .await?;
        sets.push((Ident::fixed("owner"), SqlValue::from(owner)));
        sets.push((Ident::fixed("department"), SqlValue::from(department)));
    }
    check_references(tx, input, access).await?;
    check_unique(tx, entity, &input.unique, id, access).await?;
    let old_json = full_json(tx, entity, old.clone()).await?;
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
            access.actor_id(),
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
    if changes.as_object().is_some_and(|c| !c.is_empty()) {
        triggers::after_write(
            tx,
            target,
            access,
            Event::Updated,
            id,
            &new_json,
            Some(&old_json),
            &changes,
            now,
        )
        .await?;
    }
    Ok((new, new_json, old))
}

pub async fn update(
    app: &App,
    access: &Access,
    entity: &str,
    id: &str,
    payload: &Value,
    if_match: Option<i64>,
) -> Result<Saved> {
    let target = target(app, access, entity).await?;
    let id = parse_id(&target.entity, id)?;
    let now = Utc::now();
    let shape = Shape::readable(&target.entity, access);
    let caller = access.clone();
    let payload = payload.clone();
    // Before-save scripts see the record as it is now; the save then insists on that version.
    let (overlays, seen) = if triggers::before_save_listens(&target, &payload) {
        let current = get_in(&mut &app.db, &target, access, &id, None, false).await?;
        let overlays = triggers::before_save(
            app,
            &target,
            Event::Updated,
            &payload,
            Some(&current.record),
        )
        .await?;
        (overlays, Some(current.version))
    } else {
        (Vec::new(), None)
    };
    let mut record = app
        .db
        .write(move |tx| {
            Box::pin(async move {
                // A record out of reach is a 404 before anything is said about the payload.
                reachable(tx, &target.entity, &caller, &id, Action::Update, false).await?;
                let mut input = input::parse(&target.entity, &payload, Mode::Update, &caller)?;
                for overlay in overlays {
                    input.overlay(overlay);
                }
                let expected = if_match.or(input.version).or(seen);
                Ok(
                    apply_update(tx, &target, &caller, &id, &input, expected, now)
                        .await?
                        .1,
                )
            })
        })
        .await?;
    shape.strip(&mut record);
    Ok(saved(record))
}

/// Moves a record the caller may delete to the trash, inside a transaction.
pub(crate) async fn trash(
    tx: &mut Tx,
    target: &Target,
    access: &Access,
    id: &str,
    expected: Option<i64>,
    now: DateTime<Utc>,
    details: Value,
) -> Result<Row> {
    let entity = &target.entity;
    let old = reachable(tx, entity, access, id, Action::Delete, false).await?;
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
        access.actor_id(),
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
    if triggers::any_after(target, Event::Deleted) {
        let record = full_json(tx, entity, new.clone()).await?;
        triggers::after_write(
            tx,
            target,
            access,
            Event::Deleted,
            id,
            &record,
            None,
            &json!({}),
            now,
        )
        .await?;
    }
    Ok(new)
}

/// `DELETE`: to the trash, or (`permanent`) erased for good — straight from the list or from
/// the trash.
pub async fn delete(
    app: &App,
    access: &Access,
    entity: &str,
    id: &str,
    if_match: Option<i64>,
    permanent: bool,
) -> Result<()> {
    let target = target(app, access, entity).await?;
    let id = parse_id(&target.entity, id)?;
    let now = Utc::now();
    let caller = access.clone();
    app.db
        .write(move |tx| {
            Box::pin(
                async move { delete_in(tx, &target, &caller, &id, if_match, permanent, now).await },
            )
        })
        .await
}

pub(crate) async fn delete_in(
    tx: &mut Tx,
    target: &Target,
    access: &Access,
    id: &str,
    if_match: Option<i64>,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let entity = &target.entity;
    let trashed = match records::state(tx, &entity.layout, id).await? {
        None => return Err(no_record(entity, id)),
        Some((_, trashed)) => trashed,
    };
    if !trashed {
        trash(tx, target, access, id, if_match, now, json!({})).await?;
    } else if !permanent {
        return Err(no_record(entity, id));
    } else {
        let row = reachable(tx, entity, access, id, Action::Delete, true).await?;
        let version = row[pos::VERSION].as_i64().unwrap_or_default();
        if let Some(expected) = if_match
            && expected != version
        {
            return Err(stale(id, version, expected));
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
            access.actor_id(),
            now,
            &diff(entity, Some(&last), None),
        )
        .await?;
    }
    Ok(())
}

/// Brings a record back from the trash (its unique values must still be free).
pub async fn restore(app: &App, access: &Access, entity: &str, id: &str) -> Result<Saved> {
    let target = target(app, access, entity).await?;
    let id = parse_id(&target.entity, id)?;
    let now = Utc::now();
    let shape = Shape::readable(&target.entity, access);
    let caller = access.clone();
    let mut record = app
        .db
        .write(move |tx| Box::pin(async move { restore_in(tx, &target, &caller, &id, now).await }))
        .await?;
    shape.strip(&mut record);
    Ok(saved(record))
}

async fn restore_in(
    tx: &mut Tx,
    target: &Target,
    access: &Access,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Value> {
    let entity = &target.entity;
    if records::state(tx, &entity.layout, id)
        .await?
        .is_some_and(|(_, trashed)| !trashed)
    {
        return Err(Error::conflict(
            format!("record {id} is not in the trash"),
            Vec::new(),
        ));
    }
    let old = reachable(tx, entity, access, id, Action::Delete, true).await?;
    check_unique(tx, entity, &unique_values(entity, &old), id, access).await?;
    let new = records::set_trashed(tx, &entity.layout, id, false, SqlValue::Datetime(now), None)
        .await?
        .ok_or_else(|| no_record(entity, id))?;
    history::record(
        tx,
        entity.def.name.as_str(),
        id,
        "restore",
        access.actor_id(),
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

/// A new record with the same values (computed fields are computed anew, and the copy belongs
/// to the caller), changed by `overrides`.
pub async fn copy(
    app: &App,
    access: &Access,
    entity: &str,
    id: &str,
    overrides: &Value,
) -> Result<Saved> {
    let target = target(app, access, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    access.require_action(entity.def.name.as_str(), Action::Create)?;
    let Some(overrides) = overrides
        .as_object()
        .cloned()
        .or_else(|| overrides.is_null().then(Map::new))
    else {
        return Err(Error::bad_request(
            "the body of a copy is an object of values to change",
        ));
    };
    let scope = access.records(entity.def.name.as_str(), Action::Read);
    let mut db = &app.db;
    let row = records::get_in(&mut db, &entity.layout, &id, false, &scope)
        .await?
        .ok_or_else(|| no_record(entity, &id))?;
    let source = full_json(&mut db, entity, row).await?;
    let shape = Shape::readable(entity, access);
    let mut payload = Map::new();
    for field in entity.def.fields.iter().filter(|f| !f.is_computed()) {
        let name = field.name.as_str();
        let value = &source[name];
        let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        let writable =
            access.field(entity.def.name.as_str(), name) == crate::auth::FieldAccess::Write;
        if !empty && writable {
            payload.insert(field.name.to_string(), value.clone());
        }
    }
    if !source["tags"].is_null() {
        payload.insert("tags".into(), source["tags"].clone());
    }
    payload.extend(overrides);
    let input = input::parse(entity, &Value::Object(payload), Mode::Create, access)?;
    let now = Utc::now();
    let source_id = id;
    let caller = access.clone();
    let mut record = app
        .db
        .write(move |tx| {
            Box::pin(async move {
                let (_, record) = insert(tx, &target, &input, &caller, now).await?;
                let new_id = record["id"].as_str().unwrap_or_default().to_owned();
                history::record(
                    tx,
                    target.entity.def.name.as_str(),
                    &new_id,
                    "copy",
                    caller.actor_id(),
                    now,
                    &json!({"copied_from": source_id}),
                )
                .await?;
                Ok(record)
            })
        })
        .await?;
    shape.strip(&mut record);
    Ok(saved(record))
}

/// A record's history, newest first (also of trashed records, and of erased ones for callers
/// who may read every record). Fields hidden from the caller are left out.
pub async fn history(
    app: &App,
    access: &Access,
    entity: &str,
    id: &str,
    limit: Option<i64>,
) -> Result<Value> {
    let target = target(app, access, entity).await?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let limit = match limit {
        None => 100,
        Some(n) if (1..=1_000).contains(&n) => n,
        Some(_) => return Err(Error::bad_parameter("limit", "must be between 1 and 1000")),
    };
    let name = entity.def.name.as_str();
    let scope = access.records(name, Action::Read);
    let mut db = &app.db;
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
