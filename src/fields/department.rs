//! `department`: the id of a department (an owning team). Always indexed.

use serde_json::{Map, Value, json};

use super::{Capabilities, TextFormat, TextInput, reference_text, resolve_reference};
use super::{CellProblem, FieldType, id_value, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Department;

impl FieldType for Department {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::CHOICE
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

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Id)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("format", json!("uuid"))])
    }

    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        id_value(value, "the id of a department").map(SqlValue::Text)
    }
}
