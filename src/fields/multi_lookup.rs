//! `multi_lookup`: ids of several records of the `x-target` entity. The links live in a join
//! table (`rel_<entity>_<field>`: source, target, position), indexed both ways.

use serde_json::{Map, Value, json};

use super::lookup::target_setting;
use super::{Capabilities, TextFormat, TextInput, reference_text, resolve_reference, text_form};
use super::{CellProblem, FieldType, describe, id_value, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct MultiLookup;

impl FieldType for MultiLookup {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::LIST
    }

    fn parse_settings(
        &self,
        property: &Map<String, Value>,
        field: &mut FieldDef,
        errors: &mut Vec<String>,
    ) {
        field.target = target_setting(property, errors);
    }

    fn to_text(&self, _: &FieldDef, value: &Value, format: &TextFormat) -> String {
        value
            .as_array()
            .map(|ids| {
                let titles: Vec<String> = ids.iter().map(|id| reference_text(id, format)).collect();
                text_form::format_multi(&titles, format.lang)
            })
            .unwrap_or_default()
    }

    fn parse_text(
        &self,
        field: &FieldDef,
        text: &str,
        input: &TextInput,
    ) -> Result<Value, CellProblem> {
        text_form::split_list(text)
            .into_iter()
            .map(|part| resolve_reference(field, part, input).map(Value::String))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }

    fn settings(&self) -> &'static [&'static str] {
        &["x-target", "minItems", "maxItems"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        None
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of(
            "array",
            &[
                ("items", json!({"type": "string", "format": "uuid"})),
                ("uniqueItems", json!(true)),
            ],
        )
    }

    /// The ids, as a JSON array, for the store to write into the join table.
    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let items = value
            .as_array()
            .ok_or_else(|| format!("must be a list of record ids, not {}", describe(value)))?;
        let mut ids: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            let id = json!(id_value(item, "the id of a record")?);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(SqlValue::Json(Box::new(Value::Array(ids))))
    }

    fn can_be_unique(&self) -> bool {
        false
    }

    fn can_be_indexed(&self) -> bool {
        false
    }
}
