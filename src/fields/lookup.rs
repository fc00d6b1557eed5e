//! `lookup`: the id of one record of the `x-target` entity (which may be this entity, as for a
//! parent company). Always indexed; the record must exist and not be in the trash.

use serde_json::{Map, Value, json};

use super::{FieldType, id_value, schema_of};
use crate::schema::definition::FieldDef;
use crate::store::{ColumnType, SqlValue};

pub struct Lookup;

impl FieldType for Lookup {
    fn settings(&self) -> &'static [&'static str] {
        &["x-target"]
    }

    fn column(&self, _: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Id)
    }

    fn implied(&self, _: &FieldDef) -> Map<String, Value> {
        schema_of("string", &[("format", json!("uuid"))])
    }

    fn to_sql(&self, _: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        id_value(value, "the id of a record").map(SqlValue::Text)
    }
}
