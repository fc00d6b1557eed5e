//! The dashboards table: the current document of each; every saved version goes to
//! [`versions`] (kind `dashboard`, key the id).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, opt_text, text, time};
use super::versions::{self, DocumentKind};
use super::{ColumnType, Executor, Row, Sql, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct DashboardRow {
    pub id: String,
    pub name: String,
    /// `None` for a shared dashboard, else the user whose personal dashboard it is.
    pub owner: Option<String>,
    pub document: Value,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, name, scope, document, version, created_by, created_at, \
     updated_at FROM dashboards";
const COLUMNS: [ColumnType; 8] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Text,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn row(r: &Row) -> DashboardRow {
    let scope = text(&r[2]);
    DashboardRow {
        id: text(&r[0]),
        name: text(&r[1]),
        owner: (!scope.is_empty()).then_some(scope),
        document: json(&r[3]),
        version: r[4].as_i64().unwrap_or(1),
        created_by: opt_text(&r[5]),
        created_at: time(&r[6]),
        updated_at: time(&r[7]),
    }
}

/// The shared dashboards and `user`'s personal ones (all when `user` is `None`).
pub async fn list(ex: &mut impl Executor, user: Option<&str>) -> Result<Vec<DashboardRow>> {
    let mut sql = Sql::new(format!("{SELECT} WHERE 1 = 1"));
    if let Some(user) = user {
        let p = sql.param(user);
        sql.push(&format!(" AND scope IN ('', {p})"));
    }
    sql.push(" ORDER BY scope, created_at, name");
    Ok(ex
        .fetch_all(&sql, &COLUMNS)
        .await?
        .iter()
        .map(row)
        .collect())
}

pub async fn by_id(ex: &mut impl Executor, id: &str) -> Result<Option<DashboardRow>> {
    let sql = Sql::new(format!("{SELECT} WHERE id = $1")).bind(id);
    Ok(ex.fetch_all(&sql, &COLUMNS).await?.first().map(row))
}

pub async fn by_name(
    ex: &mut impl Executor,
    owner: Option<&str>,
    name: &str,
) -> Result<Option<DashboardRow>> {
    let sql = Sql::new(format!("{SELECT} WHERE scope = $1 AND name = $2"))
        .bind(owner.unwrap_or_default())
        .bind(name);
    Ok(ex.fetch_all(&sql, &COLUMNS).await?.first().map(row))
}

/// Inserts (`expected` None) or updates a dashboard at the expected version, and keeps the
/// version. False when the version was not the expected one.
pub async fn save(
    tx: &mut Tx,
    dashboard: &DashboardRow,
    expected: Option<i64>,
    saved_by: Option<&str>,
) -> Result<bool> {
    let stored = match expected {
        None => {
            let sql = Sql::new(
                "INSERT INTO dashboards (id, name, scope, document, version, created_by, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(dashboard.id.clone())
            .bind(dashboard.name.clone())
            .bind(dashboard.owner.clone().unwrap_or_default())
            .bind(dashboard.document.to_string())
            .bind(dashboard.version)
            .bind(dashboard.created_by.clone())
            .bind(dashboard.created_at)
            .bind(dashboard.updated_at);
            tx.execute(&sql).await?
        }
        Some(expected) => {
            let sql = Sql::new(
                "UPDATE dashboards SET name = $1, document = $2, version = $3, updated_at = $4 \
                 WHERE id = $5 AND version = $6",
            )
            .bind(dashboard.name.clone())
            .bind(dashboard.document.to_string())
            .bind(dashboard.version)
            .bind(dashboard.updated_at)
            .bind(dashboard.id.clone())
            .bind(expected);
            tx.execute(&sql).await?
        }
    };
    if stored == 0 {
        return Ok(false);
    }
    versions::save(
        tx,
        DocumentKind::Dashboard,
        &dashboard.id,
        dashboard.version,
        &dashboard.document,
        saved_by,
        dashboard.updated_at,
    )
    .await?;
    Ok(true)
}

pub async fn delete(tx: &mut Tx, id: &str) -> Result<bool> {
    let sql = Sql::new("DELETE FROM dashboards WHERE id = $1").bind(id);
    Ok(tx.execute(&sql).await? > 0)
}
