//! System tables of outbound webhooks: endpoints, deliveries (one per event and endpoint,
//! queued in the same transaction as the change) and the attempts made for each.

use chrono::{DateTime, Utc};

use super::cells::{opt_text, opt_time, text, time};
use super::{ColumnType, Executor, Row, Sql, SqlValue, Tx};
use crate::error::Result;

/// An endpoint, as stored.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Entity names it wants (empty: every entity).
    pub entities: Vec<String>,
    /// Event kinds it wants (`created`, `updated`, …).
    pub events: Vec<String>,
    /// For updates: only when one of these fields changed (empty: any change).
    pub fields: Vec<String>,
    pub active: bool,
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_until`.
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    /// Why delivery was switched off by the server (a 410 Gone), if it was.
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, url, description, entities, events, fields, active, secret, \
     previous_secret, previous_until, disabled_reason, created_by, version, created_at, \
     updated_at FROM webhooks";

const COLUMNS: [ColumnType; 15] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Boolean,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Datetime,
    ColumnType::Text,
    ColumnType::Id,
    ColumnType::Integer,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn list_of(v: &SqlValue) -> Vec<String> {
    v.as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

fn webhook(r: &Row) -> WebhookRow {
    WebhookRow {
        id: text(&r[0]),
        url: text(&r[1]),
        description: text(&r[2]),
        entities: list_of(&r[3]),
        events: list_of(&r[4]),
        fields: list_of(&r[5]),
        active: matches!(r[6], SqlValue::Boolean(true)),
        secret: text(&r[7]),
        previous_secret: opt_text(&r[8]),
        previous_until: opt_time(&r[9]),
        disabled_reason: opt_text(&r[10]),
        created_by: text(&r[11]),
        version: r[12].as_i64().unwrap_or(1),
        created_at: time(&r[13]),
        updated_at: time(&r[14]),
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn opt_datetime(t: Option<DateTime<Utc>>) -> SqlValue {
    t.map_or(SqlValue::Null(ColumnType::Datetime), SqlValue::Datetime)
}

pub async fn list(ex: &mut impl Executor) -> Result<Vec<WebhookRow>> {
    let rows = ex
        .fetch_all(&Sql::new(format!("{SELECT} ORDER BY created_at")), &COLUMNS)
        .await?;
    Ok(rows.iter().map(webhook).collect())
}

pub async fn by_id(ex: &mut impl Executor, id: &str) -> Result<Option<WebhookRow>> {
    let sql = Sql::new(format!("{SELECT} WHERE id = $1")).bind(id);
    Ok(ex.fetch_all(&sql, &COLUMNS).await?.first().map(webhook))
}

pub async fn insert(tx: &mut Tx, row: &WebhookRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO webhooks (id, url, description, entities, events, fields, active, secret, \
         previous_secret, previous_until, disabled_reason, created_by, version, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(row.id.clone())
    .bind(row.url.clone())
    .bind(row.description.clone())
    .bind(json_list(&row.entities))
    .bind(json_list(&row.events))
    .bind(json_list(&row.fields))
    .bind(row.active)
    .bind(row.secret.clone())
    .bind(SqlValue::from(row.previous_secret.clone()))
    .bind(opt_datetime(row.previous_until))
    .bind(SqlValue::from(row.disabled_reason.clone()))
    .bind(row.created_by.clone())
    .bind(row.version)
    .bind(row.created_at);
    tx.execute(&sql).await?;
    Ok(())
}

/// Saves a changed endpoint if it is still at `expected` version; false when it is not.
pub async fn update(tx: &mut Tx, row: &WebhookRow, expected: i64) -> Result<bool> {
    let sql = Sql::new(
        "UPDATE webhooks SET url = $1, description = $2, entities = $3, events = $4, \
         fields = $5, active = $6, secret = $7, previous_secret = $8, previous_until = $9, \
         disabled_reason = $10, version = $11, updated_at = $12 WHERE id = $13 AND version = $14",
    )
    .bind(row.url.clone())
    .bind(row.description.clone())
    .bind(json_list(&row.entities))
    .bind(json_list(&row.events))
    .bind(json_list(&row.fields))
    .bind(row.active)
    .bind(row.secret.clone())
    .bind(SqlValue::from(row.previous_secret.clone()))
    .bind(opt_datetime(row.previous_until))
    .bind(SqlValue::from(row.disabled_reason.clone()))
    .bind(row.version)
    .bind(row.updated_at)
    .bind(row.id.clone())
    .bind(expected);
    Ok(tx.execute(&sql).await? == 1)
}

pub async fn delete(tx: &mut Tx, id: &str) -> Result<()> {
    for table in [
        "DELETE FROM webhook_attempts WHERE delivery_id IN \
         (SELECT id FROM webhook_deliveries WHERE webhook_id = $1)",
        "DELETE FROM webhook_deliveries WHERE webhook_id = $1",
        "DELETE FROM webhooks WHERE id = $1",
    ] {
        tx.execute(&Sql::new(table).bind(id)).await?;
    }
    Ok(())
}

/// Switches an endpoint off (its receiver answered 410 Gone).
pub async fn disable(tx: &mut Tx, id: &str, reason: &str, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "UPDATE webhooks SET active = $1, disabled_reason = $2, version = version + 1, \
         updated_at = $3 WHERE id = $4",
    )
    .bind(false)
    .bind(reason)
    .bind(now)
    .bind(id);
    tx.execute(&sql).await?;
    Ok(())
}

/// A delivery: one event for one endpoint; its body is fixed when it is queued (so every
/// attempt and every replay sends the same bytes under the same `webhook-id`).
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub entity: Option<String>,
    pub record_id: Option<String>,
    pub body: String,
    /// `pending`, `delivered`, `failed` (attempts exhausted) or `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const DELIVERY_SELECT: &str = "SELECT id, webhook_id, event_type, entity, record_id, body, \
     status, attempts, next_attempt, last_status, last_error, created_at, finished_at \
     FROM webhook_deliveries";

const DELIVERY_COLUMNS: [ColumnType; 13] = [
    ColumnType::Id,
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Datetime,
    ColumnType::Integer,
    ColumnType::Text,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn delivery(r: &Row) -> DeliveryRow {
    DeliveryRow {
        id: text(&r[0]),
        webhook_id: text(&r[1]),
        event_type: text(&r[2]),
        entity: opt_text(&r[3]),
        record_id: opt_text(&r[4]),
        body: text(&r[5]),
        status: text(&r[6]),
        attempts: r[7].as_i64().unwrap_or_default(),
        next_attempt: opt_time(&r[8]),
        last_status: r[9].as_i64(),
        last_error: opt_text(&r[10]),
        created_at: time(&r[11]),
        finished_at: opt_time(&r[12]),
    }
}

pub async fn insert_delivery(tx: &mut Tx, row: &DeliveryRow) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_type, entity, record_id, body, \
         status, attempts, next_attempt, last_status, last_error, created_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, NULL)",
    )
    .bind(row.id.clone())
    .bind(row.webhook_id.clone())
    .bind(row.event_type.clone())
    .bind(SqlValue::from(row.entity.clone()))
    .bind(SqlValue::from(row.record_id.clone()))
    .bind(row.body.clone())
    .bind(row.status.clone())
    .bind(row.attempts)
    .bind(opt_datetime(row.next_attempt))
    .bind(row.created_at);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn delivery_by_id(ex: &mut impl Executor, id: &str) -> Result<Option<DeliveryRow>> {
    let sql = Sql::new(format!("{DELIVERY_SELECT} WHERE id = $1")).bind(id);
    Ok(ex
        .fetch_all(&sql, &DELIVERY_COLUMNS)
        .await?
        .first()
        .map(delivery))
}

/// An endpoint's deliveries, newest first, before `before` (a creation time) when given.
pub async fn deliveries(
    ex: &mut impl Executor,
    webhook_id: &str,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let mut sql = Sql::new(format!("{DELIVERY_SELECT} WHERE webhook_id = $1")).bind(webhook_id);
    if let Some(before) = before {
        let p = sql.param(before);
        sql.push(&format!(" AND created_at < {p}"));
    }
    let p = sql.param(limit);
    sql.push(&format!(" ORDER BY created_at DESC, id DESC LIMIT {p}"));
    Ok(ex
        .fetch_all(&sql, &DELIVERY_COLUMNS)
        .await?
        .iter()
        .map(delivery)
        .collect())
}

/// Makes a finished delivery pending again (a replay).
pub async fn reopen(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt = $1, finished_at = NULL \
         WHERE id = $2",
    )
    .bind(now)
    .bind(id);
    tx.execute(&sql).await?;
    Ok(())
}

/// Records how an attempt went and what comes next.
pub async fn finish_attempt(
    tx: &mut Tx,
    delivery: &DeliveryRow,
    attempt: &AttemptRow,
) -> Result<()> {
    let sql = Sql::new(
        "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt = $3, \
         last_status = $4, last_error = $5, finished_at = $6 WHERE id = $7",
    )
    .bind(delivery.status.clone())
    .bind(delivery.attempts)
    .bind(opt_datetime(delivery.next_attempt))
    .bind(
        delivery
            .last_status
            .map_or(SqlValue::Null(ColumnType::Integer), SqlValue::Integer),
    )
    .bind(SqlValue::from(delivery.last_error.clone()))
    .bind(opt_datetime(delivery.finished_at))
    .bind(delivery.id.clone());
    tx.execute(&sql).await?;
    let sql = Sql::new(
        "INSERT INTO webhook_attempts (id, delivery_id, at, status, duration_ms, response, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(attempt.id.clone())
    .bind(attempt.delivery_id.clone())
    .bind(attempt.at)
    .bind(
        attempt
            .status
            .map_or(SqlValue::Null(ColumnType::Integer), SqlValue::Integer),
    )
    .bind(attempt.duration_ms)
    .bind(SqlValue::from(attempt.response.clone()))
    .bind(SqlValue::from(attempt.error.clone()));
    tx.execute(&sql).await?;
    Ok(())
}

/// One attempt to deliver.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub id: String,
    pub delivery_id: String,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    pub duration_ms: i64,
    /// The start of the response body.
    pub response: Option<String>,
    /// Why there was no answer (timeout, refused, not allowed).
    pub error: Option<String>,
}

/// The attempts of some deliveries, oldest first (one query for a page of deliveries).
pub async fn attempts(ex: &mut impl Executor, delivery_ids: &[String]) -> Result<Vec<AttemptRow>> {
    if delivery_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    let list: Vec<String> = delivery_ids
        .iter()
        .map(|id| sql.param(id.as_str()))
        .collect();
    sql.push(&format!(
        "SELECT id, delivery_id, at, status, duration_ms, response, error FROM webhook_attempts \
         WHERE delivery_id IN ({}) ORDER BY at",
        list.join(", ")
    ));
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Id,
                ColumnType::Id,
                ColumnType::Datetime,
                ColumnType::Integer,
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AttemptRow {
            id: text(&r[0]),
            delivery_id: text(&r[1]),
            at: time(&r[2]),
            status: r[3].as_i64(),
            duration_ms: r[4].as_i64().unwrap_or_default(),
            response: opt_text(&r[5]),
            error: opt_text(&r[6]),
        })
        .collect())
}
