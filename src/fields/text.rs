//! `text` (one line, default at most 2,000 characters) and `long_text` (notes, descriptions).

use serde_json::{Map, Value, json};

use super::Capabilities;
use super::{FieldType, schema_of, text_value};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub const TEXT_MAX: u64 = 2_000;
pub const LONG_TEXT_MAX: u64 = 100_000;

pub struct Text;
pub struct LongText;

const SETTINGS: &[&str] = &["maxLength", "minLength", "pattern"];

impl FieldType for Text {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::TEXT
    }

    fn settings(&self) -> &'static [&'static str] {
        SETTINGS
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Text)
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        schema_of(
            "string",
            &[("maxLength", json!(field.max_length.unwrap_or(TEXT_MAX)))],
        )
    }

    fn check(&self, field: &FieldDef, errors: &mut Vec<String>) {
        if field.max_length.is_some_and(|m| m > TEXT_MAX) {
            errors.push(format!(
                "maxLength of a text field is at most {TEXT_MAX}; use long_text for more"
            ));
        }
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        text_value(field, value, "text")
    }
}

impl FieldType for LongText {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities {
            groupable: false,
            ..Capabilities::TEXT
        }
    }

    fn settings(&self) -> &'static [&'static str] {
        SETTINGS
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Text)
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        schema_of(
            "string",
            &[(
                "maxLength",
                json!(field.max_length.unwrap_or(LONG_TEXT_MAX)),
            )],
        )
    }

    fn check(&self, field: &FieldDef, errors: &mut Vec<String>) {
        if field.max_length.is_some_and(|m| m > LONG_TEXT_MAX) {
            errors.push(format!(
                "maxLength of a long_text field is at most {LONG_TEXT_MAX}"
            ));
        }
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        text_value(field, value, "text")
    }

    // Long values make poor index keys (PostgreSQL refuses btree entries over ~2.7 kB).
    fn can_be_unique(&self) -> bool {
        false
    }

    fn can_be_indexed(&self) -> bool {
        false
    }
}
