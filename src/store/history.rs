//! Record history: one row per create, update, delete, restore, erase and merge, written in
//! the same transaction as the change.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ColumnType, Executor, Pipeline, Sql, SqlValue, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub action: String,
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
    /// `{field: {"old": …, "new": …}}`, plus whatever else the action records.
    pub changes: Value,
}

pub async fn record(
    tx: &mut Tx,
    entity: &str,
    record_id: &str,
    action: &str,
    actor: Option<&str>,
    at: DateTime<Utc>,
    changes: &Value,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO record_history (entity, record_id, action, actor, at, changes) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(entity)
    .bind(record_id)
    .bind(action)
    .bind(actor.map(str::to_owned))
    .bind(at)
    .bind(changes.to_string());
    tx.execute(&sql).await?;
    Ok(())
}

/// One `create` entry of [`record_creates`].
pub struct Created<'a> {
    pub record_id: &'a str,
    /// The changes as JSON text (`records::service::created_changes_text`).
    pub changes: String,
}

/// The `create` entries of many records written together (an import's batch): one statement
/// per 1,000 records instead of one each (a few statements a batch, see
/// `records::rows_per_insert`), each made while the one before runs.
pub async fn record_creates(
    pipe: &mut Pipeline<'_>,
    entity: &str,
    actor: Option<&str>,
    at: DateTime<Utc>,
    created: Vec<Created<'_>>,
) -> Result<()> {
    let mut created = created.into_iter();
    loop {
        let rows: Vec<Vec<SqlValue>> = created
            .by_ref()
            .take(1000)
            .map(|c| {
                vec![
                    SqlValue::from(entity),
                    SqlValue::from(c.record_id),
                    SqlValue::Text("create".to_owned()),
                    SqlValue::from(actor.map(str::to_owned)),
                    SqlValue::from(at),
                    SqlValue::Text(c.changes),
                ]
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        pipe.send(Sql::insert_rows(
            pipe.dialect(),
            "record_history (entity, record_id, action, actor, at, changes)",
            rows,
            &[],
        ))
        .await?;
    }
}

/// A record's history, newest first.
pub async fn of(
    ex: &mut impl Executor,
    entity: &str,
    record_id: &str,
    limit: i64,
) -> Result<Vec<Entry>> {
    let sql = Sql::new(
        "SELECT id, action, actor, at, changes FROM record_history \
         WHERE entity = $1 AND record_id = $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(entity)
    .bind(record_id)
    .bind(limit);
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Datetime,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Entry {
            id: r[0].as_i64().unwrap_or_default(),
            action: r[1].as_str().unwrap_or_default().to_owned(),
            actor: r[2].as_str().map(str::to_owned),
            at: match r[3] {
                SqlValue::Datetime(t) => t,
                _ => DateTime::<Utc>::MIN_UTC,
            },
            changes: r[4]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null),
        })
        .collect())
}

/// Moves the history of merged records onto the record they were merged into.
pub async fn move_to(tx: &mut Tx, entity: &str, from: &[String], to: &str) -> Result<()> {
    for source in from {
        let sql = Sql::new(
            "UPDATE record_history SET record_id = $1 WHERE entity = $2 AND record_id = $3",
        )
        .bind(to)
        .bind(entity)
        .bind(source.clone());
        tx.execute(&sql).await?;
    }
    Ok(())
}
