//! Indexes that follow use: a saved list or kanban view that filters by equalities and sorts
//! asks for a compound index over those columns (equalities first, then the sort), so opening
//! the view reads one index range in order instead of sorting every matching row. The index is
//! created when a view needing it is saved and dropped when no view needs it any more. On a
//! table above [`AUTOMATIC_ROWS`] live records the index is only proposed (building it would
//! hold writers up): an admin accepts a proposal by adding it to the entity's `x-indexes`.
//! Decision: docs/decisions/018-view-indexes.md.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Serialize;

use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::records::filter::{self, FilterContext};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::schema::definition::{
    CompoundIndex, INDEXABLE_SYSTEM_COLUMNS, IndexKey, MAX_INDEX_COLUMNS,
};
use crate::store::layouts::{self as store, ViewRow};
use crate::store::query::{Alias, Cmp, Condition};
use crate::store::view_indexes;

/// Above this many live records a view's index is proposed, not built on the spot.
pub const AUTOMATIC_ROWS: u64 = 200_000;

/// The index a view asks for, if any: its filter's equalities on indexable columns, then
/// (kanban) the column it groups by, then its sort keys; two to four columns.
pub fn wanted(catalog: &Catalog, entity: &CompiledEntity, view: &ViewRow) -> Option<CompoundIndex> {
    let access = Access::system();
    let doc = &view.document;
    let mut keys: Vec<IndexKey> = Vec::new();
    let push = |keys: &mut Vec<IndexKey>, column: &str, desc: bool| {
        if indexable(entity, column) && !keys.iter().any(|k| k.column == column) {
            keys.push(IndexKey {
                column: column.to_owned(),
                desc,
            });
        }
    };
    if let Some(source) = doc["filter"].as_str() {
        let context = FilterContext {
            catalog,
            entity,
            now: Utc::now(),
            access: &access,
        };
        let condition = filter::compile(source, &context).ok()?;
        for column in equalities(&condition) {
            push(&mut keys, &column, false);
        }
    }
    match view.kind.as_str() {
        "list" => {}
        "kanban" => push(&mut keys, doc["group_by"].as_str()?, false),
        _ => return None,
    }
    let equalities = keys.len();
    if let Some(spec) = doc["sort"].as_str() {
        let (sort, _) = filter::sort(spec, entity, &access).ok()?;
        for key in sort {
            // An index serves a sort only as far as its keys go in order.
            if !indexable(entity, key.column.as_str()) {
                break;
            }
            push(&mut keys, key.column.as_str(), key.desc);
        }
    }
    // Without a sort after the equalities the single-field indexes do as well.
    if keys.len() == equalities || keys.len() < 2 {
        return None;
    }
    keys.truncate(MAX_INDEX_COLUMNS);
    let index = CompoundIndex { keys };
    (!covered(entity, &index)).then_some(index)
}

/// Columns compared for equality with one value at the top level of a filter (`a = 1 and …`).
fn equalities(condition: &Condition) -> Vec<String> {
    let one = |c: &Condition| match c {
        Condition::Compare {
            column,
            op: Cmp::Eq,
            or_null: false,
            ..
        } if column.alias == Alias::T => Some(column.name.as_str().to_owned()),
        _ => None,
    };
    match condition {
        Condition::And(parts) => parts.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

fn indexable(entity: &CompiledEntity, column: &str) -> bool {
    INDEXABLE_SYSTEM_COLUMNS.contains(&column)
        || entity
            .def
            .field(column)
            .is_some_and(|f| f.column_type().is_some() && f.capabilities().sortable)
}

/// Whether a declared compound index already starts with the same keys (read forwards or
/// backwards: an index serves both directions).
fn covered(entity: &CompiledEntity, wanted: &CompoundIndex) -> bool {
    entity.def.indexes.iter().any(|declared| {
        declared.keys.len() >= wanted.keys.len()
            && [false, true].iter().any(|flip| {
                wanted
                    .keys
                    .iter()
                    .zip(&declared.keys)
                    .all(|(w, d)| w.column == d.column && (w.desc != d.desc) == *flip)
            })
    })
}

/// The view indexes of an entity: each wanted index with the views that want it.
async fn plan(
    ctx: &Context,
    entity: &str,
) -> Result<
    Option<(
        std::sync::Arc<CompiledEntity>,
        BTreeMap<String, (CompoundIndex, Vec<String>)>,
    )>,
> {
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    let Ok(compiled) = catalog.entity(entity) else {
        return Ok(None);
    };
    let views = store::views(&mut &ctx.db, None, Some(entity)).await?;
    let mut by_name: BTreeMap<String, (CompoundIndex, Vec<String>)> = BTreeMap::new();
    for view in &views {
        if let Some(index) = wanted(&catalog, &compiled, view) {
            let name = view_indexes::name(&compiled.def.name, &index)
                .as_str()
                .to_owned();
            by_name
                .entry(name)
                .or_insert_with(|| (index, Vec::new()))
                .1
                .push(view.id.clone());
        }
    }
    Ok(Some((compiled, by_name)))
}

/// Brings an entity's view indexes in line with its views: drops those no view wants,
/// creates the missing ones while the table is small enough. Called after a view is saved or
/// deleted and after the entity's definition changes.
pub async fn reconcile(ctx: &Context, entity: &str) -> Result<()> {
    let Some((compiled, wanted)) = plan(ctx, entity).await? else {
        return Ok(());
    };
    let existing = view_indexes::existing(&mut &ctx.db, &compiled.def.name).await?;
    for name in existing.iter().filter(|n| !wanted.contains_key(*n)) {
        view_indexes::drop(&ctx.db, name).await?;
        tracing::info!(entity, index = %name, "view index dropped: no view needs it");
    }
    let missing: Vec<&CompoundIndex> = wanted
        .iter()
        .filter(|(name, _)| !existing.contains(name))
        .map(|(_, (index, _))| index)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if view_indexes::larger_than(&ctx.db, &compiled.def.name, AUTOMATIC_ROWS).await? {
        tracing::info!(
            entity,
            proposals = missing.len(),
            "view indexes proposed, not built: a large table"
        );
        return Ok(());
    }
    for index in missing {
        view_indexes::create(&ctx.db, &compiled.def.name, index).await?;
        tracing::info!(entity, index = ?index.spelling(), "view index created");
    }
    Ok(())
}

/// [`reconcile`], logged instead of failing the save that called it: the view is saved either
/// way, and the next save tries again.
pub async fn follow(ctx: &Context, entity: &str) {
    if let Err(error) = reconcile(ctx, entity).await {
        tracing::warn!(entity, %error, "view indexes not brought up to date");
    }
}

/// An index of an entity's records, as `GET /api/entities/{entity}/indexes` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct IndexView {
    /// Columns in order; `-` marks a descending one.
    pub columns: Vec<String>,
    /// `x-indexed`, `x-indexes` or `views`.
    pub source: &'static str,
    /// `built`, or `proposed` when the table is past [`AUTOMATIC_ROWS`].
    pub state: &'static str,
    /// The index's name (those views asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The ids of the views that asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub views: Option<Vec<String>>,
}

/// The indexes of an entity's records, and the size past which a view's index is proposed.
#[derive(Debug, Clone, Serialize)]
pub struct Indexes {
    pub items: Vec<IndexView>,
    pub automatic_rows: u64,
}

/// Every index of an entity's records for the admin: the declared ones (`x-indexed` fields,
/// `x-indexes`) and those its views asked for, built or proposed.
pub async fn describe(ctx: &Context, access: &Access, entity: &str) -> Result<Indexes> {
    access.require(Special::ManageSchema)?;
    let Some((compiled, wanted)) = plan(ctx, entity).await? else {
        return Err(Error::not_found(format!("there is no entity '{entity}'")));
    };
    let existing = view_indexes::existing(&mut &ctx.db, &compiled.def.name).await?;
    let declared = |columns: Vec<String>, source: &'static str| IndexView {
        columns,
        source,
        state: "built",
        name: None,
        views: None,
    };
    let mut items: Vec<IndexView> = compiled
        .def
        .fields
        .iter()
        .filter(|f| f.indexed)
        .map(|f| declared(vec![f.name.to_string()], "x-indexed"))
        .collect();
    items.extend(
        compiled
            .def
            .indexes
            .iter()
            .map(|index| declared(index.spelling(), "x-indexes")),
    );
    items.extend(wanted.iter().map(|(name, (index, views))| IndexView {
        columns: index.spelling(),
        source: "views",
        state: if existing.contains(name) {
            "built"
        } else {
            "proposed"
        },
        name: Some(name.clone()),
        views: Some(views.clone()),
    }));
    Ok(Indexes {
        items,
        automatic_rows: AUTOMATIC_ROWS,
    })
}
