//! Keeping the search index current: a subscriber of record events that re-indexes a record's
//! searchable fields in the same transaction as the write (so a record is found by its new text
//! in the very next request, and a rolled-back write leaves the index as it was), and the
//! rebuild behind `tessera reindex`.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::tokens::index_text;
use crate::context::Context;
use crate::error::Result;
use crate::events::{EventKind, EventScope, RecordEvent, Subscriber};
use crate::records::output::{self, Extras, Shape};
use crate::schema::compiled::CompiledEntity;
use crate::store::records::{self, pos};
use crate::store::search::{self as store, IndexRow};
use crate::store::{SqlValue, Tx};

/// Longest text kept for snippets (the tokens cover the whole value).
const MAX_BODY_CHARS: usize = 2_000;

/// Whether an index row's text may have been cut to [`MAX_BODY_CHARS`] (its tokens come from
/// the whole text, so a match may lie past the cut).
pub fn is_cut(body: &str) -> bool {
    body.chars().nth(MAX_BODY_CHARS - 1).is_some()
}

/// The index rows of a record: one per searchable field with text.
pub fn rows_of(entity: &CompiledEntity, record: &Value) -> Vec<IndexRow> {
    let title_field = entity.def.title_field().map(|f| f.name.as_str());
    let title = title_field
        .and_then(|f| record.get(f))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    entity
        .searchable
        .iter()
        .filter_map(|&i| entity.def.fields.get(i))
        .filter_map(|f| {
            let text = record.get(f.name.as_str())?.as_str()?.trim();
            if text.is_empty() {
                return None;
            }
            Some(IndexRow {
                field: f.name.to_string(),
                is_title: Some(f.name.as_str()) == title_field,
                title: title.clone(),
                // No more bytes than the limit in characters: nothing to cut, a plain copy.
                body: if text.len() <= MAX_BODY_CHARS {
                    text.to_owned()
                } else {
                    text.chars().take(MAX_BODY_CHARS).collect()
                },
                tokens: index_text(text),
            })
        })
        .collect()
}

/// Whether an update touched what the index holds (searchable fields, the title, the
/// record's placement).
fn touches_index(entity: &CompiledEntity, event: &RecordEvent) -> bool {
    let title = entity.def.title_field().map(|f| f.name.as_str());
    event.changes.keys().any(|key| {
        matches!(key.as_str(), "owner" | "department")
            || Some(key.as_str()) == title
            || entity.def.field(key).is_some_and(|f| f.is_searchable())
    })
}

/// Indexes a record; `fresh` when it cannot have rows yet (just created), which saves the
/// removal on the hottest write path.
async fn index_record(
    tx: &mut Tx,
    entity: &CompiledEntity,
    record: &Value,
    fresh: bool,
) -> Result<()> {
    let id = record["id"].as_str().unwrap_or_default();
    let (name, rows) = (entity.def.name.as_str(), rows_of(entity, record));
    let (owner, department) = (record["owner"].as_str(), record["department"].as_str());
    if fresh {
        store::insert(tx, name, id, owner, department, &rows).await
    } else {
        store::replace(tx, name, id, owner, department, &rows).await
    }
}

/// Re-indexes records as they are written.
pub struct SearchIndex;

impl Subscriber for SearchIndex {
    fn name(&self) -> &'static str {
        "search index"
    }

    fn on_event<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        event: &'a RecordEvent,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let entity = scope.catalog.entity(&event.entity)?;
            match event.kind {
                EventKind::Created => index_record(tx, &entity, &event.record, true).await,
                EventKind::Restored => index_record(tx, &entity, &event.record, false).await,
                EventKind::Updated | EventKind::Merged => {
                    if touches_index(&entity, event) {
                        index_record(tx, &entity, &event.record, false).await
                    } else {
                        Ok(())
                    }
                }
                EventKind::Deleted | EventKind::Erased => {
                    store::remove(tx, &event.entity, &event.id).await
                }
            }
        })
    }

    /// New records of a batch are indexed together: a few statements for all of them (other
    /// events in between are handled in order, one at a time).
    fn on_events<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut fresh: Vec<(&RecordEvent, Vec<IndexRow>)> = Vec::new();
            for event in events {
                if event.kind == EventKind::Created {
                    let entity = scope.catalog.entity(&event.entity)?;
                    fresh.push((event, rows_of(&entity, &event.record)));
                } else {
                    insert_fresh(tx, &std::mem::take(&mut fresh)).await?;
                    self.on_event(tx, scope, event).await?;
                }
            }
            insert_fresh(tx, &fresh).await
        })
    }
}

/// Indexes records just created, with one multi-row statement per few hundred rows.
async fn insert_fresh(tx: &mut Tx, fresh: &[(&RecordEvent, Vec<IndexRow>)]) -> Result<()> {
    let placed: Vec<store::Placed> = fresh
        .iter()
        .flat_map(|(event, rows)| {
            // Looked up once a record, not once a row: each lookup hashes the key.
            let owner = event.record["owner"].as_str();
            let department = event.record["department"].as_str();
            rows.iter().map(move |row| store::Placed {
                entity: event.entity.as_str(),
                record_id: event.id.as_str(),
                owner,
                department,
                row,
            })
        })
        .collect();
    if placed.is_empty() {
        return Ok(());
    }
    store::insert_many(tx, &placed).await
}

/// Rebuilds the index of every entity from its live records (`tessera reindex`), one
/// transaction per batch. Returns the records indexed per entity. On PostgreSQL the GIN index
/// of the tokens is set aside meanwhile and built once at the end: kept up row by row, a
/// million records took more than twenty minutes. (Searches scan meanwhile; the index comes
/// back even when the rebuild fails, and at the next start if the server stopped.)
pub async fn rebuild(ctx: &Context) -> Result<Vec<(String, u64)>> {
    // Many rows to few commits: SQLite's writer holds more of the index meanwhile.
    let _bulk = ctx.db.bulk_load().await?;
    store::set_token_index_aside(&ctx.db).await?;
    let outcome = rebuild_entities(ctx).await;
    store::restore_token_index(&ctx.db).await?;
    // The planner's picture of the index changed wholesale (searches and the next rebuild
    // plan by it).
    crate::store::statistics::analyze_table(&ctx.db, &crate::store::Ident::fixed("search_rows"))
        .await?;
    outcome
}

async fn rebuild_entities(ctx: &Context) -> Result<Vec<(String, u64)>> {
    const BATCH: i64 = 1_000;
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    let mut done = Vec::new();
    for entity in catalog.entities() {
        let name = entity.def.name.to_string();
        let clearing = name.clone();
        ctx.db
            .write(move |tx| Box::pin(async move { store::clear(tx, &clearing).await }))
            .await?;
        let mut after = String::new();
        let mut count = 0u64;
        loop {
            let rows = records::rows_after(&mut &ctx.db, &entity.layout, &after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = last[pos::ID].as_str().unwrap_or_default().to_owned();
            let live: Vec<Value> = rows
                .into_iter()
                .filter(|r| matches!(r[pos::DELETED_AT], SqlValue::Null(_)))
                .map(|row| {
                    output::record(
                        &entity,
                        &entity.layout.full,
                        row,
                        &Shape::full(),
                        &Extras::default(),
                    )
                })
                .collect();
            count += live.len() as u64;
            let batch_entity = entity.clone();
            ctx.db
                .write(move |tx| {
                    Box::pin(async move {
                        let name = batch_entity.def.name.as_str();
                        let rows: Vec<(&Value, Vec<IndexRow>)> = live
                            .iter()
                            .map(|r| (r, rows_of(&batch_entity, r)))
                            .collect();
                        let placed: Vec<store::Placed> = rows
                            .iter()
                            .flat_map(|(record, rows)| {
                                rows.iter().map(move |row| store::Placed {
                                    entity: name,
                                    record_id: record["id"].as_str().unwrap_or_default(),
                                    owner: record["owner"].as_str(),
                                    department: record["department"].as_str(),
                                    row,
                                })
                            })
                            .collect();
                        // A record written since the index was cleared is indexed already.
                        store::insert_unindexed(tx, name, &placed).await
                    })
                })
                .await?;
        }
        done.push((name, count));
    }
    Ok(done)
}
