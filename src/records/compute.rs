//! Computed fields: formulas evaluated on every write (and stored, so they can be filtered and
//! sorted), and rollups kept current when the records they aggregate change — in the same
//! transaction as the change.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveTime, Utc};
use rust_decimal::RoundingStrategy;

use crate::error::Result;
use crate::expr::eval::{self, Scope, Value};
use crate::fields::ResultKind;
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::schema::definition::FieldDef;
use crate::store::records::{self, pos};
use crate::store::value::decimal_to_scaled;
use crate::store::{ColumnType, Ident, Row, SqlValue, Tx};

/// How far a change ripples through rollups of rollups before it stops (guards against
/// records that, through their data, roll up into themselves).
const MAX_RIPPLE: usize = 4;

fn to_value(v: &SqlValue) -> Value {
    match v {
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Integer(i) => Value::Int(*i),
        SqlValue::Boolean(b) => Value::Bool(*b),
        SqlValue::Decimal(d, _) => Value::Dec(*d),
        SqlValue::Date(d) => Value::Date(*d),
        SqlValue::Datetime(t) => Value::DateTime(*t),
        SqlValue::Null(_) | SqlValue::Json(_) => Value::Null,
    }
}

/// A formula's value in the form its column stores; null when it does not fit.
fn to_stored(value: Value, field: &FieldDef) -> SqlValue {
    let result = field.result.unwrap_or(ResultKind::Decimal);
    let scale = field.scale;
    let stored = match (result, value) {
        (_, Value::Null) => None,
        (ResultKind::Text, v) => Some(SqlValue::Text(match v {
            Value::Text(s) => s,
            Value::Dec(d) => d.normalize().to_string(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => d.to_string(),
            Value::DateTime(t) => crate::store::value::format_datetime(&t),
            Value::Null => String::new(),
        })),
        (ResultKind::Integer, Value::Int(i)) => Some(SqlValue::Integer(i)),
        (ResultKind::Integer, Value::Dec(d)) => rust_decimal::prelude::ToPrimitive::to_i64(
            &d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero),
        )
        .map(SqlValue::Integer),
        (ResultKind::Decimal, Value::Int(i)) => {
            Some(SqlValue::Decimal(rust_decimal::Decimal::from(i), scale))
        }
        (ResultKind::Decimal, Value::Dec(d)) => Some(SqlValue::Decimal(d, scale)),
        (ResultKind::Boolean, Value::Bool(b)) => Some(SqlValue::Boolean(b)),
        (ResultKind::Date, Value::Date(d)) => Some(SqlValue::Date(d)),
        (ResultKind::Date, Value::DateTime(t)) => Some(SqlValue::Date(t.date_naive())),
        (ResultKind::Datetime, Value::DateTime(t)) => Some(SqlValue::Datetime(t)),
        (ResultKind::Datetime, Value::Date(d)) => {
            Some(SqlValue::Datetime(d.and_time(NaiveTime::MIN).and_utc()))
        }
        _ => None,
    };
    stored.unwrap_or(SqlValue::Null(result.column(scale)))
}

/// Evaluates every formula of a record, given its other values (by field name), in dependency
/// order. Returns the formula values to store.
pub fn formulas(
    entity: &CompiledEntity,
    values: &mut HashMap<String, SqlValue>,
    now: DateTime<Utc>,
) -> Vec<(Ident, SqlValue)> {
    let mut out = Vec::new();
    for name in &entity.formulas {
        let Some(field) = entity.def.field(name.as_str()) else {
            continue;
        };
        let Some(expr) = &field.formula_expr else {
            continue;
        };
        let lookup = |n: &str| values.get(n).map_or(Value::Null, to_value);
        let value = eval::eval(
            expr,
            &Scope {
                field: &lookup,
                now,
            },
        );
        let stored = decimal_fit(to_stored(value, field), field);
        values.insert(name.to_string(), stored.clone());
        out.push((Ident::column(name), stored));
    }
    out
}

/// Rounds a decimal result to its field's places; null when out of range.
fn decimal_fit(value: SqlValue, field: &FieldDef) -> SqlValue {
    match value {
        SqlValue::Decimal(d, _) => {
            let d = d.round_dp_with_strategy(field.scale, RoundingStrategy::MidpointAwayFromZero);
            if decimal_to_scaled(d, field.scale).is_ok() {
                SqlValue::Decimal(d, field.scale)
            } else {
                SqlValue::Null(ColumnType::Decimal { scale: field.scale })
            }
        }
        other => other,
    }
}

/// The values of a stored row by field name.
pub fn row_values(entity: &CompiledEntity, row: &Row) -> HashMap<String, SqlValue> {
    entity
        .layout
        .full
        .fields
        .iter()
        .filter_map(|(name, index)| row.get(*index).map(|v| (name.to_string(), v.clone())))
        .collect()
}

/// Recomputes the formulas of some records (or of all, in pages) and stores what changed.
pub async fn refresh_formulas(
    tx: &mut Tx,
    entity: &CompiledEntity,
    ids: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<()> {
    if entity.formulas.is_empty() {
        return Ok(());
    }
    match ids {
        Some(ids) => {
            let rows = records::get_many(tx, &entity.layout, ids).await?;
            store_formulas(tx, entity, rows, now).await?;
        }
        None => {
            // The whole table, a page at a time.
            let mut after = String::new();
            loop {
                let rows = records::rows_after(tx, &entity.layout, &after, 1_000).await?;
                let Some(last) = rows.last().and_then(|r| r[pos::ID].as_str()) else {
                    break;
                };
                after = last.to_owned();
                store_formulas(tx, entity, rows, now).await?;
            }
        }
    }
    Ok(())
}

async fn store_formulas(
    tx: &mut Tx,
    entity: &CompiledEntity,
    rows: Vec<Row>,
    now: DateTime<Utc>,
) -> Result<()> {
    for row in rows {
        let mut values = row_values(entity, &row);
        let before = values.clone();
        let changed: Vec<(Ident, SqlValue)> = formulas(entity, &mut values, now)
            .into_iter()
            .filter(|(column, value)| before.get(column.as_str()) != Some(value))
            .collect();
        if let Some(id) = row[pos::ID].as_str() {
            records::set_computed(tx, &entity.layout, id, changed).await?;
        }
    }
    Ok(())
}

/// After records of `entity` changed (each as it was and as it is), brings every rollup that
/// aggregates them up to date, then the formulas of the parents, and so on up the chain.
pub async fn ripple(
    tx: &mut Tx,
    catalog: &Catalog,
    entity: &CompiledEntity,
    changes: &[(Option<&Row>, Option<&Row>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut work: Vec<Parents> = Vec::new();
    collect_parents(catalog, entity, changes, &mut work);
    for _ in 0..MAX_RIPPLE {
        if work.is_empty() {
            break;
        }
        let mut next: Vec<Parents> = Vec::new();
        for Parents {
            parent,
            source,
            ids,
        } in work
        {
            let Ok(parent) = catalog.entity(&parent) else {
                continue;
            };
            let ids: Vec<String> = ids.into_iter().collect();
            let before = records::get_many(tx, &parent.layout, &ids).await?;
            for rollup in parent.def.fields.iter().filter(|f| {
                f.rollup
                    .as_ref()
                    .is_some_and(|spec| spec.entity.as_str() == source)
            }) {
                records::refresh_rollup(tx, &parent.def.name, rollup, Some(&ids)).await?;
            }
            refresh_formulas(tx, &parent, Some(&ids), now).await?;
            if !parent.rollups_over.is_empty() {
                let after = records::get_many(tx, &parent.layout, &ids).await?;
                let pairs: Vec<(Option<&Row>, Option<&Row>)> = before
                    .iter()
                    .map(|b| (Some(b), after.iter().find(|a| a[pos::ID] == b[pos::ID])))
                    .collect();
                collect_parents(catalog, &parent, &pairs, &mut next);
            }
        }
        work = next;
    }
    Ok(())
}

/// Records of `parent` whose rollups over `source` need recomputing.
struct Parents {
    parent: String,
    source: String,
    ids: HashSet<String>,
}

/// For every rollup over `entity`, the parents whose value may have moved: those the changed
/// records pointed at before or point at now, when the lookup, the aggregated field or the
/// trash state changed.
fn collect_parents(
    catalog: &Catalog,
    entity: &CompiledEntity,
    changes: &[(Option<&Row>, Option<&Row>)],
    work: &mut Vec<Parents>,
) {
    let column_of = |name: &str| {
        entity
            .layout
            .full
            .fields
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, i)| *i)
    };
    for (parent_name, rollup_name) in &entity.rollups_over {
        let Ok(parent) = catalog.entity(parent_name.as_str()) else {
            continue;
        };
        let Some(spec) = parent
            .def
            .field(rollup_name.as_str())
            .and_then(|f| f.rollup.as_ref())
        else {
            continue;
        };
        let Some(via) = column_of(spec.via.as_str()) else {
            continue;
        };
        let watched: Vec<usize> = [
            Some(via),
            spec.field.as_ref().and_then(|f| column_of(f.as_str())),
            Some(pos::DELETED_AT),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut ids = HashSet::new();
        for (old, new) in changes {
            let moved = match (old, new) {
                (Some(o), Some(n)) => watched.iter().any(|i| o.get(*i) != n.get(*i)),
                _ => true,
            };
            if !moved {
                continue;
            }
            for row in [old, new].into_iter().flatten() {
                if let Some(SqlValue::Text(id)) = row.get(via) {
                    ids.insert(id.clone());
                }
            }
        }
        if ids.is_empty() {
            continue;
        }
        let source = entity.def.name.to_string();
        match work
            .iter_mut()
            .find(|p| p.parent == parent_name.as_str() && p.source == source)
        {
            Some(existing) => existing.ids.extend(ids),
            None => work.push(Parents {
                parent: parent_name.to_string(),
                source,
                ids,
            }),
        }
    }
}
