//! `phone`: a telephone number as people write it (`+86 138 0013 8000`, `010-6552 9988`,
//! `(021) 5555-1234 ext 12`), at most 50 characters.

use serde_json::{Map, Value, json};

use super::{Capabilities, CellProblem, TextInput};
use super::{FieldType, schema_of, text_value};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Phone;

/// At least three digits; otherwise only the punctuation phone numbers use, and an extension.
pub fn is_phone(s: &str) -> bool {
    let (number, extension) = match s.find(['x', 'e', '转']) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let extension = extension
        .trim_start_matches("ext.")
        .trim_start_matches("ext")
        .trim_start_matches('x')
        .trim_start_matches('转')
        .trim();
    number.chars().filter(char::is_ascii_digit).count() >= 3
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().#*/".contains(c))
        && extension.chars().all(|c| c.is_ascii_digit())
}

impl FieldType for Phone {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::TEXT
    }

    fn settings(&self) -> &'static [&'static str] {
        &["maxLength", "pattern"]
    }

    fn parse_text(
        &self,
        field: &FieldDef,
        text: &str,
        _: &TextInput,
    ) -> Result<Value, CellProblem> {
        let s = text.trim();
        // A custom pattern is checked by the write path, with the field's own rule.
        if field.regex.is_some() || is_phone(s) {
            Ok(Value::String(s.to_owned()))
        } else {
            Err(
                CellProblem::new("not_phone", format!("'{s}' is not a phone number"))
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
            &[("maxLength", json!(field.max_length.unwrap_or(50)))],
        )
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let stored = text_value(field, value, "a phone number")?;
        match stored.as_str() {
            // A custom pattern replaces the built-in shape check.
            Some(s) if field.regex.is_none() && !is_phone(s) => {
                Err(format!("'{s}' is not a phone number"))
            }
            _ => Ok(stored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_phone;

    #[test]
    fn phone_shapes() {
        for ok in [
            "+86 138 0013 8000",
            "010-65529988",
            "(021) 5555-1234 ext 12",
            "123",
            "8888转123",
        ] {
            assert!(is_phone(ok), "{ok}");
        }
        for bad in ["12", "call me", "+86 abc", "1234 ext x"] {
            assert!(!is_phone(bad), "{bad}");
        }
    }
}
