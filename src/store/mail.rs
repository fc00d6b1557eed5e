//! System tables of mail: templates and the outbox.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, opt_text, opt_time, text, time};
use super::{ColumnType, Executor, Row, Sql, SqlValue, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `{"en": {"subject", "html", "text"}, "zh-CN": {…}}`
    pub variants: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TEMPLATE_SELECT: &str = "SELECT id, name, description, variants, version, created_at, \
     updated_at FROM mail_templates";
const TEMPLATE_COLUMNS: [ColumnType; 7] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn template(r: &Row) -> TemplateRow {
    TemplateRow {
        id: text(&r[0]),
        name: text(&r[1]),
        description: text(&r[2]),
        variants: json(&r[3]),
        version: r[4].as_i64().unwrap_or(1),
        created_at: time(&r[5]),
        updated_at: time(&r[6]),
    }
}

pub async fn templates(ex: &mut impl Executor) -> Result<Vec<TemplateRow>> {
    let sql = Sql::new(format!("{TEMPLATE_SELECT} ORDER BY name"));
    Ok(ex
        .fetch_all(&sql, &TEMPLATE_COLUMNS)
        .await?
        .iter()
        .map(template)
        .collect())
}

/// A template by id or by name.
pub async fn template_by(ex: &mut impl Executor, id_or_name: &str) -> Result<Option<TemplateRow>> {
    let sql = Sql::new(format!("{TEMPLATE_SELECT} WHERE id = $1 OR name = $1")).bind(id_or_name);
    Ok(ex
        .fetch_all(&sql, &TEMPLATE_COLUMNS)
        .await?
        .first()
        .map(template))
}

pub async fn save_template(tx: &mut Tx, row: &TemplateRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO mail_templates (id, name, description, variants, version, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
         name = excluded.name, description = excluded.description, variants = excluded.variants, \
         version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(row.description.clone())
    .bind(row.variants.to_string())
    .bind(row.version)
    .bind(row.created_at)
    .bind(row.updated_at);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn delete_template(tx: &mut Tx, id: &str) -> Result<bool> {
    let sql = Sql::new("DELETE FROM mail_templates WHERE id = $1").bind(id);
    Ok(tx.execute(&sql).await? == 1)
}

// ---- the outbox -------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub template: Option<String>,
    pub recipients: Vec<String>,
    pub sender: String,
    pub subject: String,
    pub html: Option<String>,
    pub body: String,
    /// `queued`, `sent` or `failed` (after the last attempt).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub run_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const OUTBOX_SELECT: &str = "SELECT id, template, recipients, sender, subject, html, body, \
     status, attempts, last_error, run_id, created_at, sent_at FROM outbox";
const OUTBOX_COLUMNS: [ColumnType; 13] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Text,
    ColumnType::Id,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn outbox(r: &Row) -> OutboxRow {
    OutboxRow {
        id: text(&r[0]),
        template: opt_text(&r[1]),
        recipients: serde_json::from_value(json(&r[2])).unwrap_or_default(),
        sender: text(&r[3]),
        subject: text(&r[4]),
        html: opt_text(&r[5]),
        body: text(&r[6]),
        status: text(&r[7]),
        attempts: r[8].as_i64().unwrap_or_default(),
        last_error: opt_text(&r[9]),
        run_id: opt_text(&r[10]),
        created_at: time(&r[11]),
        sent_at: opt_time(&r[12]),
    }
}

pub async fn insert_outbox(ex: &mut impl Executor, row: &OutboxRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO outbox (id, template, recipients, sender, subject, html, body, status, \
         attempts, last_error, run_id, created_at, sent_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, NULL)",
    )
    .bind(row.id.clone())
    .bind(SqlValue::from(row.template.clone()))
    .bind(Value::from(row.recipients.clone()).to_string())
    .bind(row.sender.clone())
    .bind(row.subject.clone())
    .bind(SqlValue::from(row.html.clone()))
    .bind(row.body.clone())
    .bind(row.status.clone())
    .bind(row.attempts)
    .bind(SqlValue::from(row.run_id.clone()))
    .bind(row.created_at);
    ex.execute(&sql).await?;
    Ok(())
}

pub async fn outbox_by_id(ex: &mut impl Executor, id: &str) -> Result<Option<OutboxRow>> {
    let sql = Sql::new(format!("{OUTBOX_SELECT} WHERE id = $1")).bind(id);
    Ok(ex
        .fetch_all(&sql, &OUTBOX_COLUMNS)
        .await?
        .first()
        .map(outbox))
}

/// The newest messages first; `before` an id (ids grow with time) for paging.
pub async fn outbox_page(
    ex: &mut impl Executor,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxRow>> {
    let mut sql = Sql::new("");
    let mut query = format!("{OUTBOX_SELECT} WHERE 1 = 1");
    if let Some(status) = status {
        query.push_str(&format!(" AND status = {}", sql.param(status)));
    }
    if let Some(before) = before {
        query.push_str(&format!(" AND id < {}", sql.param(before)));
    }
    query.push_str(&format!(" ORDER BY id DESC LIMIT {}", sql.param(limit)));
    sql.push(&query);
    Ok(ex
        .fetch_all(&sql, &OUTBOX_COLUMNS)
        .await?
        .iter()
        .map(outbox)
        .collect())
}

/// Records one delivery attempt: sent, or the error and whether it was the last.
pub async fn record_attempt(
    ex: &mut impl Executor,
    id: &str,
    outcome: std::result::Result<DateTime<Utc>, (&str, bool)>,
) -> Result<()> {
    let sql = match outcome {
        Ok(sent_at) => Sql::new(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, \
             last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(sent_at),
        Err((error, last)) => Sql::new(
            "UPDATE outbox SET status = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(if last { "failed" } else { "queued" })
        .bind(error),
    };
    ex.execute(&sql).await?;
    Ok(())
}
