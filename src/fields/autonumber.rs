//! `autonumber`: a number the server assigns on create from `x-pattern`, e.g. `CUS-{000000}`
//! gives `CUS-000001`, `CUS-000002` … Gap-free: the counter row is updated in the same
//! transaction as the insert. Always unique; never written by clients.

use serde_json::{Map, Value, json};

use super::Capabilities;
use super::{FieldType, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Autonumber;

/// A parsed `x-pattern`: literal text around one `{000…}` counter of a minimum width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoPattern {
    pub prefix: String,
    pub width: usize,
    pub suffix: String,
}

impl AutoPattern {
    pub fn parse(pattern: &str) -> Result<AutoPattern, String> {
        let bad = || {
            format!(
                "x-pattern '{pattern}' must hold exactly one counter of zeros in braces, like CUS-{{000000}}"
            )
        };
        let open = pattern.find('{').ok_or_else(bad)?;
        let close = pattern[open..].find('}').ok_or_else(bad)? + open;
        let zeros = &pattern[open + 1..close];
        let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
        if zeros.is_empty()
            || zeros.len() > 18
            || !zeros.bytes().all(|b| b == b'0')
            || prefix.contains(['{', '}'])
            || suffix.contains(['{', '}'])
        {
            return Err(bad());
        }
        Ok(AutoPattern {
            prefix: prefix.to_owned(),
            width: zeros.len(),
            suffix: suffix.to_owned(),
        })
    }

    pub fn format(&self, n: i64) -> String {
        format!(
            "{}{:0width$}{}",
            self.prefix,
            n,
            self.suffix,
            width = self.width
        )
    }
}

impl FieldType for Autonumber {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities {
            groupable: false,
            ..Capabilities::TEXT
        }
    }

    fn parse_settings(
        &self,
        property: &Map<String, Value>,
        field: &mut FieldDef,
        errors: &mut Vec<String>,
    ) {
        field.autonumber = match property.get("x-pattern").and_then(Value::as_str) {
            None => None,
            Some(pattern) => match AutoPattern::parse(pattern) {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
    }

    fn settings(&self) -> &'static [&'static str] {
        &["x-pattern"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Text)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("readOnly", json!(true))])
    }

    fn check(&self, field: &FieldDef, errors: &mut Vec<String>) {
        if field.autonumber.is_none() {
            errors.push("an autonumber field needs x-pattern, like CUS-{000000}".into());
        }
    }

    fn to_sql(&self, _: &FieldDef, _: &Value) -> Result<SqlValue, String> {
        Err("is numbered by the server and cannot be set".into())
    }
}

#[cfg(test)]
mod tests {
    use super::AutoPattern;

    #[test]
    fn patterns() {
        let p = AutoPattern::parse("CUS-{000000}").unwrap();
        assert_eq!(p.format(123), "CUS-000123");
        assert_eq!(p.format(1_234_567), "CUS-1234567");
        assert_eq!(AutoPattern::parse("{0}-X").unwrap().format(5), "5-X");
        for bad in ["CUS", "CUS-{}", "{00}{00}", "A{0a0}", "A{000"] {
            assert!(AutoPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
