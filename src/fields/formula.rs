//! `formula`: a value computed from the record's other fields by the expression in `x-formula`,
//! stored in a real column of the result type (`x-result`, default decimal) so it can be
//! filtered and sorted. Never written by clients.

use serde_json::{Map, Value, json};

use super::FieldType;
use super::{Capabilities, TextFormat};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Formula;

/// The type of a computed value (formula or rollup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultKind {
    Text,
    Integer,
    Decimal,
    Boolean,
    Date,
    Datetime,
}

impl ResultKind {
    pub const ALL: [ResultKind; 6] = [
        ResultKind::Text,
        ResultKind::Integer,
        ResultKind::Decimal,
        ResultKind::Boolean,
        ResultKind::Date,
        ResultKind::Datetime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Text => "text",
            ResultKind::Integer => "integer",
            ResultKind::Decimal => "decimal",
            ResultKind::Boolean => "boolean",
            ResultKind::Date => "date",
            ResultKind::Datetime => "datetime",
        }
    }

    pub fn parse(s: &str) -> Option<ResultKind> {
        ResultKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn column(self, scale: u32) -> ColumnType {
        match self {
            ResultKind::Text => ColumnType::Text,
            ResultKind::Integer => ColumnType::Integer,
            ResultKind::Decimal => ColumnType::Decimal { scale },
            ResultKind::Boolean => ColumnType::Boolean,
            ResultKind::Date => ColumnType::Date,
            ResultKind::Datetime => ColumnType::Datetime,
        }
    }

    /// What a computed value of this type supports.
    pub fn capabilities(self) -> super::Capabilities {
        use super::Capabilities;
        match self {
            ResultKind::Text => Capabilities::TEXT,
            ResultKind::Integer | ResultKind::Decimal => Capabilities::NUMBER,
            ResultKind::Boolean => Capabilities::CHOICE,
            ResultKind::Date | ResultKind::Datetime => Capabilities::DATE,
        }
    }

    /// The text form of a computed value of this type.
    pub fn to_text(self, field: &FieldDef, value: &Value, format: &super::TextFormat) -> String {
        let kind = match self {
            ResultKind::Text => super::Kind::Text,
            ResultKind::Integer => super::Kind::Integer,
            ResultKind::Decimal => super::Kind::Decimal,
            ResultKind::Boolean => super::Kind::Boolean,
            ResultKind::Date => super::Kind::Date,
            ResultKind::Datetime => super::Kind::Datetime,
        };
        kind.field_type().to_text(field, value, format)
    }

    /// JSON Schema keywords of a value of this type.
    pub fn schema(self, scale: u32) -> Map<String, Value> {
        let mut map = Map::new();
        let (ty, format) = match self {
            ResultKind::Text => (json!("string"), None),
            ResultKind::Integer => (json!("integer"), None),
            ResultKind::Decimal => (json!("string"), None),
            ResultKind::Boolean => (json!("boolean"), None),
            ResultKind::Date => (json!("string"), Some("date")),
            ResultKind::Datetime => (json!("string"), Some("date-time")),
        };
        map.insert("type".into(), ty);
        if let Some(format) = format {
            map.insert("format".into(), json!(format));
        }
        map.insert("readOnly".into(), json!(true));
        map.insert("x-result".into(), json!(self.as_str()));
        if self == ResultKind::Decimal {
            map.insert("x-scale".into(), json!(scale));
        }
        map
    }
}

impl FieldType for Formula {
    fn capabilities(&self, field: &FieldDef) -> Capabilities {
        field.result.unwrap_or(ResultKind::Decimal).capabilities()
    }

    fn parse_settings(
        &self,
        property: &Map<String, Value>,
        field: &mut FieldDef,
        _errors: &mut Vec<String>,
    ) {
        field.scale = super::decimal::scale_setting(property);
        field.formula = property
            .get("x-formula")
            .and_then(Value::as_str)
            .map(str::to_owned);
        field.result = field.declared_result;
    }

    fn to_text(&self, field: &FieldDef, value: &Value, format: &TextFormat) -> String {
        field
            .result
            .unwrap_or(ResultKind::Decimal)
            .to_text(field, value, format)
    }

    fn settings(&self) -> &'static [&'static str] {
        &["x-formula", "x-result", "x-scale"]
    }

    fn column(&self, field: &FieldDef) -> Option<ColumnType> {
        Some(
            field
                .result
                .unwrap_or(ResultKind::Decimal)
                .column(field.scale),
        )
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        field
            .result
            .unwrap_or(ResultKind::Decimal)
            .schema(field.scale)
    }

    fn check(&self, field: &FieldDef, errors: &mut Vec<String>) {
        if field.formula.as_deref().is_none_or(|f| f.trim().is_empty()) {
            errors.push("a formula field needs x-formula, an expression".into());
        }
        if field.scale > crate::store::value::MAX_SCALE {
            errors.push(format!(
                "x-scale must be between 0 and {}",
                crate::store::value::MAX_SCALE
            ));
        }
    }

    fn to_sql(&self, _: &FieldDef, _: &Value) -> Result<SqlValue, String> {
        Err("is computed by its formula and cannot be set".into())
    }

    fn can_be_unique(&self) -> bool {
        false
    }
}
