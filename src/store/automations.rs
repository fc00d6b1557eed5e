//! System tables of automations and their run log.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, opt_text, opt_time, text, time};
use super::{ColumnType, Executor, Row, Sql, SqlValue, Tx};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct AutomationRow {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `record`, `before_save`, `cron` or `manual`.
    pub trigger_kind: String,
    /// The entity of a record or before-save trigger.
    pub entity: Option<String>,
    pub trigger: Value,
    pub script: String,
    pub enabled: bool,
    pub run_as: String,
    pub created_by: Option<String>,
    pub version: i64,
    /// Cron slots at or before this never fire (the automation was off, or did not exist).
    pub enabled_at: DateTime<Utc>,
    pub last_slot: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, name, description, trigger_kind, entity, trigger_doc, script, \
     enabled, run_as, created_by, version, enabled_at, last_slot, created_at, updated_at \
     FROM automations";

const COLUMNS: [ColumnType; 15] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Boolean,
    ColumnType::Id,
    ColumnType::Id,
    ColumnType::Integer,
    ColumnType::Datetime,
    ColumnType::Datetime,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn automation(r: &Row) -> AutomationRow {
    AutomationRow {
        id: text(&r[0]),
        name: text(&r[1]),
        description: text(&r[2]),
        trigger_kind: text(&r[3]),
        entity: opt_text(&r[4]),
        trigger: json(&r[5]),
        script: text(&r[6]),
        enabled: matches!(r[7], SqlValue::Boolean(true)),
        run_as: text(&r[8]),
        created_by: opt_text(&r[9]),
        version: r[10].as_i64().unwrap_or(1),
        enabled_at: time(&r[11]),
        last_slot: opt_time(&r[12]),
        created_at: time(&r[13]),
        updated_at: time(&r[14]),
    }
}

pub async fn list(ex: &mut impl Executor) -> Result<Vec<AutomationRow>> {
    let rows = ex
        .fetch_all(&Sql::new(format!("{SELECT} ORDER BY name")), &COLUMNS)
        .await?;
    Ok(rows.iter().map(automation).collect())
}

/// Enabled automations with one of these trigger kinds.
pub async fn enabled_of_kinds(
    ex: &mut impl Executor,
    kinds: &[&str],
) -> Result<Vec<AutomationRow>> {
    let mut sql = Sql::new("");
    let params: Vec<String> = kinds.iter().map(|k| sql.param(*k)).collect();
    sql.push(&format!(
        "{SELECT} WHERE enabled = {} AND trigger_kind IN ({}) ORDER BY name",
        sql_true(ex),
        params.join(", ")
    ));
    let rows = ex.fetch_all(&sql, &COLUMNS).await?;
    Ok(rows.iter().map(automation).collect())
}

fn sql_true(ex: &impl Executor) -> &'static str {
    ex.dialect().true_literal()
}

pub async fn by_id(ex: &mut impl Executor, id: &str) -> Result<Option<AutomationRow>> {
    let sql = Sql::new(format!("{SELECT} WHERE id = $1")).bind(id);
    Ok(ex.fetch_all(&sql, &COLUMNS).await?.first().map(automation))
}

pub async fn by_name(ex: &mut impl Executor, name: &str) -> Result<Option<AutomationRow>> {
    let sql = Sql::new(format!("{SELECT} WHERE name = $1")).bind(name);
    Ok(ex.fetch_all(&sql, &COLUMNS).await?.first().map(automation))
}

pub async fn insert(tx: &mut Tx, row: &AutomationRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO automations (id, name, description, trigger_kind, entity, trigger_doc, \
         script, enabled, run_as, created_by, version, enabled_at, last_slot, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $13)",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(row.description.clone())
    .bind(row.trigger_kind.clone())
    .bind(SqlValue::from(row.entity.clone()))
    .bind(row.trigger.to_string())
    .bind(row.script.clone())
    .bind(row.enabled)
    .bind(row.run_as.clone())
    .bind(SqlValue::from(row.created_by.clone()))
    .bind(row.version)
    .bind(row.enabled_at)
    .bind(row.created_at);
    tx.execute(&sql).await?;
    Ok(())
}

/// Saves a changed automation if it is still at `expected` version; false when it is not.
pub async fn update(tx: &mut Tx, row: &AutomationRow, expected: i64) -> Result<bool> {
    let sql = Sql::new(
        "UPDATE automations SET name = $1, description = $2, trigger_kind = $3, entity = $4, \
         trigger_doc = $5, script = $6, enabled = $7, run_as = $8, version = $9, \
         enabled_at = $10, updated_at = $11 WHERE id = $12 AND version = $13",
    )
    .bind(row.name.clone())
    .bind(row.description.clone())
    .bind(row.trigger_kind.clone())
    .bind(SqlValue::from(row.entity.clone()))
    .bind(row.trigger.to_string())
    .bind(row.script.clone())
    .bind(row.enabled)
    .bind(row.run_as.clone())
    .bind(row.version)
    .bind(row.enabled_at)
    .bind(row.updated_at)
    .bind(row.id.clone())
    .bind(expected);
    Ok(tx.execute(&sql).await? == 1)
}

pub async fn delete(tx: &mut Tx, id: &str) -> Result<bool> {
    let sql = Sql::new("DELETE FROM automations WHERE id = $1").bind(id);
    Ok(tx.execute(&sql).await? == 1)
}

/// Remembers the newest cron slot queued for an automation.
pub async fn advance_slot(tx: &mut Tx, id: &str, slot: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "UPDATE automations SET last_slot = $2 WHERE id = $1 \
         AND (last_slot IS NULL OR last_slot < $2)",
    )
    .bind(id)
    .bind(slot);
    tx.execute(&sql).await?;
    Ok(())
}

// ---- the run log ------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: String,
    pub automation_id: String,
    pub trigger: Value,
    pub slot: Option<DateTime<Utc>>,
    /// `succeeded`, `failed` or `skipped`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub log: Value,
    pub error: Option<String>,
    pub error_line: Option<i64>,
    pub touched: Value,
    pub result: Option<Value>,
}

pub async fn insert_run(ex: &mut impl Executor, run: &RunRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO automation_runs (id, automation_id, trigger_doc, slot, status, started_at, \
         finished_at, log, error, error_line, touched, result) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(run.id.clone())
    .bind(run.automation_id.clone())
    .bind(run.trigger.to_string())
    .bind(
        run.slot
            .map_or(SqlValue::Null(ColumnType::Datetime), SqlValue::Datetime),
    )
    .bind(run.status.clone())
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(run.log.to_string())
    .bind(SqlValue::from(run.error.clone()))
    .bind(
        run.error_line
            .map_or(SqlValue::Null(ColumnType::Integer), SqlValue::Integer),
    )
    .bind(run.touched.to_string())
    .bind(SqlValue::from(run.result.as_ref().map(Value::to_string)));
    ex.execute(&sql).await?;
    Ok(())
}

/// The newest runs of an automation first, `before` a start time for paging.
pub async fn runs(
    ex: &mut impl Executor,
    automation_id: &str,
    before: Option<DateTime<Utc>>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<RunRow>> {
    let mut sql = Sql::new("");
    let id = sql.param(automation_id);
    let mut query = format!(
        "SELECT id, automation_id, trigger_doc, slot, status, started_at, finished_at, log, \
         error, error_line, touched, result FROM automation_runs WHERE automation_id = {id}"
    );
    if let Some(before) = before {
        query.push_str(&format!(" AND started_at < {}", sql.param(before)));
    }
    if let Some(status) = status {
        query.push_str(&format!(" AND status = {}", sql.param(status)));
    }
    query.push_str(&format!(
        " ORDER BY started_at DESC, id DESC LIMIT {}",
        sql.param(limit)
    ));
    sql.push(&query);
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Id,
                ColumnType::Id,
                ColumnType::Text,
                ColumnType::Datetime,
                ColumnType::Text,
                ColumnType::Datetime,
                ColumnType::Datetime,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| RunRow {
            id: text(&r[0]),
            automation_id: text(&r[1]),
            trigger: json(&r[2]),
            slot: opt_time(&r[3]),
            status: text(&r[4]),
            started_at: time(&r[5]),
            finished_at: time(&r[6]),
            log: json(&r[7]),
            error: opt_text(&r[8]),
            error_line: r[9].as_i64(),
            touched: json(&r[10]),
            result: opt_text(&r[11]).and_then(|s| serde_json::from_str(&s).ok()),
        })
        .collect())
}

/// Forgets runs that started before `before`.
pub async fn purge_runs(ex: &mut impl Executor, before: DateTime<Utc>) -> Result<u64> {
    let sql = Sql::new("DELETE FROM automation_runs WHERE started_at < $1").bind(before);
    ex.execute(&sql).await
}
