//! `select`: one value out of `x-options` (value, labels per language, colour).

use serde_json::{Map, Value, json};

use super::{Capabilities, Lang, TextFormat, TextInput, option_label, text_form};
use super::{CellProblem, FieldType, expect_str, schema_of};
use crate::schema::definition::{FieldDef, SelectOption};
use crate::store::{ColumnType, SqlValue};

pub struct Select;

/// `x-options`: values with labels per language and colours; at least one, none twice.
pub fn options_setting(
    property: &Map<String, Value>,
    errors: &mut Vec<String>,
) -> Vec<SelectOption> {
    let options: Vec<SelectOption> = property
        .get("x-options")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|o| SelectOption {
                    value: o["value"].as_str().unwrap_or_default().to_owned(),
                    label: o.get("label").cloned(),
                    color: o.get("color").and_then(Value::as_str).map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for option in &options {
        if !seen.insert(option.value.as_str()) {
            errors.push(format!("option '{}' is listed twice", option.value));
        }
    }
    if options.is_empty() {
        errors.push("a select field needs at least one option in x-options".into());
    }
    options
}

/// An option's label in a language, or the value itself when there is no such option.
pub fn label_of<'a>(field: &'a FieldDef, value: &'a str, lang: Lang) -> &'a str {
    field
        .options
        .iter()
        .find(|o| o.value == value)
        .map_or(value, |o| option_label(o, lang))
}

/// Each option as (value, English label, Chinese label), for reading cells.
pub fn option_triples(field: &FieldDef) -> Vec<(&str, &str, &str)> {
    field
        .options
        .iter()
        .map(|o| {
            (
                o.value.as_str(),
                option_label(o, Lang::En),
                option_label(o, Lang::ZhCn),
            )
        })
        .collect()
}

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
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::CHOICE
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
        value
            .as_str()
            .map(|v| label_of(field, v, format.lang).to_owned())
            .unwrap_or_default()
    }

    fn parse_text(
        &self,
        field: &FieldDef,
        text: &str,
        _: &TextInput,
    ) -> Result<Value, CellProblem> {
        let values = field.options.iter().map(|o| o.value.as_str());
        match text_form::option_by_value(text, values) {
            Some(value) => Ok(Value::String(value.to_owned())),
            None => text_form::parse_select(text, &option_triples(field)).map(Value::String),
        }
    }

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
