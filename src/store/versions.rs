//! Every saved version of the versioned documents — forms, views and dashboards — in one
//! table (`layout_versions`), keyed by the kind of document and its key. Each resource keeps
//! its current document in its own table and adds the version here in the same transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::cells::{json, opt_text, time};
use super::{ColumnType, Executor, Sql, Tx};
use crate::error::Result;
use crate::wire::timestamp;

/// The kinds of versioned document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// Keyed by `entity/name`.
    Form,
    /// Keyed by the view's id.
    View,
    /// Keyed by the dashboard's id.
    Dashboard,
}

impl DocumentKind {
    fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Form => "form",
            DocumentKind::View => "view",
            DocumentKind::Dashboard => "dashboard",
        }
    }
}

/// One saved version, as `GET …/versions` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SavedVersion {
    pub version: i64,
    pub document: Value,
    /// The user who saved it (none for the system: a template install).
    pub saved_by: Option<String>,
    #[serde(with = "timestamp")]
    pub saved_at: DateTime<Utc>,
}

/// Keeps a version of a document just saved.
pub async fn save(
    tx: &mut Tx,
    kind: DocumentKind,
    key: &str,
    version: i64,
    document: &Value,
    saved_by: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO layout_versions (kind, key, version, document, saved_by, saved_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(kind.as_str())
    .bind(key)
    .bind(version)
    .bind(document.to_string())
    .bind(saved_by.map(str::to_owned))
    .bind(at);
    tx.execute(&sql).await?;
    Ok(())
}

/// The saved versions of a document, newest first.
pub async fn list(
    ex: &mut impl Executor,
    kind: DocumentKind,
    key: &str,
) -> Result<Vec<SavedVersion>> {
    let sql = Sql::new(
        "SELECT version, document, saved_by, saved_at FROM layout_versions \
         WHERE kind = $1 AND key = $2 ORDER BY version DESC",
    )
    .bind(kind.as_str())
    .bind(key);
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Datetime,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SavedVersion {
            version: r[0].as_i64().unwrap_or(0),
            document: json(&r[1]),
            saved_by: opt_text(&r[2]),
            saved_at: time(&r[3]),
        })
        .collect())
}
