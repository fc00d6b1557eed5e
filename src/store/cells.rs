//! Reading typed cells out of a fetched row (system tables).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::SqlValue;

pub(crate) fn text(v: &SqlValue) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

pub(crate) fn opt_text(v: &SqlValue) -> Option<String> {
    v.as_str().map(str::to_owned)
}

pub(crate) fn time(v: &SqlValue) -> DateTime<Utc> {
    match v {
        SqlValue::Datetime(t) => *t,
        _ => DateTime::<Utc>::MIN_UTC,
    }
}

pub(crate) fn opt_time(v: &SqlValue) -> Option<DateTime<Utc>> {
    match v {
        SqlValue::Datetime(t) => Some(*t),
        _ => None,
    }
}

pub(crate) fn json(v: &SqlValue) -> Value {
    v.as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}
