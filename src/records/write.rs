//! The one write path. Create, update, delete, restore, copy (and, in `bulk.rs`, merge and
//! bulk changes) are commands that take the transaction, a [`Writer`] (the caller's `Access`,
//! where the write comes from, the schema) and the payload, and do in one place:
//!
//! authorize → parse and validate → placement → references → unique checks → write → history →
//! computed fields → events.
//!
//! The API, the pages, scripts, template sample data and imports all call these commands;
//! nothing else assembles a record write. The public functions at the end open the
//! transaction for a single command (and run the before-save hooks first).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::compute;
use super::input::{self, Input, Mode};
use super::output::{self, Shape};
use super::rules::{
    check_references, check_unique, initial_rollups, placement, unique_values, write_tags,
};
use super::service::{
    Saved, Target, created_changes_text, diff, full_json, no_record, parse_id, saved,
};
use crate::auth::{Access, Action, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::events::{self, EventKind, EventScope, Origin, Overlay, RecordEvent, Subscriber};
use crate::fields::Kind;
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::query::Condition;
use crate::store::records::{self, Projection, pos};
use crate::store::{ColumnType, Ident, Row, SqlValue, Tx, entities, history};

/// Who writes, from where, with which schema: everything a command needs besides the
/// transaction and the payload.
#[derive(Clone)]
pub struct Writer {
    pub catalog: Arc<Catalog>,
    pub access: Access,
    pub origin: Origin,
    pub now: DateTime<Utc>,
    subscribers: Arc<[Arc<dyn Subscriber>]>,
}

impl Writer {
    /// A writer with the schema as of the caller's session.
    pub async fn new(ctx: &Context, access: &Access, origin: Origin) -> Result<Writer> {
        let catalog = ctx
            .schema
            .catalog_as_of(&ctx.db, access.schema_epoch())
            .await?;
        Ok(Writer::with_catalog(ctx, catalog, access, origin))
    }

    /// A writer with a given catalog (one loaded inside the transaction, for a template
    /// install that creates entities and their records together).
    pub fn with_catalog(
        ctx: &Context,
        catalog: Arc<Catalog>,
        access: &Access,
        origin: Origin,
    ) -> Writer {
        Writer {
            catalog,
            access: access.clone(),
            origin,
            now: Utc::now(),
            subscribers: ctx.events.subscribers(),
        }
    }

    pub fn target(&self, entity: &str) -> Result<Target> {
        Ok(Target {
            catalog: self.catalog.clone(),
            entity: self.catalog.entity(entity)?,
        })
    }

    pub(crate) async fn emit(&self, tx: &mut Tx, event: RecordEvent) -> Result<()> {
        let scope = EventScope {
            catalog: &self.catalog,
            access: &self.access,
        };
        events::emit(tx, &self.subscribers, &scope, event).await
    }

    fn event(&self, target: &Target, id: &str, kind: EventKind) -> RecordEvent {
        RecordEvent {
            entity: target.entity.def.name.to_string(),
            id: id.to_owned(),
            kind,
            changes: Map::new(),
            record: Value::Null,
            old: None,
            actor: self.access.actor_id().map(str::to_owned),
            origin: self.origin,
            at: self.now,
            merged: Vec::new(),
        }
    }
}

/// A record as written: its stored row and its full JSON (every field; callers narrow it to
/// what their audience may read).
pub struct Written {
    pub row: Row,
    pub record: Value,
}

// ---- the gate ------------------------------------------------------------------------------

/// What a write needs to be allowed.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Taking the action on the entity's records at all.
    Action(Action),
    /// A special permission (merge, bulk changes, import).
    Special(Special),
}

/// The one place a record write is authorized: the caller may take the action on the entity
/// (a 403 otherwise). Which records it reaches is settled by [`reachable`] and by placement.
pub fn authorize(access: &Access, entity: &str, need: Need) -> Result<()> {
    match need {
        Need::Action(action) => access.require_action(entity, action),
        Need::Special(special) => access.require(special),
    }
}

/// A record the caller may read (404 otherwise) and take the action on (403 otherwise),
/// inside `tx`.
pub(crate) async fn reachable(
    tx: &mut Tx,
    target: &Target,
    access: &Access,
    id: &str,
    action: Action,
    trashed: bool,
) -> Result<Row> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    // Changed after this read: a concurrent writer waits (a stale `If-Match` still fails).
    records::lock(tx, &entity.layout, id).await?;
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

/// Parses a payload for the writer, with the before-save hooks' changes laid over it (each
/// checked with its hook's own access).
fn parse_payload(
    target: &Target,
    payload: &Value,
    mode: Mode,
    access: &Access,
    overlays: Vec<Overlay>,
) -> Result<Input> {
    let mut input = input::parse(&target.entity, payload, mode, access)?;
    for overlay in overlays {
        let partial = Value::Object(overlay.set);
        // Only the fields the hook set: parsed as a partial change, whether creating or not.
        let parsed = match input::parse(&target.entity, &partial, Mode::Update, &overlay.access) {
            Ok(parsed) => parsed,
            Err(Error::Invalid { errors, .. }) => {
                let by = overlay.by;
                let errors = errors
                    .into_iter()
                    .map(|e| FieldError::new(e.field, format!("set by '{by}': {}", e.message)))
                    .collect();
                return Err(Error::invalid(
                    format!("the before-save automation '{by}' set invalid values"),
                    errors,
                ));
            }
            Err(e) => return Err(e),
        };
        input.overlay(parsed);
    }
    Ok(input)
}

fn stale(id: &str, version: i64, expected: i64) -> Error {
    Error::PreconditionFailed(format!(
        "record {id} is at version {version}, not {expected}; reload it and apply the change again"
    ))
}

// ---- create ----------------------------------------------------------------------------

/// Creates a record from a payload.
pub async fn create(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    payload: &Value,
    overlays: Vec<Overlay>,
) -> Result<Written> {
    let target = creatable(w, entity)?;
    let input = parse_payload(&target, payload, Mode::Create, &w.access, overlays)?;
    insert(tx, w, &target, &input).await
}

/// The entity to create records of, if the writer may create them at all (403 otherwise).
fn creatable(w: &Writer, entity: &str) -> Result<Target> {
    let target = w.target(entity)?;
    authorize(
        &w.access,
        target.entity.def.name.as_str(),
        Need::Action(Action::Create),
    )?;
    Ok(target)
}

/// Writes a new record from a checked input.
async fn insert(tx: &mut Tx, w: &Writer, target: &Target, input: &Input) -> Result<Written> {
    let entity = &target.entity;
    let new = prepare(tx, w, target, input, &mut Placements::default()).await?;
    records::insert(tx, &entity.layout, new.values).await?;
    write_links_and_tags(tx, w, target, input, &new.id).await?;
    let (record, changes) = created_json(target, input, &new.row);
    history::record(
        tx,
        entity.def.name.as_str(),
        &new.id,
        "create",
        w.access.actor_id(),
        w.now,
        &changes,
    )
    .await?;
    compute::ripple(
        tx,
        &target.catalog,
        entity,
        &[(None, Some(&new.row))],
        w.now,
    )
    .await?;
    let mut event = w.event(target, &new.id, EventKind::Created);
    event.changes = object(changes);
    event.record = record.clone();
    w.emit(tx, event).await?;
    Ok(Written {
        row: new.row,
        record,
    })
}

/// A new record, checked and ready to write.
struct NewRecord {
    id: String,
    /// The columns written.
    values: Vec<(Ident, SqlValue)>,
    /// The stored row, in read order, from what is written (no read-back).
    row: Row,
}

/// A new record of a batch: its id and its stored row (see [`new_row`]).
struct Batched {
    id: String,
    row: Row,
}

/// Placements already settled in a batch, by the owner and department asked for: a thousand
/// imported rows placed alike ask the database once.
#[derive(Default)]
struct Placements(HashMap<(Asked, Asked), Placed>);

/// An owner or department asked for: not at all, none, or this one.
type Asked = Option<Option<String>>;
type Placed = (Option<String>, Option<String>);

impl Placements {
    async fn settle(
        &mut self,
        tx: &mut Tx,
        access: &Access,
        entity: &str,
        input: &Input,
    ) -> Result<Placed> {
        let asked = |v: Option<&SqlValue>| v.map(|v| v.as_str().map(str::to_owned));
        let key = (
            asked(input.owner.as_ref()),
            asked(input.department.as_ref()),
        );
        if let Some(placed) = self.0.get(&key) {
            return Ok(placed.clone());
        }
        let placed = placement(
            tx,
            access,
            entity,
            Action::Create,
            (input.owner.as_ref(), input.department.as_ref()),
            (None, None),
        )
        .await?;
        self.0.insert(key, placed.clone());
        Ok(placed)
    }
}

/// The checks and the values of a new record: placement, references, unique values, its
/// numbers, rollups and formulas.
async fn prepare(
    tx: &mut Tx,
    w: &Writer,
    target: &Target,
    input: &Input,
    placements: &mut Placements,
) -> Result<NewRecord> {
    let settled = settle(tx, w, target, input, placements, false).await?;
    Ok(new_record(w, target, input, settled))
}

/// What a new record takes from the database: its placement, its references and unique
/// values checked, its numbers.
struct Settled {
    id: String,
    owner: Option<String>,
    department: Option<String>,
    numbers: Vec<(Ident, SqlValue)>,
}

/// The database's part of [`prepare`]; `unique_free` when the input's unique values are known
/// to be held by no record (see [`unique_values_free`]).
async fn settle(
    tx: &mut Tx,
    w: &Writer,
    target: &Target,
    input: &Input,
    placements: &mut Placements,
    unique_free: bool,
) -> Result<Settled> {
    let entity = &target.entity;
    let access = &w.access;
    let (owner, department) = placements
        .settle(tx, access, entity.def.name.as_str(), input)
        .await?;
    let id = uuid::Uuid::now_v7().hyphenated().to_string();
    check_references(tx, input, access).await?;
    if !unique_free {
        check_unique(tx, entity, &input.unique, &id, access).await?;
    }
    let mut numbers = Vec::new();
    for field in entity
        .def
        .fields
        .iter()
        .filter(|f| f.kind == Kind::Autonumber)
    {
        if let Some(pattern) = &field.autonumber {
            let n = entities::take_counter(tx, &entity.def.name, field.name.as_str()).await?;
            numbers.push((
                Ident::column(&field.name),
                SqlValue::Text(pattern.format(n)),
            ));
        }
    }
    Ok(Settled {
        id,
        owner,
        department,
        numbers,
    })
}

/// The values and the row of a new record, once settled: the rest of [`prepare`], with no
/// database (a batch makes these while the database inserts the rows before).
fn new_record(w: &Writer, target: &Target, input: &Input, settled: Settled) -> NewRecord {
    let (id, values) = new_values(w, target, input.columns.clone(), settled);
    let row = row_in_layout_order(&target.entity.layout.full, values.clone());
    NewRecord { id, values, row }
}

/// A new record of a batch: its id and its row, made from its input's columns, which are
/// moved rather than copied (a batch writes the row alone, not the columns).
fn new_row(
    w: &Writer,
    target: &Target,
    columns: Vec<(Ident, SqlValue)>,
    settled: Settled,
) -> (String, Row) {
    let (id, values) = new_values(w, target, columns, settled);
    let row = row_in_layout_order(&target.entity.layout.full, values);
    (id, row)
}

/// A new record's id and the columns it writes: the system columns, the input's, the
/// numbers given, the rollups' first values and the formulas'.
fn new_values(
    w: &Writer,
    target: &Target,
    columns: Vec<(Ident, SqlValue)>,
    settled: Settled,
) -> (String, Vec<(Ident, SqlValue)>) {
    let entity = &target.entity;
    let Settled {
        id,
        owner,
        department,
        numbers,
    } = settled;
    let at = SqlValue::Datetime(w.now);
    let mut values: Vec<(Ident, SqlValue)> = vec![
        (Ident::fixed("id"), SqlValue::Text(id.clone())),
        (Ident::fixed("created_at"), at.clone()),
        (Ident::fixed("updated_at"), at),
        (
            Ident::fixed("created_by"),
            w.access
                .actor_id()
                .map_or(SqlValue::Null(ColumnType::Id), |a| {
                    SqlValue::Text(a.to_owned())
                }),
        ),
        (Ident::fixed("owner"), SqlValue::from(owner)),
        (Ident::fixed("department"), SqlValue::from(department)),
        (Ident::fixed("version"), SqlValue::Integer(1)),
    ];
    let mut fields = columns;
    fields.extend(numbers);
    fields.extend(initial_rollups(entity));
    // The formulas read the other values by name (most entities have none to compute).
    if !entity.formulas.is_empty() {
        let mut by_name = fields
            .iter()
            .map(|(c, v)| (c.as_str().to_owned(), v.clone()))
            .collect();
        fields.extend(compute::formulas(entity, &mut by_name, w.now));
    }
    values.extend(fields);
    (id, values)
}

/// The row of `values` in the columns' order (null where a column has no value). The values
/// mostly come in that order already, so each column is looked for from where the one before
/// was found: a lookup from the start each time compared names a hundred times a record.
/// The values are moved into the row.
fn row_in_layout_order(layout: &Projection, mut values: Vec<(Ident, SqlValue)>) -> Row {
    let mut next = 0;
    layout
        .columns()
        .iter()
        .map(
            |(column, ty)| match super::position_from(&values, next, |(c, _)| c == column) {
                Some(i) => {
                    next = i + 1;
                    std::mem::replace(&mut values[i].1, SqlValue::Null(*ty))
                }
                None => SqlValue::Null(*ty),
            },
        )
        .collect()
}

/// After a new record's row: its multi-lookup links and tags.
async fn write_links_and_tags(
    tx: &mut Tx,
    w: &Writer,
    target: &Target,
    input: &Input,
    id: &str,
) -> Result<()> {
    for (join, targets) in &input.links {
        records::set_links(tx, join, id, targets).await?;
    }
    if let Some(tags) = input.tags.as_ref().filter(|t| !t.is_empty()) {
        write_tags(tx, &target.entity, id, tags, w.now).await?;
    }
    Ok(())
}

/// A new record's JSON and the changes its history and event carry.
fn created_json(target: &Target, input: &Input, row: &Row) -> (Value, Value) {
    let entity = &target.entity;
    let tags = input.tags.as_deref().unwrap_or_default();
    let record = output::created(entity, row, &input.links, tags);
    let changes = diff(entity, None, Some(&record));
    (record, changes)
}

/// The `created` event of a record of a batch. Its changes are left empty for
/// [`RecordEvent::changes_of`] to make from its record, should a subscriber read them (most
/// batches have none that does), and its history entry is written from the record too.
fn created_event(w: &Writer, target: &Target, input: &Input, id: &str, row: &Row) -> RecordEvent {
    let tags = input.tags.as_deref().unwrap_or_default();
    let mut event = w.event(target, id, EventKind::Created);
    event.record = output::created(&target.entity, row, &input.links, tags);
    event
}

/// A payload to create, with what before-save hooks set on it. An import lends its rows'
/// payloads (it keeps them in case the batch goes row by row) and parses them ahead.
pub struct Creation<'a> {
    pub payload: Cow<'a, Value>,
    pub overlays: Vec<Overlay>,
    /// The payload parsed ahead, off the writer (see [`Preparsed`]).
    pub preparsed: Option<Preparsed>,
}

/// A copy parses its payload again (the writer copies a create it may have to retry alone).
impl Clone for Creation<'_> {
    fn clone(&self) -> Self {
        Creation {
            payload: self.payload.clone(),
            overlays: self.overlays.clone(),
            preparsed: None,
        }
    }
}

impl From<Value> for Creation<'static> {
    fn from(payload: Value) -> Creation<'static> {
        Creation {
            payload: Cow::Owned(payload),
            overlays: Vec::new(),
            preparsed: None,
        }
    }
}

impl<'a> From<&'a Value> for Creation<'a> {
    fn from(payload: &'a Value) -> Creation<'a> {
        Creation {
            payload: Cow::Borrowed(payload),
            overlays: Vec::new(),
            preparsed: None,
        }
    }
}

/// A payload to create, parsed and checked for the caller before its batch reaches the
/// writer: an import parses the next batch on its reading thread while the writer writes this
/// one, since the one writer is what bounds an import's speed. The writer takes it only if
/// its own definition of the entity is the one it was parsed against (the schema may have
/// changed meanwhile) and no before-save hook changed the payload; else it parses again.
pub struct Preparsed {
    entity: Arc<CompiledEntity>,
    input: Result<Input>,
}

impl Preparsed {
    /// Parses `payload` as [`create`] would for `access`.
    pub fn new(target: &Target, payload: &Value, access: &Access) -> Preparsed {
        Preparsed {
            entity: target.entity.clone(),
            input: input::parse(&target.entity, payload, Mode::Create, access),
        }
    }
}

/// Unique values looked up a few hundred at a time: a batch of thousands checked one value at
/// a time waited for the database once a value.
const UNIQUE_VALUES_PER_LOOKUP: usize = 500;

/// For each input of a batch, whether no live record holds any of its unique values, found
/// with one query per few hundred values. Where a query finds a holder, its inputs are left to
/// [`check_unique`], one by one, which names the holder and tells whether the caller may see
/// it.
async fn unique_values_free(
    tx: &mut Tx,
    entity: &CompiledEntity,
    inputs: &[Result<Input>],
) -> Result<Vec<bool>> {
    // How many of each input's unique values are not yet known to be free.
    let mut unknown: Vec<usize> = (inputs.iter())
        .map(|input| input.as_ref().map_or(0, |input| input.unique.len()))
        .collect();
    // Each unique column with its values, each value with the input it came from.
    let mut by_column: Vec<(&Ident, Vec<(usize, &SqlValue)>)> = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        for (_, column, value) in input.iter().flat_map(|input| &input.unique) {
            match by_column.iter_mut().find(|(c, _)| *c == column) {
                Some((_, values)) => values.push((index, value)),
                None => by_column.push((column, vec![(index, value)])),
            }
        }
    }
    for (column, values) in &by_column {
        for chunk in values.chunks(UNIQUE_VALUES_PER_LOOKUP) {
            let candidates = chunk.iter().map(|(_, value)| *value);
            if !records::any_held(tx, &entity.layout, column, candidates).await? {
                for (index, _) in chunk {
                    unknown[*index] -= 1;
                }
            }
        }
    }
    Ok(unknown.into_iter().map(|n| n == 0).collect())
}

/// Creates many records of one entity together (an import's batch, or API creates queued
/// together on SQLite): each payload goes
/// through the steps of [`create`], but equal placements are settled once, and the rows,
/// their history, their computed parents and their events are written a few statements for
/// the whole batch. A refused payload answers its own error and writes nothing; the others
/// are written. An error of the batch as a whole (a statement failed, here or when the caller
/// next uses the transaction) rolls the caller back to before the batch.
pub async fn create_many(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    payloads: Vec<Creation<'_>>,
) -> Result<Vec<Result<Written>>> {
    let target = creatable(w, entity)?;
    let entity = &target.entity;
    let mut placements = Placements::default();
    let mut outcomes: Vec<Option<Result<Written>>> = Vec::with_capacity(payloads.len());
    let mut settled_rows: Vec<(usize, Input, Settled)> = Vec::with_capacity(payloads.len());
    // Unique values taken by earlier payloads of this batch (the table cannot tell yet), by
    // field: a batch holds thousands, and each payload looks its values up.
    let mut taken: HashMap<String, HashSet<SqlValue>> = HashMap::new();
    let inputs: Vec<Result<Input>> = payloads
        .into_iter()
        .map(|creation| {
            let Creation {
                payload,
                overlays,
                preparsed,
            } = creation;
            match preparsed {
                Some(ahead) if overlays.is_empty() && Arc::ptr_eq(&ahead.entity, entity) => {
                    ahead.input
                }
                _ => parse_payload(&target, &payload, Mode::Create, &w.access, overlays),
            }
        })
        .collect();
    let unique_free = unique_values_free(tx, entity, &inputs).await?;
    for (index, input) in inputs.into_iter().enumerate() {
        let prepared = async {
            let input = input?;
            if let Some((field, _, _)) = input
                .unique
                .iter()
                .find(|(f, _, v)| taken.get(f).is_some_and(|values| values.contains(v)))
            {
                let message = format!(
                    "{field} must be unique; a record created with this one has this value"
                );
                return Err(Error::conflict(
                    message.clone(),
                    vec![FieldError::new(field.clone(), message)],
                ));
            }
            let settled =
                settle(tx, w, &target, &input, &mut placements, unique_free[index]).await?;
            Ok((input, settled))
        }
        .await;
        match prepared {
            Ok((input, settled)) => {
                for (field, _, value) in &input.unique {
                    (taken.entry(field.clone()).or_default()).insert(value.clone());
                }
                settled_rows.push((index, input, settled));
                outcomes.push(None);
            }
            Err(error) => outcomes.push(Some(Err(error))),
        }
    }
    let columns: Vec<Ident> = entity
        .layout
        .full
        .columns()
        .iter()
        .map(|(c, _)| c.clone())
        .collect();
    // Without links or tags to write, a record's event needs nothing from the database, and
    // is made while the database inserts the rows (see `Pipeline`).
    let plain = settled_rows.iter().all(|(_, input, _)| {
        input.links.is_empty() && input.tags.as_ref().is_none_or(Vec::is_empty)
    });
    let mut events = Vec::with_capacity(settled_rows.len());
    let mut checked: Vec<(usize, Input, Batched)> = Vec::with_capacity(settled_rows.len());
    let dialect = tx.dialect();
    let mut pipe = tx.pipeline();
    let mut settled_rows = settled_rows.into_iter().peekable();
    // Each chunk's rows are made while the database inserts the chunk before.
    while settled_rows.peek().is_some() {
        let from = checked.len();
        checked.extend(
            settled_rows
                .by_ref()
                .take(records::rows_per_insert(columns.len()))
                .map(|(index, mut input, settled)| {
                    let columns = std::mem::take(&mut input.columns);
                    let (id, row) = new_row(w, &target, columns, settled);
                    (index, input, Batched { id, row })
                }),
        );
        let chunk = &checked[from..];
        let rows = chunk.iter().map(|(_, _, new)| new.row.clone());
        pipe.send(records::insert_statement(
            dialect,
            &entity.layout,
            &columns,
            rows,
        ))
        .await?;
        if plain {
            events.extend(
                chunk
                    .iter()
                    .map(|(_, input, new)| created_event(w, &target, input, &new.id, &new.row)),
            );
        }
    }
    if !plain {
        pipe.finish().await?;
        for (_, input, new) in &checked {
            write_links_and_tags(tx, w, &target, input, &new.id).await?;
            events.push(created_event(w, &target, input, &new.id, &new.row));
        }
    }
    // The last insert may still run (see `Tx::send`): what follows is made meanwhile.
    let changed: Vec<(Option<&Row>, Option<&Row>)> = checked
        .iter()
        .map(|(_, _, new)| (None, Some(&new.row)))
        .collect();
    compute::ripple(tx, &target.catalog, entity, &changed, w.now).await?;
    let scope = EventScope {
        catalog: &w.catalog,
        access: &w.access,
    };
    events::emit_many(tx, &w.subscribers, &scope, &events).await?;
    // The history comes last: it is made while the database indexes the batch for search
    // (on SQLite, one FTS5 statement for the batch, the largest a batch sends).
    let created: Vec<history::Created> = events
        .iter()
        .map(|event| history::Created {
            record_id: &event.id,
            changes: match &event.record {
                Value::Object(record) => created_changes_text(entity, record),
                _ => "{}".to_owned(),
            },
        })
        .collect();
    let mut pipe = tx.pipeline();
    history::record_creates(
        &mut pipe,
        entity.def.name.as_str(),
        w.access.actor_id(),
        w.now,
        created,
    )
    .await?;
    // The last statements may still run when this returns (the caller's next use of the
    // transaction, or its commit, returns their error): an import's batch goes on with its
    // outcomes meanwhile.
    for ((index, _, new), event) in checked.into_iter().zip(events) {
        outcomes[index] = Some(Ok(Written {
            row: new.row,
            record: event.record,
        }));
    }
    Ok(outcomes.into_iter().flatten().collect())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

// ---- update ----------------------------------------------------------------------------

/// Applies a partial payload to a record (`expected`: the version the caller saw, from
/// `If-Match`, the body's `version` or the before-save hooks' read).
pub async fn update(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    id: &str,
    payload: &Value,
    expected: Option<i64>,
    overlays: Vec<Overlay>,
) -> Result<Written> {
    let target = w.target(entity)?;
    let id = parse_id(&target.entity, id)?;
    // A record out of reach is a 404 (or 403) before anything is said about the payload.
    reachable(tx, &target, &w.access, &id, Action::Update, false).await?;
    let input = parse_payload(&target, payload, Mode::Update, &w.access, overlays)?;
    let expected = expected.or(input.version);
    let (written, _) = apply_update(tx, w, &target, &id, &input, expected, true).await?;
    Ok(written)
}

/// Applies a checked input to a record the caller may change; returns the new record and the
/// old row. With `announce`, an `updated` event goes out when anything changed (a merge
/// announces its own).
pub(crate) async fn apply_update(
    tx: &mut Tx,
    w: &Writer,
    target: &Target,
    id: &str,
    input: &Input,
    expected: Option<i64>,
    announce: bool,
) -> Result<(Written, Row)> {
    let entity = &target.entity;
    let access = &w.access;
    let now = w.now;
    let old = reachable(tx, target, access, id, Action::Update, false).await?;
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
    let changes = object(diff(entity, Some(&old_json), Some(&new_json)));
    if !changes.is_empty() {
        history::record(
            tx,
            entity.def.name.as_str(),
            id,
            "update",
            access.actor_id(),
            now,
            &Value::Object(changes.clone()),
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
    if announce && !changes.is_empty() {
        let mut event = w.event(target, id, EventKind::Updated);
        event.changes = changes;
        event.record = new_json.clone();
        event.old = Some(old_json);
        w.emit(tx, event).await?;
    }
    Ok((
        Written {
            row: new,
            record: new_json,
        },
        old,
    ))
}

// ---- delete, erase, restore ------------------------------------------------------------

/// Moves a record the caller may delete to the trash; `details` go into its history.
pub(crate) async fn trash(
    tx: &mut Tx,
    w: &Writer,
    target: &Target,
    id: &str,
    expected: Option<i64>,
    details: Value,
) -> Result<Row> {
    let entity = &target.entity;
    let now = w.now;
    let old = reachable(tx, target, &w.access, id, Action::Delete, false).await?;
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
        w.access.actor_id(),
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
    let mut event = w.event(target, id, EventKind::Deleted);
    event.record = full_json(tx, entity, new.clone()).await?;
    w.emit(tx, event).await?;
    Ok(new)
}

/// `DELETE`: to the trash, or (`permanent`) erased for good — straight from the list or from
/// the trash.
pub async fn delete(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    id: &str,
    expected: Option<i64>,
    permanent: bool,
) -> Result<()> {
    let target = w.target(entity)?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let id = id.as_str();
    let trashed = match records::state(tx, &entity.layout, id).await? {
        None => return Err(no_record(entity, id)),
        Some((_, trashed)) => trashed,
    };
    if !trashed {
        trash(tx, w, &target, id, expected, json!({})).await?;
    } else if !permanent {
        return Err(no_record(entity, id));
    } else {
        let row = reachable(tx, &target, &w.access, id, Action::Delete, true).await?;
        let version = row[pos::VERSION].as_i64().unwrap_or_default();
        if let Some(expected) = expected
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
            w.access.actor_id(),
            w.now,
            &diff(entity, Some(&last), None),
        )
        .await?;
        let mut event = w.event(&target, id, EventKind::Erased);
        event.record = last;
        w.emit(tx, event).await?;
    }
    Ok(())
}

/// Brings a record back from the trash (its unique values must still be free).
pub async fn restore(tx: &mut Tx, w: &Writer, entity: &str, id: &str) -> Result<Written> {
    let target = w.target(entity)?;
    let entity = &target.entity;
    let id = parse_id(entity, id)?;
    let id = id.as_str();
    if records::state(tx, &entity.layout, id)
        .await?
        .is_some_and(|(_, trashed)| !trashed)
    {
        return Err(Error::conflict(
            format!("record {id} is not in the trash"),
            Vec::new(),
        ));
    }
    let old = reachable(tx, &target, &w.access, id, Action::Delete, true).await?;
    check_unique(tx, entity, &unique_values(entity, &old), id, &w.access).await?;
    let new = records::set_trashed(
        tx,
        &entity.layout,
        id,
        false,
        SqlValue::Datetime(w.now),
        None,
    )
    .await?
    .ok_or_else(|| no_record(entity, id))?;
    history::record(
        tx,
        entity.def.name.as_str(),
        id,
        "restore",
        w.access.actor_id(),
        w.now,
        &json!({}),
    )
    .await?;
    compute::ripple(
        tx,
        &target.catalog,
        entity,
        &[(Some(&old), Some(&new))],
        w.now,
    )
    .await?;
    let record = full_json(tx, entity, new.clone()).await?;
    let mut event = w.event(&target, id, EventKind::Restored);
    event.record = record.clone();
    w.emit(tx, event).await?;
    Ok(Written { row: new, record })
}

// ---- copy ------------------------------------------------------------------------------

/// A new record with the same values (computed fields are computed anew, and the copy belongs
/// to the caller), changed by `overrides`.
pub async fn copy(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    id: &str,
    overrides: &Value,
) -> Result<Written> {
    let target = w.target(entity)?;
    let name = target.entity.def.name.to_string();
    authorize(&w.access, &name, Need::Action(Action::Create))?;
    let id = parse_id(&target.entity, id)?;
    let Some(overrides) = overrides
        .as_object()
        .cloned()
        .or_else(|| overrides.is_null().then(Map::new))
    else {
        return Err(Error::bad_request(
            "the body of a copy is an object of values to change",
        ));
    };
    let scope = w.access.records(&name, Action::Read);
    let row = records::get_in(tx, &target.entity.layout, &id, false, &scope)
        .await?
        .ok_or_else(|| no_record(&target.entity, &id))?;
    let source = full_json(tx, &target.entity, row).await?;
    let mut payload = Map::new();
    for field in target.entity.def.fields.iter().filter(|f| !f.is_computed()) {
        let value = &source[field.name.as_str()];
        let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        let writable =
            w.access.field(&name, field.name.as_str()) == crate::auth::FieldAccess::Write;
        if !empty && writable {
            payload.insert(field.name.to_string(), value.clone());
        }
    }
    if !source["tags"].is_null() {
        payload.insert("tags".into(), source["tags"].clone());
    }
    payload.extend(overrides);
    let input = input::parse(
        &target.entity,
        &Value::Object(payload),
        Mode::Create,
        &w.access,
    )?;
    let written = insert(tx, w, &target, &input).await?;
    let new_id = written.record["id"].as_str().unwrap_or_default().to_owned();
    history::record(
        tx,
        &name,
        &new_id,
        "copy",
        w.access.actor_id(),
        w.now,
        &json!({"copied_from": id}),
    )
    .await?;
    Ok(written)
}

// ---- one command, one transaction ------------------------------------------------------

/// Runs one command in its own transaction and returns its record, narrowed to what the
/// caller may read.
async fn in_transaction<F>(ctx: &Context, w: Writer, entity: &str, command: F) -> Result<Saved>
where
    F: for<'t> FnOnce(&'t mut Tx, Writer) -> crate::store::writer::WriteFuture<'t, Written>
        + Send
        + 'static,
{
    let target = w.target(entity)?;
    let shape = Shape::readable(&target.entity, &w.access);
    let mut record = ctx.db.write(move |tx| command(tx, w)).await?.record;
    shape.strip(&mut record);
    Ok(saved(record))
}

/// Runs the before-save hooks of a save made by a person or an integration.
async fn before_save(
    ctx: &Context,
    w: &Writer,
    entity: &str,
    kind: EventKind,
    payload: &Value,
    old: Option<&Value>,
) -> Result<Vec<Overlay>> {
    if !w.origin.runs_before_save() {
        return Ok(Vec::new());
    }
    match ctx.events.before_save() {
        Some(hook) => hook.run(ctx, &w.catalog, entity, kind, payload, old).await,
        None => Ok(Vec::new()),
    }
}

/// `POST /api/records/{entity}` and the pages' create form.
pub async fn create_one(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    payload: &Value,
) -> Result<Saved> {
    let w = Writer::new(ctx, access, origin).await?;
    let target = w.target(entity)?;
    // Refused before any hook runs for a caller who may not create at all.
    authorize(
        access,
        target.entity.def.name.as_str(),
        Need::Action(Action::Create),
    )?;
    let listens = match (origin.runs_before_save(), ctx.events.before_save()) {
        (true, Some(hook)) => {
            hook.listens(ctx, &w.catalog, entity, EventKind::Created, payload)
                .await?
        }
        _ => false,
    };
    let overlays = if listens {
        // An invalid payload is a 422 before any hook sees it.
        input::parse(&target.entity, payload, Mode::Create, access)?;
        before_save(ctx, &w, entity, EventKind::Created, payload, None).await?
    } else {
        Vec::new()
    };
    let shape = Shape::readable(&target.entity, access);
    let creation = Creation {
        payload: Cow::Owned(payload.clone()),
        overlays,
        preparsed: None,
    };
    // Creates of one entity by one caller queued together run as one batch (see
    // `store::writer`): the same steps, a few multi-row statements for all of them.
    let key = format!("create\u{1f}{entity}\u{1f}{:?}", origin);
    let mut record = match access.sameness() {
        Some(caller) => {
            let entity = entity.to_owned();
            let key = format!("{key}\u{1f}{caller}");
            ctx.db
                .write_together(key, creation, move |tx, creations| {
                    let w = w.clone();
                    let entity = entity.clone();
                    Box::pin(async move {
                        let alone = creations.len() == 1;
                        let results = create_many(tx, &w, &entity, creations).await?;
                        // A failed statement may leave the transaction unfit for the others:
                        // the writer then runs each create alone.
                        let failed = results
                            .iter()
                            .position(|r| r.as_ref().is_err_and(Error::is_server_error));
                        match failed {
                            Some(at) if !alone => match results.into_iter().nth(at) {
                                Some(Err(error)) => Err(error),
                                _ => Err(Error::internal("a failed create went missing")),
                            },
                            _ => Ok(results),
                        }
                    })
                })
                .await?
        }
        None => {
            let entity = entity.to_owned();
            ctx.db
                .write(move |tx| {
                    Box::pin(async move {
                        let Creation {
                            payload, overlays, ..
                        } = creation;
                        create(tx, &w, &entity, &payload, overlays).await
                    })
                })
                .await?
        }
    }
    .record;
    shape.strip(&mut record);
    Ok(saved(record))
}

/// `PATCH /api/records/{entity}/{id}` and inline edits.
pub async fn update_one(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    id: &str,
    payload: &Value,
    if_match: Option<i64>,
) -> Result<Saved> {
    let w = Writer::new(ctx, access, origin).await?;
    let target = w.target(entity)?;
    // Before-save hooks see the record as it is now; the save then insists on that version.
    let hook = match (origin.runs_before_save(), ctx.events.before_save()) {
        (true, Some(hook)) => hook
            .listens(ctx, &w.catalog, entity, EventKind::Updated, payload)
            .await?
            .then_some(hook),
        _ => None,
    };
    let (overlays, seen) = match hook {
        Some(_) => {
            let current =
                super::service::get_in(&mut &ctx.db, &target, access, id, None, false).await?;
            let overlays = before_save(
                ctx,
                &w,
                entity,
                EventKind::Updated,
                payload,
                Some(&current.record),
            )
            .await?;
            (overlays, Some(current.version))
        }
        None => (Vec::new(), None),
    };
    let (entity, id, payload) = (entity.to_owned(), id.to_owned(), payload.clone());
    let name = entity.clone();
    in_transaction(ctx, w, &name, move |tx, w| {
        Box::pin(async move {
            update(tx, &w, &entity, &id, &payload, if_match.or(seen), overlays).await
        })
    })
    .await
}

/// `DELETE /api/records/{entity}/{id}`.
pub async fn delete_one(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    id: &str,
    if_match: Option<i64>,
    permanent: bool,
) -> Result<()> {
    let w = Writer::new(ctx, access, origin).await?;
    let (entity, id) = (entity.to_owned(), id.to_owned());
    ctx.db
        .write(move |tx| {
            Box::pin(async move { delete(tx, &w, &entity, &id, if_match, permanent).await })
        })
        .await
}

/// `POST /api/records/{entity}/{id}/restore`.
pub async fn restore_one(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    id: &str,
) -> Result<Saved> {
    let w = Writer::new(ctx, access, origin).await?;
    let (entity, id) = (entity.to_owned(), id.to_owned());
    let name = entity.clone();
    in_transaction(ctx, w, &name, move |tx, w| {
        Box::pin(async move { restore(tx, &w, &entity, &id).await })
    })
    .await
}

/// `POST /api/records/{entity}/{id}/copy`.
pub async fn copy_one(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    id: &str,
    overrides: &Value,
) -> Result<Saved> {
    let w = Writer::new(ctx, access, origin).await?;
    let (entity, id, overrides) = (entity.to_owned(), id.to_owned(), overrides.clone());
    let name = entity.clone();
    in_transaction(ctx, w, &name, move |tx, w| {
        Box::pin(async move { copy(tx, &w, &entity, &id, &overrides).await })
    })
    .await
}
