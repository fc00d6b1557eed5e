//! `integer`: whole numbers in the 64-bit range, with optional `minimum` / `maximum`.

use serde_json::{Map, Value};

use super::{Capabilities, TextInput, text_form};
use super::{CellProblem, FieldType, describe, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Integer;

impl FieldType for Integer {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::NUMBER
    }

    fn parse_text(&self, _: &FieldDef, text: &str, _: &TextInput) -> Result<Value, CellProblem> {
        text_form::parse_integer(text).map(Value::from)
    }

    fn settings(&self) -> &'static [&'static str] {
        &["minimum", "maximum"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Integer)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("integer", &[])
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let n = value.as_i64().ok_or_else(|| match value {
            Value::Number(_) => {
                "must be a whole number within ±9,223,372,036,854,775,807".to_owned()
            }
            other => format!("must be a whole number, not {}", describe(other)),
        })?;
        let d = rust_decimal::Decimal::from(n);
        if let Some(min) = field.minimum
            && d < min
        {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = field.maximum
            && d > max
        {
            return Err(format!("must be at most {max}"));
        }
        Ok(SqlValue::Integer(n))
    }
}
