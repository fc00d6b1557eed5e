//! Tags: named, coloured labels shared by every entity, and which records carry them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ColumnType, Executor, Sql, SqlValue, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    pub color: Option<String>,
    pub created_at: DateTime<Utc>,
    /// How many records carry it (live or trashed).
    pub records: i64,
}

pub async fn list(ex: &mut impl Executor) -> Result<Vec<Tag>> {
    let sql = Sql::new(
        "SELECT t.name, t.color, t.created_at, \
         (SELECT COUNT(*) FROM record_tags rt WHERE rt.tag = t.name) \
         FROM tags t ORDER BY t.name",
    );
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Datetime,
                ColumnType::Integer,
            ],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Tag {
            name: r[0].as_str().unwrap_or_default().to_owned(),
            color: r[1].as_str().map(str::to_owned),
            created_at: match r[2] {
                SqlValue::Datetime(t) => t,
                _ => DateTime::<Utc>::MIN_UTC,
            },
            records: r[3].as_i64().unwrap_or_default(),
        })
        .collect())
}

/// Every tag's name, in order: what pickers need, without counting the records that carry
/// each (that count reads every tagged record).
pub async fn names(ex: &mut impl Executor) -> Result<Vec<String>> {
    let sql = Sql::new("SELECT name FROM tags ORDER BY name");
    let rows = ex.fetch_all(&sql, &[ColumnType::Text]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| r.pop().and_then(SqlValue::into_text))
        .collect())
}

/// Creates a tag, or changes its colour when it exists.
pub async fn upsert(
    tx: &mut Tx,
    name: &str,
    color: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO tags (name, color, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET color = COALESCE(excluded.color, tags.color)",
    )
    .bind(name)
    .bind(color.map(str::to_owned))
    .bind(now);
    tx.execute(&sql).await?;
    Ok(())
}

/// Creates the tags that do not exist yet (tags named on a record spring into being).
pub async fn ensure(tx: &mut Tx, names: &[String], now: DateTime<Utc>) -> Result<()> {
    for name in names {
        let sql = Sql::new(
            "INSERT INTO tags (name, color, created_at) VALUES ($1, NULL, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.clone())
        .bind(now);
        tx.execute(&sql).await?;
    }
    Ok(())
}

/// The tags of many records at once, each record's in name order.
pub async fn of_records(
    ex: &mut impl Executor,
    entity: &str,
    ids: &[String],
) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::new(String::new());
    let e = sql.param(entity);
    let list = ids
        .iter()
        .map(|id| sql.param(id.clone()))
        .collect::<Vec<_>>()
        .join(", ");
    sql.push(&format!(
        "SELECT record_id, tag FROM record_tags WHERE entity = {e} AND record_id IN ({list}) \
         ORDER BY record_id, tag"
    ));
    for row in ex
        .fetch_all(&sql, &[ColumnType::Id, ColumnType::Text])
        .await?
    {
        let mut row = row.into_iter();
        if let (Some(SqlValue::Text(id)), Some(SqlValue::Text(tag))) = (row.next(), row.next()) {
            out.entry(id).or_default().push(tag);
        }
    }
    Ok(out)
}

/// Replaces the tags of one record.
pub async fn set(tx: &mut Tx, entity: &str, id: &str, tags: &[String]) -> Result<()> {
    let sql = Sql::new("DELETE FROM record_tags WHERE entity = $1 AND record_id = $2")
        .bind(entity)
        .bind(id);
    tx.execute(&sql).await?;
    for tag in tags {
        let sql = Sql::new("INSERT INTO record_tags (entity, record_id, tag) VALUES ($1, $2, $3)")
            .bind(entity)
            .bind(id)
            .bind(tag.clone());
        tx.execute(&sql).await?;
    }
    Ok(())
}
