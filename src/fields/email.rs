//! `email`: one address, checked for shape (`format: email`), at most 254 characters.

use serde_json::{Map, Value, json};

use super::{Capabilities, CellProblem, TextInput};
use super::{FieldType, schema_of, text_value};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Email;

/// The practical shape of an address: something@domain.tld, no spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
}

impl FieldType for Email {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::TEXT
    }

    fn settings(&self) -> &'static [&'static str] {
        &["maxLength"]
    }

    fn parse_text(&self, _: &FieldDef, text: &str, _: &TextInput) -> Result<Value, CellProblem> {
        let s = text.trim();
        if is_email(s) {
            Ok(Value::String(s.to_owned()))
        } else {
            Err(
                CellProblem::new("not_email", format!("'{s}' is not an email address"))
                    .with("value", s),
            )
        }
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Text)
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        schema_of(
            "string",
            &[
                ("format", json!("email")),
                ("maxLength", json!(field.max_length.unwrap_or(254))),
            ],
        )
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let stored = text_value(field, value, "an email address")?;
        match stored.as_str() {
            Some(s) if !is_email(s) => Err(format!("'{s}' is not an email address")),
            _ => Ok(stored),
        }
    }
}
