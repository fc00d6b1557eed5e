//! The SQLite writer's page cache: small while it commits one record at a time, large while a
//! bulk load runs. SQLite walks the whole hash table of the writer's page cache at the end of
//! each transaction, so its size is paid on every commit: with a 64 MB cache a tenth of the
//! samples of a run of creates were there (`pcache1TruncateUnsafe`), and 16 MB took creates
//! from 4,729 to 5,332 a second. A bulk load commits rarely and touches far more index pages
//! than fit in 16 MB: an import of a million rows went from 19,400 to 15,800 rows a second
//! with the small cache. So a bulk load raises the cache for as long as it runs (decision 023).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Db, Dialect, Sql};
use crate::error::Result;

/// The writer's cache between bulk loads, in KiB (SQLite's negative `cache_size`).
pub const WRITER_CACHE_KIB: i64 = 16 * 1024;
/// Every reader's cache, and the writer's during a bulk load.
pub const LARGE_CACHE_KIB: i64 = 64 * 1024;

/// Bulk loads running now: the cache is raised by the first and lowered after the last.
#[derive(Debug, Default, Clone)]
pub struct BulkLoads(Arc<AtomicUsize>);

/// A running bulk load; the writer's cache goes back once the last one is dropped.
pub struct BulkLoad {
    db: Db,
}

impl Db {
    /// Marks a bulk load (an import, a rebuild of the search index) for as long as the answer
    /// is held.
    pub async fn bulk_load(&self) -> Result<BulkLoad> {
        let first =
            self.dialect() == Dialect::Sqlite && self.bulk.0.fetch_add(1, Ordering::SeqCst) == 0;
        // Made before the cache is raised, so a failure still counts the load out again.
        let load = BulkLoad { db: self.clone() };
        if first {
            set_writer_cache(self, LARGE_CACHE_KIB).await?;
        }
        Ok(load)
    }

    /// Whether a bulk load runs now (on SQLite; PostgreSQL has none).
    pub fn bulk_loading(&self) -> bool {
        self.bulk.0.load(Ordering::SeqCst) > 0
    }
}

async fn set_writer_cache(db: &Db, kib: i64) -> Result<()> {
    // Not transactional: it holds at once, inside the writer's transaction as well.
    let pragma = Sql::new(format!("PRAGMA cache_size = -{kib}"));
    db.write(move |tx| Box::pin(async move { tx.execute(&pragma).await.map(drop) }))
        .await
}

impl Drop for BulkLoad {
    fn drop(&mut self) {
        if self.db.dialect() != Dialect::Sqlite
            || self.db.bulk.0.fetch_sub(1, Ordering::SeqCst) != 1
        {
            return;
        }
        let db = self.db.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // A load that started meanwhile keeps the large cache.
                if db.bulk.0.load(Ordering::SeqCst) == 0
                    && let Err(error) = set_writer_cache(&db, WRITER_CACHE_KIB).await
                {
                    tracing::warn!("could not lower the writer's page cache: {error}");
                }
            });
        }
    }
}
