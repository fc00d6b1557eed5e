//! The schema service: creating, changing and deleting entity definitions. Every change is
//! parsed, resolved against the other entities, planned, checked against the data and applied
//! in one transaction, then stored as a new version.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::compiled::CompiledEntity;
use super::definition::{EntityDef, FieldDef, resolve_references};
use super::names::{EntityName, FieldName};
use super::plan::{ChangeIntent, Restore, Step, Storage, plan};
use super::shapes::{ArchivedEntity, ArchivedFieldView, EntityVersion};
use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::fields::{COMMON_KEYWORDS, Kind};
use crate::store::entities::{self, StoredEntity};
use crate::store::{Ident, Tx, ddl};
use crate::wire::Items;

/// What a schema change did (or, in a dry run, would do).
#[derive(Debug)]
pub struct ChangeReport {
    pub entity: Value,
    pub changes: Vec<Value>,
    /// Data that blocks the change (only ever non-empty in a dry run; otherwise it is a 409).
    pub blocked_by: Vec<FieldError>,
    pub applied: bool,
}

impl ChangeReport {
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "entity": self.entity,
            "changes": self.changes,
            "applied": self.applied,
        });
        if !self.blocked_by.is_empty() {
            out["blocked_by"] = json!(self.blocked_by);
        }
        out
    }
}

pub fn parse_entity_name(name: &str) -> Result<EntityName> {
    EntityName::parse(name).map_err(|_| Error::not_found(format!("there is no entity '{name}'")))
}

/// The document a client sees: the completed definition plus its version and times.
fn entity_document(stored: &StoredEntity) -> Value {
    let mut doc = stored.definition.clone();
    doc["version"] = json!(stored.version);
    doc["created_at"] = json!(crate::store::value::format_datetime(&stored.created_at));
    doc["updated_at"] = json!(crate::store::value::format_datetime(&stored.updated_at));
    doc
}

fn parse_stored(stored: &StoredEntity) -> Result<EntityDef> {
    EntityDef::parse(&stored.definition).map_err(|errors| {
        Error::internal(format!(
            "stored definition of {} does not parse: {errors:?}",
            stored.name
        ))
    })
}

fn invalid_definition(errors: Vec<FieldError>) -> Error {
    let message = match errors.len() {
        1 => format!(
            "the definition is invalid: {}: {}",
            errors[0].field, errors[0].message
        ),
        n => format!("the definition is invalid ({n} problems)"),
    };
    Error::invalid(message, errors)
}

pub async fn list(ctx: &Context) -> Result<Vec<Value>> {
    let stored = entities::list(&mut &ctx.db).await?;
    Ok(stored.iter().map(entity_document).collect())
}

pub async fn get(ctx: &Context, name: &str) -> Result<Value> {
    let name = parse_entity_name(name)?;
    let stored = entities::get(&mut &ctx.db, &name)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no entity '{name}'")))?;
    Ok(entity_document(&stored))
}

/// Every other entity's current definition, read inside the transaction.
async fn catalog(tx: &mut Tx, except: &EntityName) -> Result<HashMap<EntityName, EntityDef>> {
    let mut out = HashMap::new();
    for stored in entities::list(tx).await? {
        let def = parse_stored(&stored)?;
        if def.name != *except {
            out.insert(def.name.clone(), def);
        }
    }
    Ok(out)
}

pub async fn create(ctx: &Context, access: &Access, doc: Value) -> Result<Value> {
    access.require(Special::ManageSchema)?;
    let mut tx = ctx.db.begin().await?;
    let name = create_in(&mut tx, &doc).await?;
    tx.commit().await?;
    ctx.schema.invalidate();
    tracing::info!(entity = %name, "entity created");
    get(ctx, name.as_str()).await
}

/// Creates an entity inside a transaction the caller commits (template installs create many
/// in one).
pub(crate) async fn create_in(tx: &mut Tx, doc: &Value) -> Result<EntityName> {
    let mut def = EntityDef::parse(doc).map_err(invalid_definition)?;
    if entities::get_for_update(tx, &def.name).await?.is_some() {
        return Err(Error::conflict(
            format!("an entity named '{}' already exists", def.name),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    let others = catalog(tx, &def.name).await?;
    let errors = resolve_references(&mut def, |n| others.get(n));
    if !errors.is_empty() {
        return Err(invalid_definition(errors));
    }
    let dialect = tx.dialect();
    tx.execute_all(&ddl::create_table(dialect, &def)).await?;
    for field in def.fields.iter().filter(|f| f.kind == Kind::Autonumber) {
        entities::ensure_counter(tx, &def.name, field.name.as_str(), 1).await?;
    }
    let version = entities::next_version(tx, &def.name).await?;
    let document = def.document();
    let now = Utc::now();
    let changes = json!([{"action": "create_table", "detail": "create the entity"}]);
    entities::insert(tx, &def.name, &document, version, &changes, now).await?;
    tracing::debug!(entity = %def.name, version, "entity created (not yet committed)");
    Ok(def.name)
}

/// Changes an entity's definition inside a transaction the caller commits: the same checks
/// and steps as a `PUT`. Returns the changes made (empty when there was nothing to do).
pub(crate) async fn change_in(
    tx: &mut Tx,
    name: &EntityName,
    new_doc: Value,
) -> Result<Vec<Value>> {
    let stored = entities::get_for_update(tx, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no entity '{name}'")))?;
    let current = parse_stored(&stored)?;
    match apply_change(tx, &stored, &current, new_doc, &ChangeIntent::default()).await? {
        Outcome::Unchanged(changes) | Outcome::Applied { changes, .. } => Ok(changes),
        Outcome::Blocked(_, message, blocked_by) => Err(Error::conflict(message, blocked_by)),
    }
}

/// A change in progress: the transaction, holding the entity's lock, and its current state.
struct Pending {
    tx: Tx,
    stored: StoredEntity,
    current: EntityDef,
}

async fn begin_change(
    ctx: &Context,
    access: &Access,
    name: &str,
    expected_version: Option<i64>,
) -> Result<Pending> {
    access.require(Special::ManageSchema)?;
    let name = parse_entity_name(name)?;
    let mut tx = ctx.db.begin().await?;
    let stored = entities::get_for_update(&mut tx, &name)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no entity '{name}'")))?;
    if let Some(expected) = expected_version
        && expected != stored.version
    {
        return Err(Error::PreconditionFailed(format!(
            "the definition of {name} is at version {}, not {expected}; reload it and try again",
            stored.version
        )));
    }
    let current = parse_stored(&stored)?;
    Ok(Pending {
        tx,
        stored,
        current,
    })
}

/// Checks that no entity's rollups break (or silently change type) with `new`.
fn check_dependents(
    new: &EntityDef,
    others: &HashMap<EntityName, EntityDef>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let find = |n: &EntityName| {
        if *n == new.name {
            Some(new)
        } else {
            others.get(n)
        }
    };
    for other in others.values() {
        let depends = other
            .fields
            .iter()
            .any(|f| f.rollup.as_ref().is_some_and(|r| r.entity == new.name));
        if !depends {
            continue;
        }
        let mut resolved = other.clone();
        let problems = resolve_references(&mut resolved, find);
        for problem in problems {
            errors.push(FieldError::new(
                format!("{}.{}", other.name, problem.field),
                format!("is used by a rollup of {}: {}", other.name, problem.message),
            ));
        }
        for (before, after) in other.fields.iter().zip(&resolved.fields) {
            if before.column_type() != after.column_type() {
                errors.push(FieldError::new(
                    format!("{}.{}", other.name, before.name),
                    format!(
                        "the rollup {}.{} would change type; change it first",
                        other.name, before.name
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What applying a definition change came to.
enum Outcome {
    /// Nothing to do.
    Unchanged(Vec<Value>),
    /// Existing records refuse it (the changes it would have made, a summary, the problems).
    Blocked(Vec<Value>, String, Vec<FieldError>),
    Applied {
        changes: Vec<Value>,
        document: Value,
        version: i64,
        steps: usize,
    },
}

/// Checks, plans and applies a definition change inside `tx` (not committed here).
async fn apply_change(
    tx: &mut Tx,
    stored: &StoredEntity,
    current: &EntityDef,
    new_doc: Value,
    intent: &ChangeIntent,
) -> Result<Outcome> {
    let mut new = EntityDef::parse(&new_doc).map_err(invalid_definition)?;
    if new.name != current.name {
        return Err(Error::invalid_field(
            "name",
            format!(
                "an entity cannot be renamed (from {} to {})",
                current.name, new.name
            ),
        ));
    }
    let others = catalog(tx, &current.name).await?;
    let errors = resolve_references(&mut new, |n| others.get(n));
    if !errors.is_empty() {
        return Err(invalid_definition(errors));
    }
    check_renames(current, intent)?;
    check_dependents(&new, &others).map_err(|errors| {
        Error::conflict(
            "other entities depend on what this change removes".to_owned(),
            errors,
        )
    })?;

    let plan = plan(Some(current), &new, intent);
    let changes = plan.describe();
    if plan.is_empty() {
        return Ok(Outcome::Unchanged(changes));
    }

    let dialect = tx.dialect();
    let table = Ident::table(&current.name);
    if let Some(lock) = dialect.lock_table(&table) {
        tx.execute(&crate::store::Sql::new(lock)).await?;
    }
    let mut blocked_by = Vec::new();
    for check in &plan.checks {
        if let Some(problem) = ddl::run_check(tx, dialect, &current.name, check).await? {
            blocked_by.push(problem);
        }
    }
    if !blocked_by.is_empty() {
        let message = blocked_by
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        return Ok(Outcome::Blocked(
            changes,
            format!("the change is refused by existing records: {message}"),
            blocked_by,
        ));
    }

    // SQLite cannot drop or retype a column an index holds: the indexes saved views asked for
    // go before any column moves, and are built again from the views once the change is in.
    if plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::DropIndexes { .. }))
    {
        for name in crate::store::view_indexes::existing(tx, &current.name).await? {
            crate::store::view_indexes::drop_in(tx, &name).await?;
        }
    }
    for step in &plan.steps {
        apply_step(tx, current, &new, intent, step).await?;
    }
    let document = new.document();
    let version = stored.version + 1;
    let now = Utc::now();
    entities::update(
        tx,
        &current.name,
        &document,
        stored.version,
        version,
        &json!(changes),
        now,
    )
    .await?;
    Ok(Outcome::Applied {
        changes,
        document,
        version,
        steps: plan.steps.len(),
    })
}

async fn finish_change(
    ctx: &Context,
    pending: Pending,
    new_doc: Value,
    intent: ChangeIntent,
    dry_run: bool,
) -> Result<ChangeReport> {
    let Pending {
        mut tx,
        stored,
        current,
    } = pending;
    match apply_change(&mut tx, &stored, &current, new_doc, &intent).await? {
        Outcome::Unchanged(changes) => Ok(ChangeReport {
            entity: entity_document(&stored),
            changes,
            blocked_by: Vec::new(),
            applied: false,
        }),
        Outcome::Blocked(changes, _, blocked_by) if dry_run => Ok(ChangeReport {
            entity: entity_document(&stored),
            changes,
            blocked_by,
            applied: false,
        }),
        Outcome::Blocked(_, message, blocked_by) => Err(Error::conflict(message, blocked_by)),
        Outcome::Applied {
            changes,
            document,
            version,
            ..
        } if dry_run => {
            // Dropping the transaction rolls every step back.
            drop(tx);
            let mut preview = document;
            preview["version"] = json!(version);
            Ok(ChangeReport {
                entity: preview,
                changes,
                blocked_by: Vec::new(),
                applied: false,
            })
        }
        Outcome::Applied {
            changes,
            version,
            steps,
            ..
        } => {
            tx.commit().await?;
            ctx.schema.invalidate();
            tracing::info!(entity = %current.name, version, steps, "entity changed");
            // Views may ask for other indexes now (or the change dropped theirs).
            crate::layouts::view_indexes::follow(ctx, current.name.as_str()).await;
            Ok(ChangeReport {
                entity: get(ctx, current.name.as_str()).await?,
                changes,
                blocked_by: Vec::new(),
                applied: true,
            })
        }
    }
}

/// A rename must come from a field that exists, and each field can be renamed only once.
fn check_renames(current: &EntityDef, intent: &ChangeIntent) -> Result<()> {
    let mut sources = std::collections::HashSet::new();
    for from in intent.renames.values() {
        if current.field(from.as_str()).is_none() {
            return Err(Error::invalid_field(
                from.as_str(),
                format!("{} has no field '{from}' to rename", current.name),
            ));
        }
        if !sources.insert(from) {
            return Err(Error::invalid_field(
                from.as_str(),
                "is renamed twice in one change",
            ));
        }
    }
    Ok(())
}

async fn apply_step(
    tx: &mut Tx,
    old: &EntityDef,
    new: &EntityDef,
    intent: &ChangeIntent,
    step: &Step,
) -> Result<()> {
    let dialect = tx.dialect();
    let entity = &old.name;
    let new_field = |name: &FieldName| -> Result<&FieldDef> {
        new.field(name.as_str())
            .ok_or_else(|| Error::internal(format!("plan names unknown field {name}")))
    };
    let old_field = |name: &FieldName| -> Result<&FieldDef> {
        old.field(name.as_str())
            .ok_or_else(|| Error::internal(format!("plan names unknown old field {name}")))
    };
    match step {
        Step::CreateTable => tx.execute_all(&ddl::create_table(dialect, new)).await?,
        Step::AddField { field } => {
            tx.execute_all(&ddl::add_field(dialect, entity, new_field(field)?))
                .await?;
        }
        Step::RestoreField { field, restore } => {
            tx.execute_all(&ddl::restore_field(
                dialect,
                entity,
                field,
                &restore.storage,
            ))
            .await?;
            entities::delete_archived_field(tx, restore.archive_id).await?;
        }
        Step::RenameField { from, to } => {
            let field = old_field(from)?;
            tx.execute_all(&ddl::rename_field(dialect, entity, field, to))
                .await?;
            if field.kind == Kind::Autonumber {
                entities::rename_counter(tx, entity, from.as_str(), to.as_str()).await?;
            }
        }
        Step::ArchiveField { field } => {
            let field = old_field(field)?;
            let values = ddl::count_values(tx, entity, field).await?;
            let definition = json!({"schema": field.schema, "required": field.required});
            let id = entities::insert_archived_field(
                tx,
                entity,
                field.name.as_str(),
                &definition,
                field.column_type().is_none(),
                values,
                Utc::now(),
            )
            .await?;
            let storage = ddl::archive_storage(entity, field, id);
            let name = match &storage {
                Storage::Column(i) | Storage::Join(i) => i.as_str().to_owned(),
            };
            entities::set_archived_storage(tx, id, &name).await?;
            tx.execute_all(&ddl::archive_field(dialect, entity, field, &storage))
                .await?;
        }
        Step::ConvertField { field, conversion } => {
            let old_name = intent.renames.get(field).unwrap_or(field);
            let mut before = old_field(old_name)?.clone();
            before.name = field.clone();
            tx.execute_all(&ddl::convert_field(
                dialect,
                entity,
                &before,
                new_field(field)?,
                *conversion,
            ))
            .await?;
        }
        Step::DropIndexes { field } => tx.execute_all(&ddl::drop_indexes(entity, field)).await?,
        Step::DropCompoundIndex { index } => {
            tx.execute(&ddl::drop_compound_index(entity, index)).await?;
        }
        Step::CreateCompoundIndex { index } => {
            tx.execute(&ddl::create_compound_index(dialect, entity, index))
                .await?;
        }
        Step::CreateIndexes { field } => {
            tx.execute_all(&ddl::create_indexes(dialect, entity, new_field(field)?))
                .await?;
        }
        Step::Backfill { field, value } => {
            let def = new_field(field)?;
            let stored = def
                .kind
                .field_type()
                .to_sql(def, value)
                .map_err(|e| Error::invalid_field(field.as_str(), format!("default {e}")))?;
            tx.execute(&ddl::backfill(entity, field, stored)).await?;
        }
        Step::NumberRecords { field } => {
            let def = new_field(field)?;
            let pattern = def
                .autonumber
                .as_ref()
                .ok_or_else(|| Error::internal("autonumber without pattern"))?;
            let numbered = tx
                .execute(&ddl::number_records(dialect, entity, field, pattern))
                .await?;
            entities::set_counter(tx, entity, field.as_str(), numbered as i64 + 1).await?;
        }
        Step::Recompute { field } => {
            let def = new_field(field)?;
            if def.kind == Kind::Rollup {
                crate::store::records::refresh_rollup(tx, entity, def, None).await?;
            } else {
                let compiled = CompiledEntity::compile(new.clone(), 0)?;
                crate::records::compute::refresh_formulas(tx, &compiled, None, Utc::now()).await?;
            }
        }
        Step::Metadata { .. } => {}
    }
    Ok(())
}

/// `PUT /api/entities/{entity}`: replaces the definition. Fields may carry
/// `x-renamed-from: "old_name"` to rename instead of remove-and-add.
pub async fn replace(
    ctx: &Context,
    access: &Access,
    name: &str,
    mut doc: Value,
    expected_version: Option<i64>,
    dry_run: bool,
) -> Result<ChangeReport> {
    let body_version = doc.get("version").and_then(Value::as_i64);
    let pending = begin_change(ctx, access, name, expected_version.or(body_version)).await?;
    let mut intent = ChangeIntent::default();
    if let Some(properties) = doc
        .pointer_mut("/schema/properties")
        .and_then(Value::as_object_mut)
    {
        let mut problems = Vec::new();
        for (field, property) in properties.iter_mut() {
            let Some(from) = property
                .as_object_mut()
                .and_then(|p| p.remove("x-renamed-from"))
            else {
                continue;
            };
            let path = format!("schema.properties.{field}.x-renamed-from");
            match (FieldName::parse(field), from.as_str().map(FieldName::parse)) {
                (Ok(to), Some(Ok(from))) if to != from => {
                    intent.renames.insert(to, from);
                }
                (Ok(_), Some(Ok(_))) => {}
                _ => problems.push(FieldError::new(path, "must name an existing field")),
            }
        }
        if !problems.is_empty() {
            return Err(invalid_definition(problems));
        }
    }
    finish_change(ctx, pending, doc, intent, dry_run).await
}

/// The body of `POST /api/entities/{entity}/fields`: a field's property schema plus `name`,
/// `required` and `position`.
pub async fn add_field(
    ctx: &Context,
    access: &Access,
    entity: &str,
    body: Value,
    dry_run: bool,
) -> Result<ChangeReport> {
    let Value::Object(mut property) = body else {
        return Err(Error::bad_request("the body must be a JSON object"));
    };
    let name = take_name(&mut property)?;
    let required = take_required(&mut property)?;
    let position = take_position(&mut property)?;
    let pending = begin_change(ctx, access, entity, None).await?;
    if pending.current.field(name.as_str()).is_some() {
        return Err(Error::conflict(
            format!(
                "{} already has a field named '{name}'",
                pending.current.name
            ),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    let mut doc = pending.current.document();
    insert_property(&mut doc, &name, Value::Object(property), position);
    set_required(&mut doc, &name, required.unwrap_or(false));
    finish_change(ctx, pending, doc, ChangeIntent::default(), dry_run).await
}

/// `PATCH /api/entities/{entity}/fields/{field}`: `name` renames, `required` and `position`
/// set those, every other key is a JSON merge patch (RFC 7396) on the property schema.
pub async fn patch_field(
    ctx: &Context,
    access: &Access,
    entity: &str,
    field: &str,
    body: Value,
    dry_run: bool,
) -> Result<ChangeReport> {
    let Value::Object(mut patch) = body else {
        return Err(Error::bad_request("the body must be a JSON object"));
    };
    let new_name = match patch.contains_key("name") {
        true => Some(take_name(&mut patch)?),
        false => None,
    };
    let required = take_required(&mut patch)?;
    let position = take_position(&mut patch)?;
    let pending = begin_change(ctx, access, entity, None).await?;
    let current = pending
        .current
        .field(field)
        .ok_or_else(|| {
            Error::not_found(format!("{} has no field '{field}'", pending.current.name))
        })?
        .clone();
    let mut property = current.schema.clone();
    if let Some(kind) = patch
        .get("x-kind")
        .and_then(Value::as_str)
        .and_then(Kind::parse)
        && kind != current.kind
    {
        property = settings_surviving_kind_change(&property, current.kind, kind);
    }
    if patch.contains_key("x-formula") && !patch.contains_key("x-result") {
        // A new expression may yield another type; let it be inferred again.
        property.remove("x-result");
    }
    merge_patch(&mut property, &patch);

    let mut doc = pending.current.document();
    let old_index = remove_property(&mut doc, &current.name);
    set_required(&mut doc, &current.name, false);
    let name = new_name.unwrap_or_else(|| current.name.clone());
    if name != current.name && pending.current.field(name.as_str()).is_some() {
        return Err(Error::conflict(
            format!(
                "{} already has a field named '{name}'",
                pending.current.name
            ),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    insert_property(
        &mut doc,
        &name,
        Value::Object(property),
        position.or(old_index),
    );
    set_required(&mut doc, &name, required.unwrap_or(current.required));
    if name != current.name
        && doc
            .pointer("/schema/x-display-field")
            .and_then(Value::as_str)
            == Some(field)
    {
        doc["schema"]["x-display-field"] = json!(name);
    }
    if name != current.name {
        follow_in_indexes(&mut doc, field, Some(name.as_str()));
    }
    let mut intent = ChangeIntent::default();
    if name != current.name {
        intent.renames.insert(name, current.name.clone());
    }
    finish_change(ctx, pending, doc, intent, dry_run).await
}

/// `DELETE /api/entities/{entity}/fields/{field}`: archives the field with its values.
pub async fn remove_field(
    ctx: &Context,
    access: &Access,
    entity: &str,
    field: &str,
    dry_run: bool,
) -> Result<ChangeReport> {
    let pending = begin_change(ctx, access, entity, None).await?;
    let current = pending.current.field(field).cloned().ok_or_else(|| {
        Error::not_found(format!("{} has no field '{field}'", pending.current.name))
    })?;
    let mut doc = pending.current.document();
    remove_property(&mut doc, &current.name);
    set_required(&mut doc, &current.name, false);
    if doc
        .pointer("/schema/x-display-field")
        .and_then(Value::as_str)
        == Some(field)
        && let Some(schema) = doc["schema"].as_object_mut()
    {
        schema.remove("x-display-field");
    }
    follow_in_indexes(&mut doc, field, None);
    finish_change(ctx, pending, doc, ChangeIntent::default(), dry_run).await
}

/// Keeps `x-indexes` in step with a field that is renamed (`to`) or removed (`None`: the compound
/// indexes holding it go with it).
fn follow_in_indexes(doc: &mut Value, field: &str, to: Option<&str>) {
    let Some(indexes) = doc
        .pointer_mut("/schema/x-indexes")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let names = |key: &Value| {
        key.as_str()
            .map(|k| k.trim_start_matches('-') == field)
            .unwrap_or(false)
    };
    match to {
        None => {
            indexes.retain(|index| !index.as_array().is_some_and(|keys| keys.iter().any(names)))
        }
        Some(to) => {
            for key in indexes
                .iter_mut()
                .filter_map(Value::as_array_mut)
                .flatten()
                .filter(|key| names(key))
            {
                let desc = key.as_str().is_some_and(|k| k.starts_with('-'));
                *key = json!(format!("{}{to}", if desc { "-" } else { "" }));
            }
        }
    }
    if indexes.is_empty()
        && let Some(schema) = doc["schema"].as_object_mut()
    {
        schema.remove("x-indexes");
    }
}

pub async fn archived_fields(ctx: &Context, entity: &str) -> Result<Items<ArchivedFieldView>> {
    let name = parse_entity_name(entity)?;
    entities::get(&mut &ctx.db, &name)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no entity '{name}'")))?;
    let archived = entities::archived_fields(&mut &ctx.db, &name).await?;
    Ok(Items::of(archived, |a| ArchivedFieldView {
        id: a.id,
        field: a.field,
        definition: a.definition,
        values: a.value_count,
        archived_at: a.archived_at,
    }))
}

/// Restores an archived field with its values, under its old name or `name`.
pub async fn restore_field(
    ctx: &Context,
    access: &Access,
    entity: &str,
    archive_id: i64,
    body: Value,
    dry_run: bool,
) -> Result<ChangeReport> {
    let mut options = match body {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => return Err(Error::bad_request("the body must be a JSON object")),
    };
    let rename = match options.contains_key("name") {
        true => Some(take_name(&mut options)?),
        false => None,
    };
    let required = take_required(&mut options)?;
    let position = take_position(&mut options)?;
    if let Some(key) = options.keys().next() {
        return Err(Error::invalid_field(
            key.as_str(),
            "is not a restore option (name, required, position)",
        ));
    }
    let mut pending = begin_change(ctx, access, entity, None).await?;
    let archived =
        entities::archived_field_by_id(&mut pending.tx, &pending.current.name, archive_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("there is no archived field {archive_id}")))?;
    let name = match rename {
        Some(name) => name,
        None => FieldName::parse(&archived.field).map_err(Error::internal)?,
    };
    if pending.current.field(name.as_str()).is_some() {
        return Err(Error::conflict(
            format!(
                "{} already has a field named '{name}'; restore it under another name",
                pending.current.name
            ),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    let storage_ident = Ident::stored(&archived.storage)
        .ok_or_else(|| Error::internal("archived storage name is malformed"))?;
    let storage = if archived.is_join {
        Storage::Join(storage_ident)
    } else {
        Storage::Column(storage_ident)
    };
    let mut doc = pending.current.document();
    insert_property(
        &mut doc,
        &name,
        archived.definition["schema"].clone(),
        position,
    );
    let was_required = archived.definition["required"].as_bool().unwrap_or(false);
    set_required(&mut doc, &name, required.unwrap_or(was_required));
    let mut intent = ChangeIntent::default();
    intent.restores.insert(
        name,
        Restore {
            archive_id,
            storage,
        },
    );
    finish_change(ctx, pending, doc, intent, dry_run).await
}

/// `DELETE /api/entities/{entity}`: archives the table (renamed out of the way, data kept) and
/// removes the definition. Refused while other entities look it up or roll it up.
pub async fn delete(ctx: &Context, access: &Access, name: &str) -> Result<ArchivedEntity> {
    access.require(Special::ManageSchema)?;
    let Pending {
        mut tx,
        stored,
        current,
    } = begin_change(ctx, access, name, None).await?;
    let others = catalog(&mut tx, &current.name).await?;
    let mut dependents: Vec<FieldError> = Vec::new();
    for other in others.values() {
        for field in &other.fields {
            let looks_up = field.target.as_ref() == Some(&current.name);
            let rolls_up = field
                .rollup
                .as_ref()
                .is_some_and(|r| r.entity == current.name);
            if looks_up || rolls_up {
                dependents.push(FieldError::new(
                    format!("{}.{}", other.name, field.name),
                    format!("depends on {}", current.name),
                ));
            }
        }
    }
    if !dependents.is_empty() {
        return Err(Error::conflict(
            format!(
                "{} cannot be deleted while other entities depend on it",
                current.name
            ),
            dependents,
        ));
    }
    let records = record_count(&mut tx, &current.name).await?;
    let now = Utc::now();
    let id =
        entities::insert_archived_entity(&mut tx, &current.name, &stored.definition, now).await?;
    let (statements, tables) = ddl::archive_entity(tx.dialect(), &current, id);
    tx.execute_all(&statements).await?;
    let tables: Vec<String> = tables.iter().map(|t| t.as_str().to_owned()).collect();
    entities::finish_archived_entity(&mut tx, id, &current.name, &tables).await?;
    entities::delete(&mut tx, &current.name).await?;
    tx.commit().await?;
    ctx.schema.invalidate();
    tracing::info!(entity = %current.name, archive = id, "entity archived");
    Ok(ArchivedEntity {
        entity: current.name.to_string(),
        archived: true,
        archive_id: id,
        records,
        tables,
    })
}

async fn record_count(tx: &mut Tx, entity: &EntityName) -> Result<i64> {
    let sql = crate::store::Sql::new(format!("SELECT COUNT(*) FROM {}", Ident::table(entity)));
    let row = tx
        .fetch_one(&sql, &[crate::store::ColumnType::Integer])
        .await?;
    Ok(row[0].as_i64().unwrap_or_default())
}

pub async fn versions(ctx: &Context, name: &str) -> Result<Items<EntityVersion>> {
    let name = parse_entity_name(name)?;
    let versions = entities::versions(&mut &ctx.db, &name).await?;
    if versions.is_empty() {
        return Err(Error::not_found(format!("there is no entity '{name}'")));
    }
    Ok(Items::of(versions, |v| EntityVersion {
        version: v.version,
        changes: v.changes,
        created_at: v.created_at,
        definition: v.definition,
    }))
}

fn take_name(map: &mut Map<String, Value>) -> Result<FieldName> {
    let value = map.remove("name");
    let text = value
        .as_ref()
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid_field("name", "is required: the field's name"))?;
    FieldName::parse(text).map_err(|message| Error::invalid_field("name", message))
}

fn take_required(map: &mut Map<String, Value>) -> Result<Option<bool>> {
    match map.remove("required") {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(Error::invalid_field("required", "must be true or false")),
    }
}

fn take_position(map: &mut Map<String, Value>) -> Result<Option<usize>> {
    match map.remove("position") {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|p| Some(p as usize))
            .ok_or_else(|| Error::invalid_field("position", "must be a whole number from 0")),
    }
}

fn properties_mut(doc: &mut Value) -> &mut Map<String, Value> {
    if !doc["schema"]["properties"].is_object() {
        doc["schema"]["properties"] = json!({});
    }
    doc["schema"]["properties"]
        .as_object_mut()
        .expect("properties was just made an object")
}

/// Inserts a property at a position (the end when `None` or past it), keeping the others'
/// order.
fn insert_property(doc: &mut Value, name: &FieldName, property: Value, position: Option<usize>) {
    let properties = properties_mut(doc);
    let mut entries: Vec<(String, Value)> = std::mem::take(properties).into_iter().collect();
    let at = position.unwrap_or(entries.len()).min(entries.len());
    entries.insert(at, (name.to_string(), property));
    *properties = entries.into_iter().collect();
}

/// Removes a property; returns where it was.
fn remove_property(doc: &mut Value, name: &FieldName) -> Option<usize> {
    let properties = properties_mut(doc);
    let index = properties.keys().position(|k| k == name.as_str());
    properties.shift_remove(name.as_str());
    index
}

fn set_required(doc: &mut Value, name: &FieldName, required: bool) {
    let mut list: Vec<Value> = doc["schema"]["required"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.retain(|v| v.as_str() != Some(name.as_str()));
    if required {
        list.push(json!(name));
    }
    doc["schema"]["required"] = Value::Array(list);
}

/// When a field changes kind, keeps only settings both kinds understand (labels, help,
/// unique …); keywords the old kind implied are dropped rather than carried over.
fn settings_surviving_kind_change(
    property: &Map<String, Value>,
    from: Kind,
    to: Kind,
) -> Map<String, Value> {
    let (old_settings, new_settings) = (from.field_type().settings(), to.field_type().settings());
    property
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            let common = COMMON_KEYWORDS.contains(&k)
                && !matches!(
                    k,
                    "type" | "format" | "enum" | "items" | "uniqueItems" | "readOnly" | "default"
                );
            common || (old_settings.contains(&k) && new_settings.contains(&k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// RFC 7396 JSON merge patch: `null` removes a key, objects merge, anything else replaces.
fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let entry = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Some(map) = entry.as_object_mut() {
                    merge_patch(map, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::plan::Check;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}})
            .as_object()
            .unwrap()
            .clone();
        let patch = json!({"a": null, "b": {"c": null, "e": 4}, "f": [1]});
        merge_patch(&mut target, patch.as_object().unwrap());
        assert_eq!(
            Value::Object(target),
            json!({"b": {"d": 3, "e": 4}, "f": [1]})
        );
    }

    #[test]
    fn kind_changes_drop_foreign_settings() {
        let property = json!({
            "x-kind": "decimal", "x-scale": 2, "pattern": "^x$", "x-label": {"en": "A"},
            "type": ["number", "string"], "x-unique": true
        });
        let kept = settings_surviving_kind_change(
            property.as_object().unwrap(),
            Kind::Decimal,
            Kind::Text,
        );
        let mut keys: Vec<&str> = kept.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["x-kind", "x-label", "x-unique"]);
    }

    #[test]
    fn properties_keep_their_order() {
        let mut doc = json!({"schema": {"properties": {"a": {}, "b": {}, "c": {}}}});
        let b = FieldName::parse("b").unwrap();
        assert_eq!(remove_property(&mut doc, &b), Some(1));
        insert_property(&mut doc, &b, json!({}), Some(0));
        let keys: Vec<&String> = doc["schema"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn checks_name_their_field() {
        let check = Check::NoRecords {
            field: FieldName::parse("x").unwrap(),
            reason: String::new(),
        };
        assert_eq!(check.field().as_str(), "x");
    }
}
