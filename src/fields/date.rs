//! `date`: a calendar day, `YYYY-MM-DD`, with no time zone.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::{Capabilities, TextInput, text_form};
use super::{CellProblem, FieldType, expect_str, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Date;

/// A date in the form the format promises, exactly `YYYY-MM-DD` (chrono's `%Y-%m-%d` alone
/// accepts "2024-1-2").
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    text_form::iso_date(s).ok_or_else(|| format!("'{s}' is not a date in the form YYYY-MM-DD"))
}

/// A date written as `YYYY-MM-DD`, or the UTC date of an RFC 3339 datetime.
pub fn parse_date_or_datetime(s: &str) -> Option<NaiveDate> {
    parse_date(s)
        .ok()
        .or_else(|| crate::store::value::parse_datetime(s).map(|t| t.date_naive()))
}

impl FieldType for Date {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::DATE
    }

    fn parse_text(&self, _: &FieldDef, text: &str, _: &TextInput) -> Result<Value, CellProblem> {
        text_form::parse_date(text).map(|d| Value::String(text_form::format_date(d)))
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Date)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("format", json!("date"))])
    }

    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let s = expect_str(value, "a date (YYYY-MM-DD)")?;
        parse_date(s).map(SqlValue::Date)
    }
}
