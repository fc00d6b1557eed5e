//! Planner statistics: `ANALYZE` of one table, or of the tables that have none. When to call
//! them is `crate::statistics`' business.

use super::{ColumnType, Db, Dialect, Ident, Sql};
use crate::error::Result;

/// Rows SQLite's `ANALYZE` samples per index: enough for the planner, milliseconds to read.
const SQLITE_ANALYSIS_LIMIT: u32 = 1000;

pub async fn analyze_table(db: &Db, table: &Ident) -> Result<()> {
    let mut tx = db.begin().await?;
    if db.dialect() == Dialect::Sqlite {
        // The setting belongs to the connection: set it in the same transaction.
        tx.execute(&Sql::new(format!(
            "PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}"
        )))
        .await?;
    }
    tx.execute(&Sql::new(format!("ANALYZE {table}"))).await?;
    if db.dialect() == Dialect::Sqlite {
        reload_statistics_everywhere(&mut tx).await?;
    }
    tx.commit().await
}

/// SQLite loads statistics with the schema, and `ANALYZE` does not change the schema cookie
/// once `sqlite_stat1` exists: the other connections (the read pool) would plan with the old
/// statistics until the next schema change. A throwaway index on a one-row table is such a
/// change: every connection reloads its schema, statistics included, at its next statement.
async fn reload_statistics_everywhere(tx: &mut super::Tx) -> Result<()> {
    tx.execute(&Sql::new(
        "CREATE INDEX IF NOT EXISTS tessera_reload_statistics ON schema_state (epoch)",
    ))
    .await?;
    tx.execute(&Sql::new("DROP INDEX tessera_reload_statistics"))
        .await?;
    Ok(())
}

/// SQLite's `PRAGMA optimize` analyses exactly the tables without statistics (and those that
/// changed tenfold); on PostgreSQL, the tables never analysed that hold rows.
pub async fn analyze_where_missing(db: &Db) -> Result<()> {
    match db.dialect() {
        Dialect::Sqlite => {
            let mut tx = db.begin().await?;
            tx.execute(&Sql::new(format!(
                "PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}"
            )))
            .await?;
            tx.execute(&Sql::new("PRAGMA optimize=0x10002")).await?;
            reload_statistics_everywhere(&mut tx).await?;
            tx.commit().await
        }
        Dialect::Postgres => {
            let never = db
                .fetch_all(
                    &Sql::new(
                        "SELECT relname::text FROM pg_stat_user_tables \
                         WHERE schemaname = current_schema() AND n_live_tup > 0 \
                         AND last_analyze IS NULL AND last_autoanalyze IS NULL",
                    ),
                    &[ColumnType::Text],
                )
                .await?;
            // Only names of the shape Tessera creates.
            for table in never
                .iter()
                .filter_map(|row| row[0].as_str().and_then(Ident::stored))
            {
                db.execute(&Sql::new(format!("ANALYZE {table}"))).await?;
            }
            Ok(())
        }
    }
}
