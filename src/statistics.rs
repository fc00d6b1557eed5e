//! Planner statistics that stay current.
//!
//! A table filled in seconds (an import, sample data, a bulk change) has no statistics, or
//! statistics of when it was small, and the planner then picks the wrong index: on SQLite a list
//! filtered by `stage` and sorted by `amount` sorted every matching row in a temporary B-tree
//! instead of walking the `amount` index, seven times slower. PostgreSQL's autovacuum catches up
//! within a minute or so; SQLite has nothing of the kind.
//!
//! So the planner statistics of an entity's table are refreshed
//! - when its rows have grown markedly since the last refresh: a record-event subscriber counts
//!   the rows written per entity and, past a threshold, refreshes that table in the background
//!   (never inside the writer's transaction, and one refresh at a time);
//! - after bulk loads (template sample data; imports and bulk changes count their rows through
//!   the same events). While a bulk load runs on SQLite its rows are only counted: each refresh
//!   there changes the schema (see `store::statistics`), so every connection prepares its
//!   statements again, the import's large inserts included, and an import of a million rows
//!   refreshed some thirty times on its way. An import refreshes its table once it ends;
//! - at start, for tables that have none.
//!
//! SQLite's `ANALYZE` reads a bounded sample (`analysis_limit`), so a refresh costs milliseconds
//! even on a million rows and does not hold up writers for long.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::events::{Committed, EventKind, Subscriber};
use crate::schema::names::EntityName;
use crate::store::statistics as store;
use crate::store::{Db, Ident};

/// Rows written to a table before its statistics are refreshed, at the least…
const MIN_CHANGED_ROWS: u64 = 500;
/// …and as a share of the rows it had at the last refresh (a quarter: 25 % growth).
const GROWTH_DIVISOR: u64 = 4;

/// Counts writes per entity and refreshes a table's statistics when it has changed markedly.
pub struct PlannerStatistics {
    db: Db,
    tables: Mutex<HashMap<String, Counts>>,
    refreshing: Arc<AtomicBool>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    /// Rows written since the last refresh.
    changed: u64,
    /// Rows known at the last refresh (created since the server started, when unknown).
    rows: u64,
}

impl PlannerStatistics {
    pub fn new(db: Db) -> Self {
        PlannerStatistics {
            db,
            tables: Mutex::new(HashMap::new()),
            refreshing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Notes rows written to an entity's table (`created` of them new); returns whether the
    /// table is due for a refresh. During a bulk load the rows only count towards the table's
    /// size: the load refreshes the statistics itself when it ends.
    fn note(&self, entity: &str, created: u64, written: u64) -> bool {
        let Ok(mut tables) = self.tables.lock() else {
            return false;
        };
        if !tables.contains_key(entity) {
            tables.insert(entity.to_owned(), Counts::default());
        }
        let Some(counts) = tables.get_mut(entity) else {
            return false;
        };
        counts.rows += created;
        if self.db.bulk_loading() {
            return false;
        }
        counts.changed += written;
        let due = counts.changed >= MIN_CHANGED_ROWS.max(counts.rows / GROWTH_DIVISOR);
        if due {
            counts.changed = 0;
        }
        due
    }

    /// Refreshes an entity's statistics in the background. One refresh at a time; a table
    /// that comes due meanwhile is refreshed on its next threshold (or by the hourly upkeep).
    fn refresh(&self, entity: &str) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (db, refreshing, entity) =
            (self.db.clone(), self.refreshing.clone(), entity.to_owned());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = analyze_entity(&db, &entity).await {
                    tracing::warn!(%error, entity, "cannot refresh planner statistics");
                }
                refreshing.store(false, Ordering::Release);
            });
        } else {
            self.refreshing.store(false, Ordering::Release);
        }
    }
}

impl Subscriber for PlannerStatistics {
    fn name(&self) -> &'static str {
        "planner statistics"
    }

    fn hears_commits(&self) -> bool {
        true
    }

    fn committed(&self, event: &Committed) {
        self.committed_many(std::slice::from_ref(event));
    }

    /// The rows of a batch are noted a run of one entity at a time, not one by one.
    fn committed_many(&self, events: &[Committed]) {
        for run in events.chunk_by(|a, b| a.entity == b.entity) {
            let written = run.iter().filter(|e| counts_as_written(e.kind)).count() as u64;
            let created = run.iter().filter(|e| e.kind == EventKind::Created).count() as u64;
            if written > 0 && self.note(&run[0].entity, created, written) {
                self.refresh(&run[0].entity);
            }
        }
    }
}

/// The events whose rows count towards a table's change since its last refresh.
fn counts_as_written(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Created | EventKind::Updated | EventKind::Merged
    )
}

/// Refreshes the planner statistics of one entity's table.
pub async fn analyze_entity(db: &Db, entity: &str) -> Result<()> {
    let name = EntityName::parse(entity).map_err(crate::error::Error::bad_request)?;
    store::analyze_table(db, &Ident::table(&name)).await?;
    tracing::debug!(entity, "planner statistics refreshed");
    Ok(())
}

/// Refreshes the statistics of every table that has none (at start, after bulk loads).
pub async fn analyze_where_missing(db: &Db) -> Result<()> {
    store::analyze_where_missing(db).await
}
