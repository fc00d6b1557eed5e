//! `formula`: a value computed from the record's other fields by the expression in `x-formula`,
//! stored in a real column of the result type (`x-result`, default decimal) so it can be
//! filtered and sorted. Never written by clients.

use serde_json::{Map, Value, json};

use super::FieldType;
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
