//! `multi_select`: several values out of `x-options`, kept in the order given, no repeats.
//! Stored as a JSON array (JSONB on PostgreSQL).

use serde_json::{Map, Value, json};

use super::select::{check_option, option_values};
use super::{FieldType, describe, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct MultiSelect;

impl FieldType for MultiSelect {
    fn settings(&self) -> &'static [&'static str] {
        &["x-options", "minItems", "maxItems"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Json)
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        schema_of(
            "array",
            &[
                (
                    "items",
                    json!({"type": "string", "enum": option_values(field)}),
                ),
                ("uniqueItems", json!(true)),
            ],
        )
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let items = value
            .as_array()
            .ok_or_else(|| format!("must be a list of options, not {}", describe(value)))?;
        let mut chosen: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            let s = item
                .as_str()
                .ok_or_else(|| format!("each choice must be text, not {}", describe(item)))?;
            check_option(field, s)?;
            if !chosen.iter().any(|c| c == item) {
                chosen.push(item.clone());
            }
        }
        if chosen.is_empty() {
            return Ok(SqlValue::Null(ColumnType::Json));
        }
        Ok(SqlValue::Json(Value::Array(chosen)))
    }

    fn can_be_unique(&self) -> bool {
        false
    }

    fn can_be_indexed(&self) -> bool {
        false
    }
}
