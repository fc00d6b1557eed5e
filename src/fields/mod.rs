//! Field kinds. Each kind is one file implementing [`FieldType`]: its settings (parsed and
//! checked), the column it needs per database, the JSON Schema keywords it implies, how an
//! incoming JSON value becomes a stored value and back, its text form (CSV cells, display)
//! and how it reads text people type, and what it supports (sorting, grouping, sums, date
//! buckets, search, `~`). Adding a kind means adding a file and a line in [`Kind`]; see
//! `docs/adding-a-field-kind.md`.

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
pub mod text_form;
mod url;
mod user;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use autonumber::AutoPattern;
pub use date::{parse_date, parse_date_or_datetime};
pub use decimal::{DEFAULT_SCALE, parse_decimal};
pub use email::is_email;
pub use formula::ResultKind;
pub use rollup::{RollupOp, RollupSpec};
pub use text::{LONG_TEXT_MAX, TEXT_MAX};
pub use text_form::{CellProblem, Lang};

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

    /// Kinds whose values come from a short list: options, yes/no, records, users,
    /// departments (what facets and kanban columns count).
    pub fn is_choice(self) -> bool {
        matches!(
            self,
            Kind::Select | Kind::Boolean | Kind::Lookup | Kind::User | Kind::Department
        )
    }
}

/// Keywords every field may carry, whatever its kind.
pub const COMMON_KEYWORDS: &[&str] = &[
    "x-kind",
    "x-label",
    "x-help",
    "x-unique",
    "x-indexed",
    "x-searchable",
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

/// What a field supports: lists, filters, reports, search and imports ask, never `match` on
/// the kind themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Lists may sort by it.
    pub sortable: bool,
    /// Reports may group by its values.
    pub groupable: bool,
    /// Reports may sum and average it (exactly).
    pub summable: bool,
    /// Reports may bucket it by day, week, month, quarter or year.
    pub date_bucketable: bool,
    /// Its text is found by quick and global search.
    pub searchable: bool,
    /// Filters may use `~` and `!~` (contains) on it.
    pub contains: bool,
    /// Filters may compare it with `<`, `<=`, `>`, `>=`.
    pub ordered: bool,
}

impl Capabilities {
    /// The filter operators these capabilities allow (`null` tests always apply).
    pub fn operators(self) -> Vec<&'static str> {
        let mut ops = vec!["=", "!=", "in"];
        if self.ordered {
            ops.extend([">", ">=", "<", "<="]);
        }
        if self.contains {
            ops.extend(["~", "!~"]);
        }
        ops
    }

    /// Text-like: sortable, groupable, searchable, `~`.
    pub const TEXT: Capabilities = Capabilities {
        sortable: true,
        groupable: true,
        summable: false,
        date_bucketable: false,
        searchable: true,
        contains: true,
        ordered: true,
    };
    /// Numbers: sortable, summable, ordered.
    pub const NUMBER: Capabilities = Capabilities {
        sortable: true,
        groupable: false,
        summable: true,
        date_bucketable: false,
        searchable: false,
        contains: false,
        ordered: true,
    };
    /// Dates and times: sortable, bucketable, ordered.
    pub const DATE: Capabilities = Capabilities {
        sortable: true,
        groupable: false,
        summable: false,
        date_bucketable: true,
        searchable: false,
        contains: false,
        ordered: true,
    };
    /// One of a few values (options, yes/no, a record, a user): sortable, groupable.
    pub const CHOICE: Capabilities = Capabilities {
        sortable: true,
        groupable: true,
        summable: false,
        date_bucketable: false,
        searchable: false,
        contains: false,
        ordered: false,
    };
    /// Lists of values (multi-select, multi-lookup): equality and `in` only.
    pub const LIST: Capabilities = Capabilities {
        sortable: false,
        groupable: false,
        summable: false,
        date_bucketable: false,
        searchable: false,
        contains: false,
        ordered: false,
    };
}

/// How values are written as text: CSV and spreadsheet cells, display.
#[derive(Debug, Clone, Default)]
pub struct TextFormat<'a> {
    pub lang: Lang,
    /// Decimal places to show (the settings'); the field's own scale when `None`.
    pub places: Option<u32>,
    /// Minutes east of UTC at which datetimes are shown.
    pub offset_minutes: i32,
    /// Titles of looked-up records, users and departments by id (ids are shown without).
    pub titles: Option<&'a HashMap<String, String>>,
}

/// Finds the id a cell names for a reference field (a title, a unique value, an email).
pub type Resolver = dyn Fn(&FieldDef, &str) -> Option<String> + Sync;

/// How text people typed is read: the time zone of datetimes without one, and how a cell
/// naming a record, user or department (by title, unique value or email) finds its id.
#[derive(Clone, Copy, Default)]
pub struct TextInput<'a> {
    pub offset_minutes: i32,
    pub resolve: Option<&'a Resolver>,
}

/// The label of an option in a language (falling back to English, then the value).
pub fn option_label(option: &crate::schema::definition::SelectOption, lang: Lang) -> &str {
    let key = match lang {
        Lang::En => "en",
        Lang::ZhCn => "zh-CN",
    };
    option
        .label
        .as_ref()
        .and_then(|l| l.get(key).or_else(|| l.get("en")))
        .and_then(Value::as_str)
        .unwrap_or(&option.value)
}

/// A record, user or department id as text: its title when one is known, else the id.
fn reference_text(value: &Value, format: &TextFormat) -> String {
    let Some(id) = value.as_str() else {
        return String::new();
    };
    format
        .titles
        .and_then(|t| t.get(id))
        .cloned()
        .unwrap_or_else(|| id.to_owned())
}

/// The id a cell names: an id as such, or what the resolver finds for a title, a unique value
/// or an email.
fn resolve_reference(
    field: &FieldDef,
    text: &str,
    input: &TextInput,
) -> Result<String, CellProblem> {
    if let Ok(id) = uuid::Uuid::parse_str(text.trim()) {
        return Ok(id.hyphenated().to_string());
    }
    input
        .resolve
        .and_then(|resolve| resolve(field, text.trim()))
        .ok_or_else(|| {
            let (code, what) = match field.kind {
                Kind::User => ("no_user", "user (by email or name)".to_owned()),
                Kind::Department => ("no_department", "department (by name)".to_owned()),
                _ => (
                    "no_record",
                    format!(
                        "{} record",
                        field.target.as_ref().map_or("", |t| t.as_str())
                    ),
                ),
            };
            CellProblem::new(code, format!("'{}' names no {what}", text.trim()))
                .with("value", text.trim())
        })
}

/// The behaviour of one field kind.
pub trait FieldType: Send + Sync {
    /// Settings keywords this kind accepts besides [`COMMON_KEYWORDS`].
    fn settings(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reads this kind's own settings from the property document into `field` (options,
    /// target, pattern, scale, formula, rollup …), reporting what is wrong.
    fn parse_settings(
        &self,
        _property: &Map<String, Value>,
        _field: &mut FieldDef,
        _errors: &mut Vec<String>,
    ) {
    }

    /// What the field supports.
    fn capabilities(&self, field: &FieldDef) -> Capabilities;

    /// The value's text form for a CSV cell or a page: option labels, record titles, decimals
    /// with the places asked for, dates `YYYY-MM-DD`. Empty for no value.
    fn to_text(&self, _field: &FieldDef, value: &Value, _format: &TextFormat) -> String {
        match value {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// Reads a non-blank cell as people type it (`1,234.50`, `2026年1月5日`, 是, an option's
    /// label) into the JSON value [`FieldType::to_sql`] takes, or says what is wrong.
    fn parse_text(
        &self,
        _field: &FieldDef,
        text: &str,
        _input: &TextInput,
    ) -> Result<Value, CellProblem> {
        Ok(Value::String(text.to_owned()))
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
        SqlValue::Date(d) => Value::String(text_form::format_date(d)),
        SqlValue::Datetime(t) => Value::String(crate::store::value::format_datetime(&t)),
        SqlValue::Json(v) => *v,
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

/// Money, decimals and integers with thousands separators.
pub fn group_digits(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", number),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Whether a text is a plain decimal number (`-1234.50`), as exact values are written.
pub fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(property: Value) -> FieldDef {
        let doc = json!({"name": "t", "label": {"en": "T", "zh-CN": "T"},
                         "schema": {"properties": {"f": property}}});
        let def = crate::schema::definition::EntityDef::parse(&doc).expect("a valid definition");
        def.fields.into_iter().next().expect("the field")
    }

    #[test]
    fn kinds_read_and_write_their_text_forms() {
        let level = json!({"x-kind": "select", "x-options": [
            {"value": "a", "label": {"en": "Key account", "zh-CN": "重点客户"}},
            {"value": "b", "label": {"en": "Normal", "zh-CN": "普通客户"}}]});
        let input = TextInput {
            offset_minutes: 8 * 60,
            resolve: None,
        };
        let zh = TextFormat {
            lang: Lang::ZhCn,
            offset_minutes: 8 * 60,
            ..TextFormat::default()
        };
        // (property, cell, stored JSON, text shown in Chinese)
        let cases = [
            (
                json!({"x-kind": "money", "x-scale": 2}),
                "¥1,234.5",
                json!("1234.5"),
                "1234.50",
            ),
            (
                json!({"x-kind": "decimal", "x-scale": 3}),
                "１２３４．５",
                json!("1234.5"),
                "1234.500",
            ),
            (
                json!({"x-kind": "percent"}),
                "12.5%",
                json!("12.5"),
                "12.50",
            ),
            (json!({"x-kind": "integer"}), "1,200", json!(1200), "1200"),
            (json!({"x-kind": "boolean"}), "是", json!(true), "是"),
            (
                json!({"x-kind": "date"}),
                "2026年1月5日",
                json!("2026-01-05"),
                "2026-01-05",
            ),
            (
                json!({"x-kind": "date"}),
                "2026/1/5",
                json!("2026-01-05"),
                "2026-01-05",
            ),
            (
                json!({"x-kind": "datetime"}),
                "2026-01-05 14:30",
                json!("2026-01-05T06:30:00.000000Z"),
                "2026-01-05 14:30",
            ),
            (level.clone(), "重点客户", json!("a"), "重点客户"),
            (level.clone(), "normal", json!("b"), "普通客户"),
            (
                json!({"x-kind": "multi_select", "x-options": [{"value": "x"}, {"value": "y"}]}),
                "x、y",
                json!(["x", "y"]),
                "x、y",
            ),
            (
                json!({"x-kind": "text"}),
                "上海华东",
                json!("上海华东"),
                "上海华东",
            ),
        ];
        for (property, cell, stored, shown) in cases {
            let f = field(property);
            let ty = f.kind.field_type();
            let parsed = ty.parse_text(&f, cell, &input);
            assert_eq!(
                parsed.as_ref(),
                Ok(&stored),
                "{} from '{cell}'",
                f.kind.as_str()
            );
            let value = stored_to_json(ty.to_sql(&f, &stored).expect("a valid value"));
            assert_eq!(
                ty.to_text(&f, &value, &zh),
                shown,
                "{} shown",
                f.kind.as_str()
            );
        }
        let f = field(level);
        let refused = f.kind.field_type().parse_text(&f, "VIP", &input);
        assert!(refused.is_err_and(|m| m.message.contains("VIP") && m.code == "not_option"));
        let lookup = field(json!({"x-kind": "lookup", "x-target": "customer"}));
        let resolve = |_: &FieldDef, text: &str| {
            (text == "华东贸易").then(|| "01900000-0000-7000-8000-000000000001".to_owned())
        };
        let input = TextInput {
            offset_minutes: 0,
            resolve: Some(&resolve),
        };
        assert_eq!(
            lookup
                .kind
                .field_type()
                .parse_text(&lookup, "华东贸易", &input),
            Ok(json!("01900000-0000-7000-8000-000000000001"))
        );
        assert!(
            lookup
                .kind
                .field_type()
                .parse_text(&lookup, "无名", &input)
                .is_err()
        );
    }

    #[test]
    fn capabilities_follow_the_kind_and_the_result() {
        let caps = |p: Value| field(p).capabilities();
        assert!(caps(json!({"x-kind": "money"})).summable);
        assert!(caps(json!({"x-kind": "date"})).date_bucketable);
        assert!(caps(json!({"x-kind": "text"})).searchable);
        assert!(!caps(json!({"x-kind": "select", "x-options": [{"value": "a"}]})).contains);
        assert!(
            caps(json!({"x-kind": "formula", "x-formula": "1 + 1", "x-result": "integer"}))
                .summable
        );
        assert_eq!(
            caps(json!({"x-kind": "email"})).operators(),
            ["=", "!=", "in", ">", ">=", "<", "<=", "~", "!~"]
        );
    }

    #[test]
    fn every_kind_round_trips_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("blob"), None);
    }

    #[test]
    fn plain_numbers_are_told_from_other_text() {
        assert!(is_plain_number("6716000.00"));
        assert!(is_plain_number("-12"));
        assert!(!is_plain_number("2026-01"));
        assert!(!is_plain_number("1."));
        assert!(!is_plain_number("-"));
        assert!(!is_plain_number("华东"));
        assert_eq!(group_digits("6716000.00"), "6,716,000.00");
    }
}
