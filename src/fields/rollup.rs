//! `rollup`: an aggregate (sum, count, min, max) of a field over the records of another entity
//! that point at this record through one of their lookups, e.g. a customer's order total:
//! `{"entity": "order", "via": "customer", "field": "amount", "op": "sum"}`. Stored in a real
//! column of the result type, which the server works out from the aggregated field.

use serde_json::{Map, Value};

use super::FieldType;
use super::ResultKind;
use crate::schema::definition::FieldDef;
use crate::schema::names::{EntityName, FieldName};
use crate::store::{ColumnType, SqlValue};

pub struct Rollup;

/// Parses `x-rollup`: `{"entity", "via", "field", "op"}`.
pub fn parse_rollup(r: &Value) -> Result<RollupSpec, String> {
    let text = |key: &str| r.get(key).and_then(Value::as_str);
    let entity = EntityName::parse(text("entity").unwrap_or_default())
        .map_err(|e| format!("x-rollup.entity: {e}"))?;
    let via = FieldName::parse(text("via").unwrap_or_default())
        .map_err(|e| format!("x-rollup.via: {e}"))?;
    let op = text("op")
        .and_then(RollupOp::parse)
        .ok_or("x-rollup.op must be one of sum, count, min, max")?;
    let field = match text("field") {
        None if op == RollupOp::Count => None,
        None => return Err(format!("x-rollup.field is needed for {}", op.as_str())),
        Some(f) => Some(FieldName::parse(f).map_err(|e| format!("x-rollup.field: {e}"))?),
    };
    Ok(RollupSpec {
        entity,
        via,
        field,
        op,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupOp {
    Sum,
    Count,
    Min,
    Max,
}

impl RollupOp {
    pub fn parse(s: &str) -> Option<RollupOp> {
        match s {
            "sum" => Some(RollupOp::Sum),
            "count" => Some(RollupOp::Count),
            "min" => Some(RollupOp::Min),
            "max" => Some(RollupOp::Max),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RollupOp::Sum => "sum",
            RollupOp::Count => "count",
            RollupOp::Min => "min",
            RollupOp::Max => "max",
        }
    }
}

/// What a rollup aggregates: `op` of `field` over the `entity` records whose lookup `via`
/// points at this record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupSpec {
    pub entity: EntityName,
    pub via: FieldName,
    pub field: Option<FieldName>,
    pub op: RollupOp,
}

impl FieldType for Rollup {
    fn capabilities(&self, field: &FieldDef) -> super::Capabilities {
        field.result.unwrap_or(ResultKind::Decimal).capabilities()
    }

    fn parse_settings(
        &self,
        property: &Map<String, Value>,
        field: &mut FieldDef,
        errors: &mut Vec<String>,
    ) {
        field.scale = super::decimal::scale_setting(property);
        field.result = field.declared_result;
        field.rollup = match property.get("x-rollup") {
            None => {
                errors.push("a rollup field needs x-rollup".into());
                None
            }
            Some(r) => parse_rollup(r).map_err(|e| errors.push(e)).ok(),
        };
    }

    fn to_text(&self, field: &FieldDef, value: &Value, format: &super::TextFormat) -> String {
        field
            .result
            .unwrap_or(ResultKind::Decimal)
            .to_text(field, value, format)
    }

    fn settings(&self) -> &'static [&'static str] {
        &["x-rollup", "x-result", "x-scale"]
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

    fn to_sql(&self, _: &FieldDef, _: &Value) -> Result<SqlValue, String> {
        Err("is computed from related records and cannot be set".into())
    }

    fn can_be_unique(&self) -> bool {
        false
    }
}
