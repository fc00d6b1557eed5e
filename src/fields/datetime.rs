//! `datetime`: an instant, RFC 3339 with an offset; stored and returned in UTC.

use serde_json::{Map, Value, json};

use super::{Capabilities, TextFormat, TextInput, text_form};
use super::{CellProblem, FieldType, expect_str, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::value::parse_datetime;
use crate::store::{ColumnType, SqlValue};

pub struct Datetime;

impl FieldType for Datetime {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::DATE
    }

    fn to_text(&self, _: &FieldDef, value: &Value, format: &TextFormat) -> String {
        value
            .as_str()
            .and_then(parse_datetime)
            .map(|t| text_form::format_datetime(&t, format.offset_minutes))
            .unwrap_or_default()
    }

    fn parse_text(
        &self,
        _: &FieldDef,
        text: &str,
        input: &TextInput,
    ) -> Result<Value, CellProblem> {
        text_form::parse_datetime(text, input.offset_minutes)
            .map(|t| Value::String(crate::store::value::format_datetime(&t)))
    }

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
