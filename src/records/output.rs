//! Stored rows back to the flat JSON records clients see: `id`, the fields in definition
//! order, then the system fields.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::fields::stored_to_json;
use crate::schema::compiled::CompiledEntity;
use crate::store::records::{self, pos};
use crate::store::{Executor, Row, SqlValue};

/// Multi-lookup targets per field per record, loaded with one query per field for a whole page.
pub type Links = HashMap<String, HashMap<String, Vec<String>>>;

pub async fn load_links(
    ex: &mut impl Executor,
    entity: &CompiledEntity,
    rows: &[Row],
) -> Result<Links> {
    let mut out = Links::new();
    if entity.layout.joins.is_empty() || rows.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r[pos::ID].as_str().map(str::to_owned))
        .collect();
    for (field, join) in &entity.layout.joins {
        let mut by_source: HashMap<String, Vec<String>> = HashMap::new();
        for (source, target) in records::links(ex, join, &ids).await? {
            by_source.entry(source).or_default().push(target);
        }
        out.insert(field.to_string(), by_source);
    }
    Ok(out)
}

pub fn record_json(entity: &CompiledEntity, row: Row, links: &Links) -> Value {
    let mut row: Vec<Option<SqlValue>> = row.into_iter().map(Some).collect();
    let id = take(&mut row, pos::ID);
    let mut out = Map::new();
    out.insert("id".into(), id.clone());
    let id = id.as_str().unwrap_or_default().to_owned();
    let mut columns = entity.layout.field_columns.iter();
    for field in &entity.def.fields {
        let value = if field.column_type().is_some() {
            match columns.next() {
                Some((_, index)) => match row.get_mut(*index).and_then(Option::take) {
                    Some(v) => field.kind.field_type().to_json(field, v),
                    None => Value::Null,
                },
                None => Value::Null,
            }
        } else {
            let targets = links
                .get(field.name.as_str())
                .and_then(|by| by.get(&id))
                .cloned()
                .unwrap_or_default();
            json!(targets)
        };
        out.insert(field.name.to_string(), value);
    }
    for (name, index) in [
        ("created_at", pos::CREATED_AT),
        ("updated_at", pos::UPDATED_AT),
        ("created_by", pos::CREATED_BY),
        ("owner", pos::OWNER),
        ("department", pos::DEPARTMENT),
        ("version", pos::VERSION),
    ] {
        out.insert(name.into(), take(&mut row, index));
    }
    Value::Object(out)
}

fn take(row: &mut [Option<SqlValue>], index: usize) -> Value {
    row.get_mut(index)
        .and_then(Option::take)
        .map_or(Value::Null, stored_to_json)
}
