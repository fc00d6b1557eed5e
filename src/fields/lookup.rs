//! `lookup`: the id of one record of the `x-target` entity (which may be this entity, as for a
//! parent company). Always indexed; the record must exist and not be in the trash.

use serde_json::{Map, Value, json};

use super::{Capabilities, TextFormat, TextInput, reference_text, resolve_reference};
use super::{CellProblem, FieldType, id_value, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Lookup;

/// `x-target` of a lookup or multi-lookup: the entity it points at (required).
pub fn target_setting(
    property: &Map<String, Value>,
    errors: &mut Vec<String>,
) -> Option<crate::schema::names::EntityName> {
    match property.get("x-target").and_then(Value::as_str) {
        None => {
            errors.push("a lookup field needs x-target, the entity it points at".into());
            None
        }
        Some(t) => match crate::schema::names::EntityName::parse(t) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(format!("x-target: {e}"));
                None
            }
        },
    }
}

impl FieldType for Lookup {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::CHOICE
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
        reference_text(value, format)
    }

    fn parse_text(
        &self,
        field: &FieldDef,
        text: &str,
        input: &TextInput,
    ) -> Result<Value, CellProblem> {
        resolve_reference(field, text, input).map(Value::String)
    }

    fn settings(&self) -> &'static [&'static str] {
        &["x-target"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Id)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("format", json!("uuid"))])
    }

    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        id_value(value, "the id of a record").map(SqlValue::Text)
    }
}
