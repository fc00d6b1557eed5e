//! `datetime`: an instant, RFC 3339 with an offset; stored and returned in UTC.

use serde_json::{Map, Value, json};

use super::{FieldType, expect_str, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::value::parse_datetime;
use crate::store::{ColumnType, SqlValue};

pub struct Datetime;

impl FieldType for Datetime {
    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Datetime)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("format", json!("date-time"))])
    }

    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let s = expect_str(value, "a date and time (RFC 3339)")?;
        parse_datetime(s)
            .map(SqlValue::Datetime)
            .ok_or_else(|| format!("'{s}' is not a date and time like 2026-11-22T09:30:00+08:00"))
    }
}
