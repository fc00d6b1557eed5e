//! The system settings table: one row per changed key, its value as JSON.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::cells::{json, text};
use super::{ColumnType, Executor, Sql, Tx};
use crate::error::Result;

/// Every stored setting (keys never set are absent).
pub async fn all(ex: &mut impl Executor) -> Result<Map<String, Value>> {
    let rows = ex
        .fetch_all(
            &Sql::new("SELECT key, value FROM settings"),
            &[ColumnType::Text, ColumnType::Text],
        )
        .await?;
    Ok(rows.iter().map(|r| (text(&r[0]), json(&r[1]))).collect())
}

pub async fn put(tx: &mut Tx, key: &str, value: &Value, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value.to_string())
    .bind(now);
    tx.execute(&sql).await?;
    Ok(())
}
