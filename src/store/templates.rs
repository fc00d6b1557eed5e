//! System tables of template packages: which are installed, and what each installed.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, text, time};
use super::{ColumnType, Executor, Row, Sql, SqlValue, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct InstalledRow {
    pub name: String,
    pub version: String,
    pub manifest: Value,
    pub sample_data: bool,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const INSTALLED_SELECT: &str = "SELECT name, version, manifest, sample_data, installed_at, \
     updated_at FROM installed_templates";
const INSTALLED_COLUMNS: [ColumnType; 6] = [
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Boolean,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn installed_row(r: &Row) -> InstalledRow {
    InstalledRow {
        name: text(&r[0]),
        version: text(&r[1]),
        manifest: json(&r[2]),
        sample_data: matches!(r[3], SqlValue::Boolean(true)),
        installed_at: time(&r[4]),
        updated_at: time(&r[5]),
    }
}

pub async fn installed(ex: &mut impl Executor) -> Result<Vec<InstalledRow>> {
    let sql = Sql::new(format!("{INSTALLED_SELECT} ORDER BY name"));
    Ok(ex
        .fetch_all(&sql, &INSTALLED_COLUMNS)
        .await?
        .iter()
        .map(installed_row)
        .collect())
}

pub async fn installed_by(ex: &mut impl Executor, name: &str) -> Result<Option<InstalledRow>> {
    let sql = Sql::new(format!("{INSTALLED_SELECT} WHERE name = $1")).bind(name);
    Ok(ex
        .fetch_all(&sql, &INSTALLED_COLUMNS)
        .await?
        .first()
        .map(installed_row))
}

pub async fn save_installed(tx: &mut Tx, row: &InstalledRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO installed_templates (name, version, manifest, sample_data, installed_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
         version = excluded.version, manifest = excluded.manifest, \
         sample_data = excluded.sample_data, updated_at = excluded.updated_at",
    )
    .bind(row.name.clone())
    .bind(row.version.clone())
    .bind(row.manifest.to_string())
    .bind(row.sample_data)
    .bind(row.installed_at)
    .bind(row.updated_at);
    tx.execute(&sql).await?;
    // The catalog carries the installed templates (the workspace's modules): a new epoch
    // makes every server reload them.
    super::entities::bump_epoch(tx).await
}

/// One thing a template installed: its kind (`field`, `form`, `view`, …), key, the id of
/// what holds it and how the template installed it.
#[derive(Debug, Clone)]
pub struct ItemRow {
    pub kind: String,
    pub key: String,
    pub object_id: String,
    pub baseline: Value,
}

pub async fn items(ex: &mut impl Executor, template: &str) -> Result<Vec<ItemRow>> {
    let sql = Sql::new(
        "SELECT kind, key, object_id, baseline FROM template_items WHERE template = $1 \
         ORDER BY kind, key",
    )
    .bind(template);
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ItemRow {
            kind: text(&r[0]),
            key: text(&r[1]),
            object_id: text(&r[2]),
            baseline: json(&r[3]),
        })
        .collect())
}

/// Items of a kind across every template (sample records of a dependency, by key).
pub async fn items_of_kind(ex: &mut impl Executor, kind: &str) -> Result<Vec<(String, String)>> {
    let sql = Sql::new("SELECT key, object_id FROM template_items WHERE kind = $1").bind(kind);
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Text, ColumnType::Text])
        .await?;
    Ok(rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect())
}

pub async fn save_item(tx: &mut Tx, template: &str, item: &ItemRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO template_items (template, kind, key, object_id, baseline) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (template, kind, key) DO UPDATE SET \
         object_id = excluded.object_id, baseline = excluded.baseline",
    )
    .bind(template)
    .bind(item.kind.clone())
    .bind(item.key.clone())
    .bind(item.object_id.clone())
    .bind(item.baseline.to_string());
    tx.execute(&sql).await?;
    Ok(())
}

/// Whether an address asked for no more campaign mail.
pub async fn unsubscribed(ex: &mut impl Executor, emails: &[String]) -> Result<Vec<String>> {
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT email FROM unsubscribes WHERE email IN (");
    for (i, email) in emails.iter().enumerate() {
        let p = sql.param(email.to_lowercase());
        sql.push(if i == 0 { "" } else { ", " });
        sql.push(&p);
    }
    sql.push(")");
    let rows = ex.fetch_all(&sql, &[ColumnType::Text]).await?;
    Ok(rows.iter().map(|r| text(&r[0])).collect())
}

pub async fn unsubscribe(
    tx: &mut Tx,
    email: &str,
    campaign: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO unsubscribes (email, campaign, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(email.to_lowercase())
    .bind(campaign.map(str::to_owned))
    .bind(now);
    tx.execute(&sql).await?;
    Ok(())
}

/// A server-wide secret by name, if made.
pub async fn secret(ex: &mut impl Executor, name: &str) -> Result<Option<String>> {
    let sql = Sql::new("SELECT value FROM secrets WHERE name = $1").bind(name);
    let rows = ex.fetch_all(&sql, &[ColumnType::Text]).await?;
    Ok(rows.first().map(|r| text(&r[0])))
}

/// Stores a secret unless one of that name exists (the first server to start wins).
pub async fn put_secret_once(tx: &mut Tx, name: &str, value: &str) -> Result<()> {
    let sql =
        Sql::new("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value);
    tx.execute(&sql).await?;
    Ok(())
}
