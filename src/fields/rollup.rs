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
