//! System tables of imports: the import itself (parameters, file, progress, report) and the
//! outcome of each spreadsheet row, written in the same transaction as the row's record.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cells::{opt_text, text, time};
use super::{ColumnType, Dialect, Executor, Row, Sql, SqlValue, Tx};
use crate::error::Result;

/// An import, as stored.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub id: String,
    pub entity: String,
    pub actor: Option<String>,
    /// `queued`, `running`, `done`, `failed` or `undone`.
    pub status: String,
    pub params: Value,
    pub rows: i64,
    /// The last spreadsheet row whose outcome is committed (1: only the header).
    pub done_row: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
    pub report: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, entity, actor, status, params, rows, done_row, created, \
     updated, failed, report, created_at, updated_at FROM imports";

const COLUMNS: [ColumnType; 13] = [
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Id,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Integer,
    ColumnType::Integer,
    ColumnType::Integer,
    ColumnType::Integer,
    ColumnType::Text,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn json_of(v: &SqlValue) -> Value {
    v.as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn import(r: &Row) -> ImportRow {
    ImportRow {
        id: text(&r[0]),
        entity: text(&r[1]),
        actor: opt_text(&r[2]),
        status: text(&r[3]),
        params: json_of(&r[4]),
        rows: r[5].as_i64().unwrap_or_default(),
        done_row: r[6].as_i64().unwrap_or_default(),
        created: r[7].as_i64().unwrap_or_default(),
        updated: r[8].as_i64().unwrap_or_default(),
        failed: r[9].as_i64().unwrap_or_default(),
        report: json_of(&r[10]),
        created_at: time(&r[11]),
        updated_at: time(&r[12]),
    }
}

/// Stores a new import and, for a background job, the file it reads (base64), apart: the
/// import's row changes after every batch and the file never does.
pub async fn insert(tx: &mut Tx, row: &ImportRow, file: Option<&str>) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO imports (id, entity, actor, status, params, rows, done_row, created, \
         updated, failed, report, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(row.id.as_str())
    .bind(row.entity.as_str())
    .bind(row.actor.clone())
    .bind(row.status.as_str())
    .bind(row.params.to_string())
    .bind(row.rows)
    .bind(row.done_row)
    .bind(row.created)
    .bind(row.updated)
    .bind(row.failed)
    .bind(row.report.to_string())
    .bind(row.created_at)
    .bind(row.updated_at);
    tx.execute(&sql).await?;
    if let Some(file) = file {
        let sql = Sql::new("INSERT INTO import_files (import_id, file) VALUES ($1, $2)")
            .bind(row.id.as_str())
            .bind(file);
        tx.execute(&sql).await?;
    }
    Ok(())
}

/// The uploaded file of an import (base64), while a job still needs it.
pub async fn file(ex: &mut impl Executor, id: &str) -> Result<Option<String>> {
    let sql = Sql::new("SELECT file FROM import_files WHERE import_id = $1").bind(id);
    Ok(ex
        .fetch_all(&sql, &[ColumnType::Text])
        .await?
        .first()
        .and_then(|r| opt_text(&r[0])))
}

pub async fn get(ex: &mut impl Executor, id: &str) -> Result<Option<ImportRow>> {
    let sql = Sql::new(format!("{SELECT} WHERE id = $1")).bind(id);
    Ok(ex.fetch_all(&sql, &COLUMNS).await?.first().map(import))
}

/// Moves an import's progress from `from_row` to `to_row` with the counts of the rows in
/// between. It is sent ahead (an import's batch does not wait for it): if another worker
/// moved the import meanwhile, the statement fails — `done_row` would be set to NULL, which
/// its column refuses — and with it the transaction, so no row is written twice
/// ([`moved_on`] tells that failure).
pub async fn advance(
    tx: &mut Tx,
    id: &str,
    from_row: i64,
    to_row: i64,
    counts: (i64, i64, i64),
    at: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "UPDATE imports SET done_row = CASE WHEN done_row = $7 THEN $1 END, \
         created = created + $2, updated = updated + $3, failed = failed + $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(to_row)
    .bind(counts.0)
    .bind(counts.1)
    .bind(counts.2)
    .bind(at)
    .bind(id)
    .bind(from_row);
    tx.send(sql).await
}

/// Whether a write failed because [`advance`] found the import moved by another worker (the
/// error of a statement sent ahead may come back as a commit's message, hence the text).
pub fn moved_on(error: &crate::error::Error) -> bool {
    error.to_string().contains("done_row")
}

/// Sets an import's status (and its report and file when given).
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    status: &str,
    rows: Option<i64>,
    report: Option<&Value>,
    keep_file: bool,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE imports SET ");
    let p = sql.param(status);
    sql.push(&format!("status = {p}"));
    let p = sql.param(at);
    sql.push(&format!(", updated_at = {p}"));
    if let Some(rows) = rows {
        let p = sql.param(rows);
        sql.push(&format!(", rows = {p}"));
    }
    if let Some(report) = report {
        let p = sql.param(report.to_string());
        sql.push(&format!(", report = {p}"));
    }
    let p = sql.param(id);
    sql.push(&format!(" WHERE id = {p}"));
    tx.execute(&sql).await?;
    if !keep_file {
        let sql = Sql::new("DELETE FROM import_files WHERE import_id = $1").bind(id);
        tx.execute(&sql).await?;
    }
    Ok(())
}

/// The outcome of one spreadsheet row.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub row: i64,
    /// `created`, `updated` or `failed`.
    pub outcome: String,
    pub record_id: Option<String>,
    pub version: Option<i64>,
    pub before: Option<Value>,
    pub errors: Option<Value>,
    pub cells: Option<Value>,
}

/// Keeps the outcomes of rows of an import, 60 rows a statement. Two or more rows created
/// in one call (a batch created together) keep one row between them: the last one's number,
/// the rows and their records in `created` (migration 0013). The statements are sent ahead.
pub async fn insert_rows(tx: &mut Tx, import_id: &str, rows: &[RowOutcome]) -> Result<()> {
    let is_created = |row: &RowOutcome| row.outcome == "created" && row.record_id.is_some();
    let together: Vec<(i64, &str, Option<i64>)> = rows
        .iter()
        .filter(|row| row.outcome == "created")
        .filter_map(|row| Some((row.row, row.record_id.as_deref()?, row.version)))
        .collect();
    let together = if together.len() >= 2 {
        together
    } else {
        Vec::new()
    };
    let mut values: Vec<Vec<SqlValue>> = rows
        .iter()
        .filter(|row| together.is_empty() || !is_created(row))
        .map(|row| {
            vec![
                SqlValue::from(import_id),
                SqlValue::Integer(row.row),
                SqlValue::from(row.outcome.as_str()),
                SqlValue::from(row.record_id.clone()),
                row.version
                    .map_or(SqlValue::Null(ColumnType::Integer), SqlValue::Integer),
                SqlValue::from(row.before.as_ref().map(Value::to_string)),
                SqlValue::from(row.errors.as_ref().map(Value::to_string)),
                SqlValue::from(row.cells.as_ref().map(Value::to_string)),
                SqlValue::Null(ColumnType::Text),
            ]
        })
        .collect();
    if let Some(&(last, _, _)) = together.last() {
        let created = serde_json::to_string(&together)
            .map_err(|e| crate::error::Error::internal(format!("an import's rows: {e}")))?;
        values.push(vec![
            SqlValue::from(import_id),
            SqlValue::Integer(last),
            SqlValue::from("created"),
            SqlValue::from(None::<String>),
            SqlValue::Null(ColumnType::Integer),
            SqlValue::Null(ColumnType::Text),
            SqlValue::Null(ColumnType::Text),
            SqlValue::Null(ColumnType::Text),
            SqlValue::Text(created),
        ]);
    }
    // Each statement is made while the one before runs.
    let dialect = tx.dialect();
    let mut pipe = tx.pipeline();
    let mut values = values.into_iter().peekable();
    while values.peek().is_some() {
        let chunk: Vec<Vec<SqlValue>> = values.by_ref().take(60).collect();
        let target = "import_rows (import_id, row, outcome, record_id, version, before, errors, \
                      cells, created)";
        pipe.send(Sql::insert_rows(dialect, target, chunk, &[]))
            .await?;
    }
    // The last statements may still run: the transaction's next use (or its commit) waits.
    Ok(())
}

/// What became of an imported row, as its rows are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Failed => "failed",
        }
    }
}

/// Rows of an import with an outcome, in row order, after `after_row`, at most `limit`; rows
/// created together come one by one.
pub async fn rows(
    ex: &mut impl Executor,
    import_id: &str,
    outcome: Outcome,
    after_row: i64,
    limit: i64,
) -> Result<Vec<RowOutcome>> {
    // Rows created together are a few thousand to a stored row: read a few at a time.
    let page = match outcome {
        Outcome::Created => limit.min(16),
        _ => limit,
    };
    let mut found: Vec<RowOutcome> = Vec::new();
    let mut after = after_row;
    while (found.len() as i64) < limit {
        let stored = stored_rows(ex, import_id, outcome, after, page).await?;
        let Some(last) = stored.last().map(|(row, _)| row.row) else {
            break;
        };
        let full = stored.len() as i64 == page;
        for (row, created) in stored {
            match created {
                // The stored row answers for the rows listed, the last one's number its own;
                // a page that ended inside it reads it again, from where that page ended.
                Some(together) => found.extend(
                    together
                        .into_iter()
                        .filter(|(number, _, _)| *number > after_row)
                        .map(|(number, id, version)| RowOutcome {
                            row: number,
                            outcome: "created".to_owned(),
                            record_id: Some(id),
                            version,
                            before: None,
                            errors: None,
                            cells: None,
                        }),
                ),
                None => found.push(row),
            }
        }
        after = last;
        if !full {
            break;
        }
    }
    found.truncate(usize::try_from(limit).unwrap_or_default());
    Ok(found)
}

/// Rows created together, as stored: [row, record id, version] each.
type Together = Vec<(i64, String, Option<i64>)>;

/// Stored outcome rows after `after_row`, with the rows created together they stand for.
async fn stored_rows(
    ex: &mut impl Executor,
    import_id: &str,
    outcome: Outcome,
    after_row: i64,
    limit: i64,
) -> Result<Vec<(RowOutcome, Option<Together>)>> {
    // The outcome is written into the text, not bound: only then may a planner use the
    // partial index of the refused rows (`import_rows_failed`) rather than walk them all.
    // SQLite is told to: it has no statistics of the index until the next ANALYZE, and
    // without them it took the primary key (the same columns, and no lookup per row).
    let index = match (outcome, ex.dialect()) {
        (Outcome::Failed, Dialect::Sqlite) => " INDEXED BY import_rows_failed",
        _ => "",
    };
    let sql = Sql::new(format!(
        "SELECT row, outcome, record_id, version, before, errors, cells, created \
         FROM import_rows{index} \
         WHERE import_id = $1 AND outcome = '{}' AND row > $2 ORDER BY row LIMIT $3",
        outcome.as_str()
    ))
    .bind(import_id)
    .bind(after_row)
    .bind(limit);
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Id,
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
            ],
        )
        .await?;
    let opt_json = |v: &SqlValue| v.as_str().and_then(|s| serde_json::from_str(s).ok());
    rows.iter()
        .map(|r| {
            let outcome = RowOutcome {
                row: r[0].as_i64().unwrap_or_default(),
                outcome: text(&r[1]),
                record_id: opt_text(&r[2]),
                version: r[3].as_i64(),
                before: opt_json(&r[4]),
                errors: opt_json(&r[5]),
                cells: opt_json(&r[6]),
            };
            let together = r[7].as_str().map(serde_json::from_str::<Together>);
            match together {
                Some(Ok(together)) => Ok((outcome, Some(together))),
                Some(Err(e)) => Err(crate::error::Error::internal(format!(
                    "an import's rows created together cannot be read: {e}"
                ))),
                None => Ok((outcome, None)),
            }
        })
        .collect()
}
