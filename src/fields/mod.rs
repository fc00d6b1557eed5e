//! Field kinds. Each kind is one file implementing [`FieldType`]: the column it needs per
//! database, the JSON Schema keywords it implies, the settings it accepts, and how an incoming
//! JSON value becomes a stored value and back. Adding a kind means adding a file and a line in
//! [`Kind`].

mod autonumber;
mod boolean;
mod date;
mod datetime;
mod decimal;
mod department;
mod email;
mod formula;
mod integer;
mod lookup;
mod multi_lookup;
mod multi_select;
mod phone;
mod rollup;
mod select;
mod text;
mod url;
mod user;

use serde_json::{Map, Value, json};

pub use autonumber::AutoPattern;
pub use date::{parse_date, parse_date_or_datetime};
pub use decimal::{DEFAULT_SCALE, parse_decimal};
pub use email::is_email;
pub use formula::ResultKind;
pub use rollup::{RollupOp, RollupSpec};
pub use text::{LONG_TEXT_MAX, TEXT_MAX};

use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

/// Every field kind of the platform, as written in `x-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Text,
    LongText,
    Integer,
    Decimal,
    Money,
    Percent,
    Boolean,
    Date,
    Datetime,
    Email,
    Phone,
    Url,
    Select,
    MultiSelect,
    Lookup,
    MultiLookup,
    User,
    Department,
    Autonumber,
    Formula,
    Rollup,
}

impl Kind {
    pub const ALL: [Kind; 21] = [
        Kind::Text,
        Kind::LongText,
        Kind::Integer,
        Kind::Decimal,
        Kind::Money,
        Kind::Percent,
        Kind::Boolean,
        Kind::Date,
        Kind::Datetime,
        Kind::Email,
        Kind::Phone,
        Kind::Url,
        Kind::Select,
        Kind::MultiSelect,
        Kind::Lookup,
        Kind::MultiLookup,
        Kind::User,
        Kind::Department,
        Kind::Autonumber,
        Kind::Formula,
        Kind::Rollup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::LongText => "long_text",
            Kind::Integer => "integer",
            Kind::Decimal => "decimal",
            Kind::Money => "money",
            Kind::Percent => "percent",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Datetime => "datetime",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Url => "url",
            Kind::Select => "select",
            Kind::MultiSelect => "multi_select",
            Kind::Lookup => "lookup",
            Kind::MultiLookup => "multi_lookup",
            Kind::User => "user",
            Kind::Department => "department",
            Kind::Autonumber => "autonumber",
            Kind::Formula => "formula",
            Kind::Rollup => "rollup",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The implementation of this kind.
    pub fn field_type(self) -> &'static dyn FieldType {
        match self {
            Kind::Text => &text::Text,
            Kind::LongText => &text::LongText,
            Kind::Integer => &integer::Integer,
            Kind::Decimal => &decimal::DECIMAL,
            Kind::Money => &decimal::MONEY,
            Kind::Percent => &decimal::PERCENT,
            Kind::Boolean => &boolean::Boolean,
            Kind::Date => &date::Date,
            Kind::Datetime => &datetime::Datetime,
            Kind::Email => &email::Email,
            Kind::Phone => &phone::Phone,
            Kind::Url => &url::Url,
            Kind::Select => &select::Select,
            Kind::MultiSelect => &multi_select::MultiSelect,
            Kind::Lookup => &lookup::Lookup,
            Kind::MultiLookup => &multi_lookup::MultiLookup,
            Kind::User => &user::User,
            Kind::Department => &department::Department,
            Kind::Autonumber => &autonumber::Autonumber,
            Kind::Formula => &formula::Formula,
            Kind::Rollup => &rollup::Rollup,
        }
    }

    /// Kinds whose values are text in one column (text-like storage).
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            Kind::Text
                | Kind::LongText
                | Kind::Email
                | Kind::Phone
                | Kind::Url
                | Kind::Select
                | Kind::Autonumber
        )
    }

    pub fn is_decimal(self) -> bool {
        matches!(self, Kind::Decimal | Kind::Money | Kind::Percent)
    }

    /// Kinds whose value is the id of a record, user or department.
    pub fn is_reference(self) -> bool {
        matches!(self, Kind::Lookup | Kind::User | Kind::Department)
    }

    pub fn is_computed(self) -> bool {
        matches!(self, Kind::Autonumber | Kind::Formula | Kind::Rollup)
    }
}

/// Keywords every field may carry, whatever its kind.
pub const COMMON_KEYWORDS: &[&str] = &[
    "x-kind",
    "x-label",
    "x-help",
    "x-unique",
    "x-indexed",
    "title",
    "description",
    "$comment",
    "default",
    // Implied by the kind; accepted (and recomputed) so a definition read with GET can be sent
    // back with PUT unchanged.
    "type",
    "format",
    "enum",
    "items",
    "uniqueItems",
    "readOnly",
];

/// The behaviour of one field kind.
pub trait FieldType: Send + Sync {
    /// Settings keywords this kind accepts besides [`COMMON_KEYWORDS`].
    fn settings(&self) -> &'static [&'static str] {
        &[]
    }

    /// The column holding the value, or `None` when values live in a join table.
    fn column(&self, field: &FieldDef) -> Option<ColumnType>;

    /// JSON Schema keywords this kind implies (`type`, `format`, `enum` …), written into the
    /// completed definition. Settings the user left out get their defaults here too.
    fn implied(&self, field: &FieldDef) -> Map<String, Value>;

    /// Checks of the kind's own settings that the meta-schema cannot express.
    fn check(&self, _field: &FieldDef, _errors: &mut Vec<String>) {}

    /// Turns an incoming, non-null JSON value into the stored value, or says what is wrong in
    /// words a business user understands.
    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String>;

    /// Turns a stored value into the JSON a client sees.
    fn to_json(&self, _field: &FieldDef, value: SqlValue) -> Value {
        stored_to_json(value)
    }

    /// Whether a `x-unique` constraint makes sense for this kind.
    fn can_be_unique(&self) -> bool {
        true
    }

    /// Whether `x-indexed` makes sense for this kind.
    fn can_be_indexed(&self) -> bool {
        true
    }
}

/// The plain JSON form of a stored value: decimals as strings with all their places, so
/// clients never see a rounded float.
pub fn stored_to_json(value: SqlValue) -> Value {
    match value {
        SqlValue::Null(_) => Value::Null,
        SqlValue::Text(s) => Value::String(s),
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Boolean(b) => Value::Bool(b),
        SqlValue::Decimal(mut d, scale) => {
            d.rescale(scale);
            Value::String(d.to_string())
        }
        SqlValue::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
        SqlValue::Datetime(t) => Value::String(crate::store::value::format_datetime(&t)),
        SqlValue::Json(v) => v,
    }
}

/// `{"type": t}` plus extra keywords, for `implied`.
fn schema_of(ty: &str, extra: &[(&str, Value)]) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("type".into(), json!(ty));
    for (k, v) in extra {
        map.insert((*k).to_owned(), v.clone());
    }
    map
}

/// A string value, with a message naming what was expected otherwise.
fn expect_str<'v>(value: &'v Value, what: &str) -> Result<&'v str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("must be {what}, not {}", describe(value)))
}

/// A short description of a JSON value's type for error messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Text in a text-like column: empty means "no value", and length limits count characters.
fn text_value(field: &FieldDef, value: &Value, what: &str) -> Result<SqlValue, String> {
    let s = expect_str(value, what)?;
    if s.is_empty() {
        return Ok(SqlValue::Null(ColumnType::Text));
    }
    let chars = s.chars().count() as u64;
    if let Some(max) = field.max_length
        && chars > max
    {
        return Err(format!("is {chars} characters long; at most {max} allowed"));
    }
    if let Some(min) = field.min_length
        && chars < min
    {
        return Err(format!(
            "is {chars} characters long; at least {min} required"
        ));
    }
    if let Some(re) = &field.regex
        && !re.is_match(s)
    {
        return Err(format!("does not match the pattern {}", re.as_str()));
    }
    Ok(SqlValue::Text(s.to_owned()))
}

/// A record, user or department id: a UUID, stored in its canonical lowercase form.
fn id_value(value: &Value, what: &str) -> Result<String, String> {
    let s = expect_str(value, what)?;
    uuid::Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| format!("'{s}' is not a valid id (a UUID is expected)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("blob"), None);
    }
}
