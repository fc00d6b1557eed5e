//! Pages of the logs (the run log, the outbox): newest first, `limit` items, and the cursor
//! (`next_before`) that continues after the last one.

use serde_json::{Value, json};

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

/// A page from rows fetched with `limit + 1` (the extra one tells there are more); the cursor is
/// the `key` of the last item shown.
pub fn page<T>(rows: &[T], limit: i64, shown: impl Fn(&T) -> Value, key: &str) -> Value {
    let items: Vec<Value> = rows.iter().take(limit as usize).map(shown).collect();
    let next = (rows.len() as i64 > limit)
        .then(|| {
            items
                .last()
                .and_then(|i| i[key].as_str().map(str::to_owned))
        })
        .flatten();
    json!({"items": items, "next_before": next})
}
