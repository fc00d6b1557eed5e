//! Pages of the logs (the run log, the outbox): newest first, `limit` items, and the cursor
//! (`next_before`) that continues after the last one.

use serde::Serialize;

use crate::error::{Error, Result};

/// Most items a log page holds.
pub const MAX_LIMIT: i64 = 500;

/// The `limit` asked for, checked (50 when none).
pub fn limit(asked: Option<i64>) -> Result<i64> {
    let limit = asked.unwrap_or(50);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::bad_parameter(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ))
    }
}

/// A page of a log: `items`, newest first, and the cursor that continues after the last.
#[derive(Debug, Serialize)]
pub struct LogPage<T> {
    pub items: Vec<T>,
    pub next_before: Option<String>,
}

/// A page from rows fetched with `limit + 1` (the extra one tells there are more); the cursor is
/// the `key` of the last item shown.
pub fn page<R, T>(
    rows: &[R],
    limit: i64,
    shown: impl Fn(&R) -> T,
    key: impl Fn(&T) -> String,
) -> LogPage<T> {
    let items: Vec<T> = rows.iter().take(limit as usize).map(shown).collect();
    let next_before = (rows.len() as i64 > limit)
        .then(|| items.last().map(&key))
        .flatten();
    LogPage { items, next_before }
}
