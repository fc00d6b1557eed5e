//! The typed answers of imports: the report (`POST …/import`, `GET /api/imports/{id}`) and what
//! an undo did.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::wire::timestamp;

/// A refused cell (or row), with a stable code and its parameters for translation.
#[derive(Debug, Clone, Serialize)]
pub struct ImportError {
    /// The spreadsheet row (the header is row 1).
    pub row: i64,
    /// The column's header, when one cell is at fault.
    pub column: Value,
    pub field: Value,
    pub code: Value,
    pub params: Value,
    pub message: Value,
}

/// The report of an import, while it runs and after.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub id: String,
    pub entity: String,
    /// `queued`, `running`, `done`, `failed` or `undone`.
    pub status: String,
    pub dry_run: bool,
    /// Rows of the file, the header excluded (known once it was read through).
    pub rows: i64,
    pub done_rows: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
    /// Column → field.
    pub mapping: Value,
    /// Columns no field took.
    pub unmapped: Value,
    /// Each with a `code`, `params` and `message`, as errors have.
    pub warnings: Vec<Value>,
    pub errors: Vec<ImportError>,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    pub rows_per_second: f64,
    /// What an undo did, once one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<Value>,
}

/// A record an undo left as it was, and why.
#[derive(Debug, Clone, Serialize)]
pub struct UndoSkipped {
    pub row: i64,
    /// The record's id.
    pub id: String,
    pub message: String,
}

/// What an undo did: created records removed, updated ones restored, and those left alone.
#[derive(Debug, Clone, Serialize)]
pub struct UndoReport {
    pub id: String,
    pub removed: i64,
    pub restored: i64,
    pub skipped: Vec<UndoSkipped>,
}
