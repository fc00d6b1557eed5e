//! The durable job queue: one row per job, claimed with a lease. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED` so that several servers share the queue; SQLite has one writer.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{json, opt_text, text};
use super::{ColumnType, Dialect, Executor, Sql, SqlValue, Tx};
use crate::error::Result;

/// A job to be run.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    /// At most one job ever carries a given key (a cron slot, say); a second insert is ignored.
    pub unique_key: Option<String>,
    pub payload: Value,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i64,
}

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    /// Counting this one.
    pub attempts: i64,
    pub max_attempts: i64,
    pub unique_key: Option<String>,
}

/// Adds a job; returns false when its unique key is taken (the job exists already).
pub async fn enqueue(ex: &mut impl Executor, job: &NewJob, now: DateTime<Utc>) -> Result<bool> {
    let sql = Sql::new(
        "INSERT INTO jobs (id, kind, unique_key, payload, status, run_at, attempts, max_attempts, \
         created_at) VALUES ($1, $2, $3, $4, 'queued', $5, 0, $6, $7) \
         ON CONFLICT (unique_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().hyphenated().to_string())
    .bind(job.kind)
    .bind(SqlValue::from(job.unique_key.clone()))
    .bind(job.payload.to_string())
    .bind(job.run_at)
    .bind(job.max_attempts)
    .bind(now);
    Ok(ex.execute(&sql).await? == 1)
}

const DUE: &str = "(status = 'queued' AND run_at <= $1) \
                   OR (status = 'running' AND lease_expires_at < $1)";

/// Whether any job is due (a cheap read before claiming, so idle polling writes nothing).
pub async fn any_due(ex: &mut impl Executor, now: DateTime<Utc>) -> Result<bool> {
    let sql = Sql::new(format!("SELECT id FROM jobs WHERE {DUE} LIMIT 1")).bind(now);
    Ok(!ex.fetch_all(&sql, &[ColumnType::Id]).await?.is_empty())
}

/// Claims up to `limit` due jobs for `owner` until `lease_until`; a job whose lease ran out
/// (its worker died) is due again.
pub async fn claim(
    tx: &mut Tx,
    owner: &str,
    lease_until: DateTime<Utc>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimedJob>> {
    // PostgreSQL: the locked ids are picked once, in a CTE. As `id IN (SELECT … LIMIT n FOR
    // UPDATE SKIP LOCKED)` the subquery may run again for rows of the outer scan, and one claim
    // of one job came back with two: the second sat `running` with nobody handling it until
    // its lease ran out (five minutes).
    let sql = Sql::new(match tx.dialect() {
        Dialect::Postgres => format!(
            "WITH picked AS (SELECT id FROM jobs WHERE {DUE} ORDER BY run_at LIMIT $4 \
             FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET status = 'running', lease_owner = $2, lease_expires_at = $3, \
             attempts = attempts + 1 FROM picked WHERE jobs.id = picked.id \
             RETURNING jobs.id, jobs.kind, jobs.payload, jobs.attempts, jobs.max_attempts, \
             jobs.unique_key"
        ),
        Dialect::Sqlite => format!(
            "UPDATE jobs SET status = 'running', lease_owner = $2, lease_expires_at = $3, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs WHERE {DUE} \
             ORDER BY run_at LIMIT $4) \
             RETURNING id, kind, payload, attempts, max_attempts, unique_key"
        ),
    })
    .bind(now)
    .bind(owner)
    .bind(lease_until)
    .bind(limit);
    let rows = tx
        .fetch_all(
            &sql,
            &[
                ColumnType::Id,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Integer,
                ColumnType::Integer,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ClaimedJob {
            id: text(&r[0]),
            kind: text(&r[1]),
            payload: json(&r[2]),
            attempts: r[3].as_i64().unwrap_or(1),
            max_attempts: r[4].as_i64().unwrap_or(1),
            unique_key: opt_text(&r[5]),
        })
        .collect())
}

/// Marks a job done (inside the transaction that did its work, so the work and the mark
/// commit together). The lease owner stays: it tells which server ran the job.
pub async fn complete(ex: &mut impl Executor, id: &str, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "UPDATE jobs SET status = 'done', finished_at = $2, lease_expires_at = NULL \
         WHERE id = $1 AND status <> 'done'",
    )
    .bind(id)
    .bind(now);
    ex.execute(&sql).await?;
    Ok(())
}

/// Puts a failed job back in the queue for `run_at`.
pub async fn retry(
    ex: &mut impl Executor,
    id: &str,
    error: &str,
    run_at: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "UPDATE jobs SET status = 'queued', run_at = $2, last_error = $3, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(run_at)
    .bind(error);
    ex.execute(&sql).await?;
    Ok(())
}

/// Parks a job as failed for good.
pub async fn park(ex: &mut impl Executor, id: &str, error: &str, now: DateTime<Utc>) -> Result<()> {
    let sql = Sql::new(
        "UPDATE jobs SET status = 'failed', last_error = $2, finished_at = $3, \
         lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(now);
    ex.execute(&sql).await?;
    Ok(())
}

/// Forgets finished jobs older than `before`.
pub async fn purge(ex: &mut impl Executor, before: DateTime<Utc>) -> Result<u64> {
    let sql = Sql::new("DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < $1")
        .bind(before);
    ex.execute(&sql).await
}

/// Counts of jobs by status (for the health of the queue).
pub async fn counts(ex: &mut impl Executor) -> Result<Vec<(String, i64)>> {
    let sql = Sql::new("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status");
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Text, ColumnType::Integer])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (text(&r[0]), r[1].as_i64().unwrap_or_default()))
        .collect())
}
