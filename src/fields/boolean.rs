//! `boolean`: yes / no.

use serde_json::{Map, Value};

use super::{Capabilities, TextFormat, TextInput, text_form};
use super::{CellProblem, FieldType, describe, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Boolean;

impl FieldType for Boolean {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::CHOICE
    }

    fn to_text(&self, _: &FieldDef, value: &Value, format: &TextFormat) -> String {
        value
            .as_bool()
            .map(|b| text_form::format_bool(b, format.lang).to_owned())
            .unwrap_or_default()
    }

    fn parse_text(&self, _: &FieldDef, text: &str, _: &TextInput) -> Result<Value, CellProblem> {
        text_form::parse_bool(text).map(Value::Bool)
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Boolean)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("boolean", &[])
    }

    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        value
            .as_bool()
            .map(SqlValue::Boolean)
            .ok_or_else(|| format!("must be true or false, not {}", describe(value)))
    }

    fn can_be_unique(&self) -> bool {
        false
    }
}
