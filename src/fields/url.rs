//! `url`: a web address. People type `www.example.com`; it is stored as
//! `https://www.example.com`. Only http and https are accepted.

use serde_json::{Map, Value, json};

use super::{Capabilities, CellProblem, TextInput};
use super::{FieldType, schema_of, text_value};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Url;

/// Adds `https://` when no scheme was typed, then checks the result looks like a web address.
pub fn normalize_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let full = if s.contains("://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    };
    let lower = full.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("'{s}' is not a web address (http or https)"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && (host.contains('.') || host == "localhost")
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if !host_ok || full.chars().any(char::is_whitespace) {
        return Err(format!("'{s}' is not a web address"));
    }
    Ok(full)
}

impl FieldType for Url {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::TEXT
    }

    fn settings(&self) -> &'static [&'static str] {
        &["maxLength"]
    }

    fn parse_text(&self, _: &FieldDef, text: &str, _: &TextInput) -> Result<Value, CellProblem> {
        let s = text.trim();
        match normalize_url(s) {
            Ok(_) => Ok(Value::String(s.to_owned())),
            Err(message) => Err(CellProblem::new("not_url", message).with("value", s)),
        }
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Text)
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        schema_of(
            "string",
            &[("maxLength", json!(field.max_length.unwrap_or(2000)))],
        )
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        match text_value(field, value, "a web address")? {
            SqlValue::Text(s) => normalize_url(&s).map(SqlValue::Text),
            empty => Ok(empty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_url;

    #[test]
    fn urls_get_a_scheme() {
        assert_eq!(
            normalize_url("www.example.com").unwrap(),
            "https://www.example.com"
        );
        assert_eq!(
            normalize_url("http://例子.中国/a?b").unwrap(),
            "http://例子.中国/a?b"
        );
        assert!(normalize_url("ftp://x.com").is_err());
        assert!(normalize_url("not a url").is_err());
        assert!(normalize_url("javascript:alert(1)").is_err());
    }
}
