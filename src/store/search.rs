//! The search index: one row per (record, searchable field) in `search_rows`, its tokens in an
//! FTS5 table on SQLite (rowid = the row's id) and in a `tsvector` column with a GIN index on
//! PostgreSQL. Tokens come tokenized from Rust (`search::tokens`), so both databases match the
//! same way, two-character Chinese words included.

use super::query::{self, Condition};
use super::{ColumnType, Dialect, Executor, Sql, SqlValue, Tx};
use crate::error::Result;

/// One field of one record, ready to be indexed.
#[derive(Debug, Clone)]
pub struct IndexRow {
    pub field: String,
    pub is_title: bool,
    pub title: String,
    pub body: String,
    /// The tokens, in order (phrases need positions).
    pub tokens: Vec<String>,
}

/// A field of a record that matched.
#[derive(Debug, Clone)]
pub struct Found {
    pub entity: String,
    pub record_id: String,
    pub field: String,
    pub is_title: bool,
    pub title: String,
    pub body: String,
}

/// Removes a record's rows (it was trashed or erased, or is about to be indexed anew).
pub async fn remove(tx: &mut Tx, entity: &str, record_id: &str) -> Result<()> {
    if tx.dialect() == Dialect::Sqlite {
        let sql = Sql::new(
            "DELETE FROM search_fts WHERE rowid IN \
             (SELECT id FROM search_rows WHERE entity = $1 AND record_id = $2)",
        )
        .bind(entity)
        .bind(record_id);
        tx.execute(&sql).await?;
    }
    let sql = Sql::new("DELETE FROM search_rows WHERE entity = $1 AND record_id = $2")
        .bind(entity)
        .bind(record_id);
    tx.execute(&sql).await?;
    Ok(())
}

/// Replaces a record's rows with `rows`, placed where the record is (owner, department).
pub async fn replace(
    tx: &mut Tx,
    entity: &str,
    record_id: &str,
    owner: Option<&str>,
    department: Option<&str>,
    rows: &[IndexRow],
) -> Result<()> {
    remove(tx, entity, record_id).await?;
    let text = |v: Option<&str>| {
        v.map_or(SqlValue::Null(ColumnType::Id), |v| {
            SqlValue::Text(v.to_owned())
        })
    };
    for row in rows {
        let mut sql = Sql::default();
        let values = [
            sql.param(entity),
            sql.param(record_id),
            sql.param(row.field.as_str()),
            sql.param(SqlValue::Boolean(row.is_title)),
            sql.param(row.title.as_str()),
            sql.param(row.body.as_str()),
            sql.param(text(owner)),
            sql.param(text(department)),
        ]
        .join(", ");
        match tx.dialect() {
            Dialect::Sqlite => {
                sql.push(&format!(
                    "INSERT INTO search_rows (entity, record_id, field, is_title, title, body, \
                     owner, department) VALUES ({values}) RETURNING id"
                ));
                let id = tx.fetch_one(&sql, &[ColumnType::Integer]).await?[0]
                    .as_i64()
                    .unwrap_or_default();
                let fts = Sql::new("INSERT INTO search_fts (rowid, tokens) VALUES ($1, $2)")
                    .bind(id)
                    .bind(row.tokens.join(" "));
                tx.execute(&fts).await?;
            }
            Dialect::Postgres => {
                let tokens = sql.param(crate::search::tokens::tsvector_literal(&row.tokens));
                sql.push(&format!(
                    "INSERT INTO search_rows (entity, record_id, field, is_title, title, body, \
                     owner, department, tokens) VALUES ({values}, {tokens}::tsvector)"
                ));
                tx.execute(&sql).await?;
            }
        }
    }
    Ok(())
}

/// Empties the index of one entity (before it is rebuilt).
pub async fn clear(tx: &mut Tx, entity: &str) -> Result<()> {
    if tx.dialect() == Dialect::Sqlite {
        let sql = Sql::new(
            "DELETE FROM search_fts WHERE rowid IN (SELECT id FROM search_rows WHERE entity = $1)",
        )
        .bind(entity);
        tx.execute(&sql).await?;
    }
    tx.execute(&Sql::new("DELETE FROM search_rows WHERE entity = $1").bind(entity))
        .await?;
    Ok(())
}

/// The matching fields: `fts` is the FTS5 expression (SQLite), `tsquery` the tsquery text
/// (PostgreSQL); `allowed` the fields and records the caller may see, as a condition on the
/// index rows (alias `t`: `entity`, `field`, `owner`, `department`); newest first.
pub async fn find(
    ex: &mut impl Executor,
    fts: &str,
    tsquery: &str,
    allowed: &Condition,
    titles_only: Option<bool>,
    limit: i64,
) -> Result<Vec<Found>> {
    let dialect = ex.dialect();
    let mut sql = Sql::default();
    // SQLite walks the FTS matches newest first and stops at the limit; PostgreSQL reads the
    // GIN posting lists into a bitmap first.
    let (from, matching, order) = match dialect {
        Dialect::Sqlite => {
            let m = sql.param(fts);
            (
                "search_fts f JOIN search_rows t ON t.id = f.rowid",
                format!("search_fts MATCH {m}"),
                "f.rowid DESC",
            )
        }
        Dialect::Postgres => {
            let m = sql.param(tsquery);
            (
                "search_rows t",
                format!("t.tokens @@ {m}::tsquery"),
                "t.id DESC",
            )
        }
    };
    let allowed = query::render(dialect, allowed, &mut sql);
    let title = match titles_only {
        None => String::new(),
        Some(flag) => format!(" AND t.is_title = {}", sql.param(SqlValue::Boolean(flag))),
    };
    let limit = sql.param(limit);
    sql.push(&format!(
        "SELECT t.entity, t.record_id, t.field, t.is_title, t.title, t.body FROM {from} \
         WHERE {matching} AND {allowed}{title} ORDER BY {order} LIMIT {limit}"
    ));
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Boolean,
                ColumnType::Text,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let text = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
            Found {
                entity: text(0),
                record_id: text(1),
                field: text(2),
                is_title: matches!(r[3], SqlValue::Boolean(true)),
                title: text(4),
                body: text(5),
            }
        })
        .collect())
}
