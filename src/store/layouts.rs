//! System tables of forms and views: the current document of each, and every saved version.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, opt_text, text, time};
use super::versions::{self, DocumentKind};
use super::{ColumnType, Executor, Row, Sql, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct FormRow {
    pub entity: String,
    pub name: String,
    /// `{label, sections}` as saved.
    pub document: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const FORM_SELECT: &str =
    "SELECT entity, name, document, version, created_at, updated_at FROM forms";
const FORM_COLUMNS: [ColumnType; 6] = [
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn form(r: &Row) -> FormRow {
    FormRow {
        entity: text(&r[0]),
        name: text(&r[1]),
        document: json(&r[2]),
        version: r[3].as_i64().unwrap_or(1),
        created_at: time(&r[4]),
        updated_at: time(&r[5]),
    }
}

pub async fn forms(ex: &mut impl Executor, entity: Option<&str>) -> Result<Vec<FormRow>> {
    let sql = match entity {
        Some(e) => Sql::new(format!("{FORM_SELECT} WHERE entity = $1 ORDER BY name")).bind(e),
        None => Sql::new(format!("{FORM_SELECT} ORDER BY entity, name")),
    };
    Ok(ex
        .fetch_all(&sql, &FORM_COLUMNS)
        .await?
        .iter()
        .map(form)
        .collect())
}

pub async fn form_by(ex: &mut impl Executor, entity: &str, name: &str) -> Result<Option<FormRow>> {
    let sql = Sql::new(format!("{FORM_SELECT} WHERE entity = $1 AND name = $2"))
        .bind(entity)
        .bind(name);
    Ok(ex.fetch_all(&sql, &FORM_COLUMNS).await?.first().map(form))
}

/// Inserts or replaces a form; with `expected` set, only over that version (false when the
/// stored version differs).
pub async fn save_form(
    tx: &mut Tx,
    row: &FormRow,
    expected: Option<i64>,
    saved_by: Option<&str>,
) -> Result<bool> {
    let stored = match expected {
        None => {
            let sql = Sql::new(
                "INSERT INTO forms (entity, name, document, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(row.entity.clone())
            .bind(row.name.clone())
            .bind(row.document.to_string())
            .bind(row.version)
            .bind(row.created_at)
            .bind(row.updated_at);
            tx.execute(&sql).await?
        }
        Some(expected) => {
            let sql = Sql::new(
                "UPDATE forms SET document = $1, version = $2, updated_at = $3 \
                 WHERE entity = $4 AND name = $5 AND version = $6",
            )
            .bind(row.document.to_string())
            .bind(row.version)
            .bind(row.updated_at)
            .bind(row.entity.clone())
            .bind(row.name.clone())
            .bind(expected);
            tx.execute(&sql).await?
        }
    };
    if stored != 1 {
        return Ok(false);
    }
    let key = format!("{}/{}", row.entity, row.name);
    versions::save(
        tx,
        DocumentKind::Form,
        &key,
        row.version,
        &row.document,
        saved_by,
        row.updated_at,
    )
    .await?;
    Ok(true)
}

pub async fn delete_form(tx: &mut Tx, entity: &str, name: &str) -> Result<bool> {
    let sql = Sql::new("DELETE FROM forms WHERE entity = $1 AND name = $2")
        .bind(entity)
        .bind(name);
    Ok(tx.execute(&sql).await? == 1)
}

#[derive(Debug, Clone)]
pub struct ViewRow {
    pub id: String,
    pub entity: String,
    pub name: String,
    pub kind: String,
    /// `None` for a shared view, else the user whose personal view it is.
    pub owner: Option<String>,
    pub document: Value,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const VIEW_SELECT: &str = "SELECT id, entity, name, kind, scope, document, version, created_by, \
     created_at, updated_at FROM views";
const VIEW_COLUMNS: [ColumnType; 10] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Text,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn view(r: &Row) -> ViewRow {
    let scope = text(&r[4]);
    ViewRow {
        id: text(&r[0]),
        entity: text(&r[1]),
        name: text(&r[2]),
        kind: text(&r[3]),
        owner: (!scope.is_empty()).then_some(scope),
        document: json(&r[5]),
        version: r[6].as_i64().unwrap_or(1),
        created_by: opt_text(&r[7]),
        created_at: time(&r[8]),
        updated_at: time(&r[9]),
    }
}

/// The shared views and `user`'s personal ones (all views when `user` is `None`), optionally
/// of one entity.
pub async fn views(
    ex: &mut impl Executor,
    user: Option<&str>,
    entity: Option<&str>,
) -> Result<Vec<ViewRow>> {
    let mut sql = Sql::new(format!("{VIEW_SELECT} WHERE 1 = 1"));
    if let Some(user) = user {
        let p = sql.param(user);
        sql.push(&format!(" AND scope IN ('', {p})"));
    }
    if let Some(entity) = entity {
        let p = sql.param(entity);
        sql.push(&format!(" AND entity = {p}"));
    }
    sql.push(" ORDER BY entity, scope, name");
    Ok(ex
        .fetch_all(&sql, &VIEW_COLUMNS)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub async fn view_by_id(ex: &mut impl Executor, id: &str) -> Result<Option<ViewRow>> {
    let sql = Sql::new(format!("{VIEW_SELECT} WHERE id = $1")).bind(id);
    Ok(ex.fetch_all(&sql, &VIEW_COLUMNS).await?.first().map(view))
}

/// The view of an entity with this name in one scope (shared when `owner` is `None`).
pub async fn view_by_name(
    ex: &mut impl Executor,
    entity: &str,
    owner: Option<&str>,
    name: &str,
) -> Result<Option<ViewRow>> {
    let sql = Sql::new(format!(
        "{VIEW_SELECT} WHERE entity = $1 AND scope = $2 AND name = $3"
    ))
    .bind(entity)
    .bind(owner.unwrap_or_default())
    .bind(name);
    Ok(ex.fetch_all(&sql, &VIEW_COLUMNS).await?.first().map(view))
}

pub async fn save_view(
    tx: &mut Tx,
    row: &ViewRow,
    expected: Option<i64>,
    saved_by: Option<&str>,
) -> Result<bool> {
    let stored = match expected {
        None => {
            let sql = Sql::new(
                "INSERT INTO views (id, entity, name, kind, scope, document, version, \
                 created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(row.id.clone())
            .bind(row.entity.clone())
            .bind(row.name.clone())
            .bind(row.kind.clone())
            .bind(row.owner.clone().unwrap_or_default())
            .bind(row.document.to_string())
            .bind(row.version)
            .bind(row.created_by.clone())
            .bind(row.created_at)
            .bind(row.updated_at);
            tx.execute(&sql).await?
        }
        Some(expected) => {
            let sql = Sql::new(
                "UPDATE views SET name = $1, kind = $2, document = $3, version = $4, \
                 updated_at = $5 WHERE id = $6 AND version = $7",
            )
            .bind(row.name.clone())
            .bind(row.kind.clone())
            .bind(row.document.to_string())
            .bind(row.version)
            .bind(row.updated_at)
            .bind(row.id.clone())
            .bind(expected);
            tx.execute(&sql).await?
        }
    };
    if stored != 1 {
        return Ok(false);
    }
    versions::save(
        tx,
        DocumentKind::View,
        &row.id,
        row.version,
        &row.document,
        saved_by,
        row.updated_at,
    )
    .await?;
    Ok(true)
}

pub async fn delete_view(tx: &mut Tx, id: &str) -> Result<bool> {
    let sql = Sql::new("DELETE FROM views WHERE id = $1").bind(id);
    Ok(tx.execute(&sql).await? == 1)
}
