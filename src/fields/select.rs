//! `select`: one value out of `x-options` (value, labels per language, colour).

use serde_json::{Map, Value, json};

use super::{FieldType, expect_str, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Select;

pub fn option_values(field: &FieldDef) -> Vec<Value> {
    field.options.iter().map(|o| json!(o.value)).collect()
}

pub fn check_option(field: &FieldDef, s: &str) -> Result<(), String> {
    if field.options.iter().any(|o| o.value == s) {
        Ok(())
    } else {
        let allowed: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
        Err(format!(
            "'{s}' is not one of the options: {}",
            allowed.join(", ")
        ))
    }
}

impl FieldType for Select {
    fn settings(&self) -> &'static [&'static str] {
        &["x-options"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Text)
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("enum", Value::Array(option_values(field)))])
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let s = expect_str(value, "one of the options")?;
        if s.is_empty() {
            return Ok(SqlValue::Null(ColumnType::Text));
        }
        check_option(field, s)?;
        Ok(SqlValue::Text(s.to_owned()))
    }
}
