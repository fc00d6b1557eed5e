//! The indexes saved views asked for, as the database has them: listed by their `vx_` names,
//! created and dropped. Which ones a view wants is `crate::layouts::view_indexes`' business.

use super::{ColumnType, Db, Dialect, Executor, Ident, Sql};
use crate::error::Result;
use crate::schema::definition::CompoundIndex;
use crate::schema::names::EntityName;

/// The names of the view indexes an entity's table has.
pub async fn existing(ex: &mut impl Executor, entity: &EntityName) -> Result<Vec<String>> {
    let table = Ident::table(entity);
    let sql = match ex.dialect() {
        Dialect::Sqlite => Sql::new(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
             AND name LIKE 'vx\\_%' ESCAPE '\\'",
        ),
        Dialect::Postgres => Sql::new(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = $1 AND indexname LIKE 'vx\\_%' ESCAPE '\\'",
        ),
    }
    .bind(table.as_str());
    let rows = ex.fetch_all(&sql, &[ColumnType::Text]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r[0].as_str().map(str::to_owned))
        .collect())
}

pub fn name(entity: &EntityName, index: &CompoundIndex) -> Ident {
    let keys: Vec<(&str, bool)> = index
        .keys
        .iter()
        .map(|k| (k.column.as_str(), k.desc))
        .collect();
    Ident::view_index(entity, &keys)
}

pub async fn create(db: &Db, entity: &EntityName, index: &CompoundIndex) -> Result<()> {
    let sql = super::ddl::create_named_index(db.dialect(), entity, index, &name(entity, index));
    let mut tx = db.begin().await?;
    tx.execute(&sql).await?;
    tx.commit().await
}

/// Drops a view index by the name [`existing`] listed (only names of the `vx_` shape).
pub async fn drop(db: &Db, index_name: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    drop_in(&mut tx, index_name).await?;
    tx.commit().await
}

/// [`drop`] inside a transaction (a schema change drops them before it moves columns).
pub async fn drop_in(ex: &mut impl Executor, index_name: &str) -> Result<()> {
    let Some(ident) = Ident::stored(index_name).filter(|i| i.as_str().starts_with("vx_")) else {
        return Ok(());
    };
    ex.execute(&Sql::new(format!("DROP INDEX IF EXISTS {ident}")))
        .await?;
    Ok(())
}

/// Whether the table holds more than `limit` live records, counting no further.
pub async fn larger_than(db: &Db, entity: &EntityName, limit: u64) -> Result<bool> {
    let table = Ident::table(entity);
    let sql = Sql::new(format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE \"deleted_at\" IS NULL LIMIT {}) AS live",
        limit + 1
    ));
    let rows = db.fetch_all(&sql, &[ColumnType::Integer]).await?;
    let count = rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default();
    Ok(u64::try_from(count).unwrap_or_default() > limit)
}
