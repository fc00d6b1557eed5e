//! Changes to many records at once, each in one transaction with history per record: merging
//! duplicates (re-pointing every lookup in every entity) and bulk update or delete by filter.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::compute;
use super::input::{self, Mode};
use super::list::ReadQuery;
use super::output::Shape;
use super::rules::write_tags;
use super::service::{diff, full_json, no_record, parse_id};
use super::write::{Need, Writer, apply_update, authorize, reachable, trash};
use crate::auth::{Access, Action, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::events::{EventKind, Origin, RecordEvent};
use crate::store::records;
use crate::store::{Ident, Tx, history, tags};

/// Most records one bulk change may touch.
pub const MAX_BULK: i64 = 10_000;

/// `POST /api/records/{entity}/merge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The record that stays.
    pub target: String,
    /// The duplicates merged into it (then trashed).
    pub sources: Vec<String>,
    /// Field values to take from a source: `{"phone": "<source id>"}`.
    #[serde(default)]
    pub take: Map<String, Value>,
}

pub async fn merge(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    request: &MergeRequest,
) -> Result<Value> {
    let w = Writer::new(ctx, access, origin).await?;
    let shape = Shape::readable(&w.target(entity)?.entity, access);
    let (entity, request) = (entity.to_owned(), request.clone());
    let mut merged = ctx
        .db
        .write(move |tx| Box::pin(async move { merge_in(tx, &w, &entity, &request).await }))
        .await?;
    shape.strip(&mut merged["record"]);
    Ok(merged)
}

/// Merges duplicates into one record: the command behind `POST …/merge`.
pub async fn merge_in(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    request: &MergeRequest,
) -> Result<Value> {
    let target = w.target(entity)?;
    let target = &target;
    let entity = &target.entity;
    authorize(
        &w.access,
        entity.def.name.as_str(),
        Need::Special(Special::Merge),
    )?;
    let keep = parse_id(entity, &request.target)?;
    let mut sources = Vec::new();
    for source in &request.sources {
        let id = parse_id(entity, source)?;
        if id == keep || sources.contains(&id) {
            return Err(Error::invalid_field(
                "sources",
                "lists the target or a record twice",
            ));
        }
        sources.push(id);
    }
    if sources.is_empty() {
        return Err(Error::invalid_field("sources", "names no record to merge"));
    }
    let take = &request.take;
    let access = &w.access;
    let now = w.now;
    let kept = reachable(tx, target, access, &keep, Action::Update, false).await?;
    let old_json = full_json(tx, entity, kept).await?;
    let mut source_rows = Vec::new();
    for id in &sources {
        let row = reachable(tx, target, access, id, Action::Delete, false).await?;
        source_rows.push(full_json(tx, entity, row).await?);
    }

    // Values taken from the sources, applied to the target as one update.
    let mut taken = Map::new();
    let mut problems = Vec::new();
    for (field, from) in take {
        let from = from.as_str().and_then(|f| uuid::Uuid::parse_str(f).ok());
        let Some(index) = from.and_then(|f| {
            sources
                .iter()
                .position(|s| *s == f.hyphenated().to_string())
        }) else {
            problems.push(FieldError::new(
                field.clone(),
                "must name one of the sources",
            ));
            continue;
        };
        match entity.def.field(field) {
            Some(f) if !f.is_computed() => {
                taken.insert(field.clone(), source_rows[index][field.as_str()].clone());
            }
            _ => problems.push(FieldError::new(
                field.clone(),
                "is not a field that can be taken",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(Error::invalid(
            "take names fields or sources that do not fit",
            problems,
        ));
    }
    let input = input::parse(entity, &Value::Object(taken.clone()), Mode::Update, access)?;
    let name = entity.def.name.as_str();

    // The sources' history moves to the target, then the sources go to the trash (so values
    // that must be unique are free for the target to take).
    history::move_to(tx, name, &sources, &keep).await?;
    for id in &sources {
        trash(tx, w, target, id, None, json!({"merged_into": keep})).await?;
    }
    apply_update(tx, w, target, &keep, &input, None, false).await?;

    // Every lookup, in every entity, that points at a source now points at the target.
    let mut repointed = Map::new();
    for (other_name, field, multi) in &entity.referrers {
        let changed = if *multi {
            let join = Ident::join_table(other_name, field);
            records::repoint_links(tx, &join, &sources, &keep).await?
        } else {
            records::repoint_lookup(tx, other_name, field, &sources, &keep).await?
        };
        for id in &changed {
            history::record(
                tx,
                other_name.as_str(),
                id,
                "update",
                access.actor_id(),
                now,
                &json!({ field.as_str(): {"merged": sources, "new": keep} }),
            )
            .await?;
        }
        if !changed.is_empty() {
            repointed.insert(format!("{other_name}.{field}"), json!(changed.len()));
            // Rollups that follow this lookup move from the sources to the target.
            for rollup in entity.def.fields.iter().filter(|f| {
                f.rollup
                    .as_ref()
                    .is_some_and(|r| r.entity == *other_name && r.via == *field)
            }) {
                let mut parents = sources.clone();
                parents.push(keep.clone());
                records::refresh_rollup(tx, &entity.def.name, rollup, Some(&parents)).await?;
            }
        }
    }
    let mut everyone = sources.clone();
    everyone.push(keep.clone());
    compute::refresh_formulas(tx, entity, Some(&everyone), now).await?;

    // The target carries every tag the duplicates had.
    let mut all_tags: Vec<String> = tags::of_records(tx, name, &everyone)
        .await?
        .into_values()
        .flatten()
        .collect();
    let mut seen = HashSet::new();
    all_tags.retain(|t| seen.insert(t.clone()));
    all_tags.sort();
    write_tags(tx, entity, &keep, &all_tags, now).await?;
    let row = records::get(tx, &entity.layout, &keep, false)
        .await?
        .ok_or_else(|| no_record(entity, &keep))?;
    let record = full_json(tx, entity, row).await?;
    history::record(
        tx,
        name,
        &keep,
        "merge",
        None,
        now,
        &json!({"sources": sources, "taken": taken, "repointed": repointed}),
    )
    .await?;
    let changes = match diff(entity, Some(&old_json), Some(&record)) {
        Value::Object(changes) => changes,
        _ => Map::new(),
    };
    let event = RecordEvent {
        entity: entity.def.name.to_string(),
        id: keep.clone(),
        kind: EventKind::Merged,
        changes,
        record: record.clone(),
        old: Some(old_json),
        actor: access.actor_id().map(str::to_owned),
        origin: w.origin,
        at: now,
        merged: sources.clone(),
    };
    w.emit(tx, event).await?;
    Ok(json!({"record": record, "merged": sources, "repointed": repointed}))
}

/// `POST /api/records/{entity}/bulk`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// Which records: a filter expression (required, so nothing is changed by accident).
    pub filter: String,
    /// `update` or `delete`.
    pub action: String,
    /// For `update`: the values to set.
    #[serde(default)]
    pub set: Option<Value>,
}

pub async fn bulk(
    ctx: &Context,
    access: &Access,
    origin: Origin,
    entity: &str,
    request: &BulkRequest,
) -> Result<Value> {
    let w = Writer::new(ctx, access, origin).await?;
    let (entity, request) = (entity.to_owned(), request.clone());
    ctx.db
        .write(move |tx| Box::pin(async move { bulk_in(tx, &w, &entity, &request).await }))
        .await
}

/// Updates or trashes every record a filter matches (at most [`MAX_BULK`]): the command
/// behind `POST …/bulk`.
pub async fn bulk_in(
    tx: &mut Tx,
    w: &Writer,
    entity: &str,
    request: &BulkRequest,
) -> Result<Value> {
    let target = w.target(entity)?;
    let access = &w.access;
    let name = target.entity.def.name.to_string();
    authorize(access, &name, Need::Special(Special::Bulk))?;
    if request.filter.trim().is_empty() {
        return Err(Error::invalid_field(
            "filter",
            "is required; to change every record say so, e.g. id != null",
        ));
    }
    let input = match (request.action.as_str(), &request.set) {
        ("update", Some(set)) => {
            let input = input::parse(&target.entity, set, Mode::Update, access)?;
            if input.version.is_some() {
                return Err(Error::invalid_field("version", "cannot be set in bulk"));
            }
            Some(input)
        }
        ("update", None) => return Err(Error::invalid_field("set", "is required to update")),
        ("delete", None) => None,
        ("delete", Some(_)) => return Err(Error::invalid_field("set", "does not go with delete")),
        (other, _) => {
            return Err(Error::invalid_field(
                "action",
                format!("'{other}' is not update or delete"),
            ));
        }
    };
    let scope = if input.is_some() {
        Action::Update
    } else {
        Action::Delete
    };
    let query = ReadQuery {
        scope,
        filter: Some(&request.filter),
        ..ReadQuery::new(&target, access)
    };
    let ids = query.ids(tx, MAX_BULK + 1).await?;
    if ids.len() as i64 > MAX_BULK {
        return Err(Error::invalid_field(
            "filter",
            format!("matches more than {MAX_BULK} records; narrow it and repeat"),
        ));
    }
    if let Some(input) = &input
        && ids.len() > 1
        && let Some((field, ..)) = input.unique.first()
    {
        return Err(Error::conflict(
            format!(
                "{field} must be unique, so it cannot be set on {} records at once",
                ids.len()
            ),
            vec![FieldError::new(field.clone(), "is unique")],
        ));
    }
    for id in &ids {
        match &input {
            Some(input) => {
                apply_update(tx, w, &target, id, input, None, true).await?;
            }
            None => {
                trash(tx, w, &target, id, None, json!({"bulk": true})).await?;
            }
        }
    }
    Ok(json!({"action": request.action, "matched": ids.len(), "ids": ids}))
}
