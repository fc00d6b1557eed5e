//! `multi_select`: several values out of `x-options`, kept in the order given, no repeats.
//! Stored as a JSON array (JSONB on PostgreSQL).

use serde_json::{Map, Value, json};

use super::select::{check_option, option_values};
use super::select::{label_of, option_triples, options_setting};
use super::{Capabilities, TextFormat, TextInput, text_form};
use super::{CellProblem, FieldType, describe, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct MultiSelect;

impl FieldType for MultiSelect {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::LIST
    }

    fn parse_settings(
        &self,
        property: &Map<String, Value>,
        field: &mut FieldDef,
        errors: &mut Vec<String>,
    ) {
        field.options = options_setting(property, errors);
    }

    fn to_text(&self, field: &FieldDef, value: &Value, format: &TextFormat) -> String {
        let labels: Vec<&str> = value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|v| label_of(field, v, format.lang))
            .collect();
        text_form::format_multi(&labels, format.lang)
    }

    fn parse_text(
        &self,
        field: &FieldDef,
        text: &str,
        _: &TextInput,
    ) -> Result<Value, CellProblem> {
        text_form::parse_multi_select(text, &option_triples(field))
            .map(|values| Value::Array(values.into_iter().map(Value::String).collect()))
    }

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
        Ok(SqlValue::Json(Box::new(Value::Array(chosen))))
    }

    fn can_be_unique(&self) -> bool {
        false
    }

    fn can_be_indexed(&self) -> bool {
        false
    }
}
