//! After the statement: rows become groups with raw keys and people's labels; previous-period
//! rows are moved onto the current buckets; empty date buckets are filled; groups are sorted,
//! cut to the top N with the rest as "other", given running totals and totals, and each gets
//! the filter of the records behind it (drill-down).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::dates::{self, Shift};
use super::plan::{Dim, DimKind, Func, Measure, Plan};
use crate::fields::Lang;
use crate::store::reports::Agg;
use crate::store::{ColumnType, Row, SqlValue};

/// One group: its keys (raw, as clients get them) and its aggregates.
#[derive(Debug, Clone)]
pub struct Group {
    pub keys: Vec<Value>,
    pub raw: Vec<SqlValue>,
    pub previous: Option<Vec<SqlValue>>,
    /// The rest, beyond the top N.
    pub other: bool,
    pub cumulative: Option<Vec<SqlValue>>,
}

/// A bucket's first day (`YYYY-MM-DD` from the store) as the bucket's name, optionally moved
/// forward from the previous period.
fn bucket_value(text: &str, bucket: crate::store::reports::Bucket, shift: Option<Shift>) -> Value {
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => {
            let date = shift.map_or(date, |s| dates::bucket_start(s.forward(date), bucket));
            Value::String(dates::bucket_key(date, bucket))
        }
        Err(_) => Value::String(text.to_owned()),
    }
}

fn key_value(dim: &Dim, value: &SqlValue, shift: Option<Shift>) -> Value {
    match (dim.kind, value) {
        (_, SqlValue::Null(_)) => Value::Null,
        (DimKind::Bucket(bucket), SqlValue::Text(t)) => bucket_value(t, bucket, shift),
        (_, v) => v.to_json(),
    }
}

fn zero(agg: &Agg) -> SqlValue {
    match agg {
        Agg::Count | Agg::CountOf(_) | Agg::CountDistinct(_) => SqlValue::Integer(0),
        Agg::Sum(_, ty) | Agg::Min(_, ty) | Agg::Max(_, ty) => SqlValue::Null(*ty),
    }
}

fn add(a: &SqlValue, b: &SqlValue) -> SqlValue {
    match (a, b) {
        (SqlValue::Null(_), x) | (x, SqlValue::Null(_)) => x.clone(),
        (SqlValue::Integer(x), SqlValue::Integer(y)) => SqlValue::Integer(x.saturating_add(*y)),
        (SqlValue::Decimal(x, s), SqlValue::Decimal(y, _)) => SqlValue::Decimal(x + y, *s),
        (x, _) => x.clone(),
    }
}

fn number(v: &SqlValue) -> Option<Decimal> {
    match v {
        SqlValue::Integer(i) => Some(Decimal::from(*i)),
        SqlValue::Decimal(d, _) => Some(*d),
        _ => None,
    }
}

fn compare_values(a: &SqlValue, b: &SqlValue) -> Ordering {
    match (a, b) {
        (SqlValue::Null(_), SqlValue::Null(_)) => Ordering::Equal,
        (SqlValue::Null(_), _) => Ordering::Less,
        (_, SqlValue::Null(_)) => Ordering::Greater,
        (SqlValue::Date(x), SqlValue::Date(y)) => x.cmp(y),
        (SqlValue::Datetime(x), SqlValue::Datetime(y)) => x.cmp(y),
        _ => number(a).cmp(&number(b)),
    }
}

/// Two groups' aggregates as one (a distinct count cannot be combined: it becomes empty).
pub fn combine(aggs: &[Agg], a: &[SqlValue], b: &[SqlValue]) -> Vec<SqlValue> {
    aggs.iter()
        .zip(a.iter().zip(b))
        .map(|(agg, (x, y))| match agg {
            Agg::Count | Agg::CountOf(_) | Agg::Sum(..) => add(x, y),
            Agg::CountDistinct(_) => SqlValue::Null(ColumnType::Integer),
            Agg::Min(..) => match compare_values(x, y) {
                _ if x.is_null() => y.clone(),
                _ if y.is_null() => x.clone(),
                Ordering::Greater => y.clone(),
                _ => x.clone(),
            },
            Agg::Max(..) => match compare_values(x, y) {
                Ordering::Less => y.clone(),
                _ => x.clone(),
            },
        })
        .collect()
}

fn json_of(value: &SqlValue) -> Value {
    match value {
        SqlValue::Decimal(d, scale) => {
            let mut d = *d;
            d.rescale(*scale);
            Value::String(d.to_string())
        }
        other => other.to_json(),
    }
}

/// A measure's value from a group's aggregates.
pub fn measure_value(m: &Measure, raw: &[SqlValue]) -> Value {
    let v = &raw[m.agg];
    match m.func {
        Func::Count | Func::CountDistinct => json_of(v),
        Func::Sum => match (v, m.field.as_ref().map(|f| f.ty)) {
            (SqlValue::Null(_), Some(ColumnType::Decimal { scale })) => {
                json_of(&SqlValue::Decimal(Decimal::ZERO, scale))
            }
            (SqlValue::Null(_), _) => json!(0),
            _ => json_of(v),
        },
        Func::Avg => {
            let count = raw[m.agg + 1].as_i64().unwrap_or_default();
            match number(v) {
                Some(sum) if count > 0 => {
                    let places = match m.field.as_ref().map(|f| f.ty) {
                        Some(ColumnType::Decimal { scale }) => scale,
                        _ => 2,
                    };
                    let mut avg = (sum / Decimal::from(count)).round_dp_with_strategy(
                        places,
                        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                    );
                    avg.rescale(places);
                    Value::String(avg.to_string())
                }
                _ => Value::Null,
            }
        }
        Func::Min | Func::Max => json_of(v),
    }
}

pub fn values(measures: &[Measure], raw: &[SqlValue]) -> Value {
    let mut out = serde_json::Map::new();
    for m in measures {
        out.insert(m.key.clone(), measure_value(m, raw));
    }
    Value::Object(out)
}

/// Rows of the store into groups of the current period (and the previous, moved onto the
/// current keys), empty date buckets filled.
pub fn groups(plan: &Plan, rows: Vec<Row>, fill_gaps: bool) -> Vec<Group> {
    let split = plan.previous.is_some();
    let offset = usize::from(split);
    let n = plan.dims.len();
    let mut order: Vec<Vec<Value>> = Vec::new();
    let mut current: HashMap<String, Vec<SqlValue>> = HashMap::new();
    let mut previous: HashMap<String, Vec<SqlValue>> = HashMap::new();
    for row in rows {
        let is_current = !split || row[0].as_i64() == Some(1);
        let shift = if is_current {
            None
        } else {
            plan.previous.map(|(_, s)| s)
        };
        let keys: Vec<Value> = plan
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| key_value(d, &row[offset + i], shift))
            .collect();
        let raw = row[offset + n..].to_vec();
        let id = Value::Array(keys.clone()).to_string();
        let map = if is_current {
            &mut current
        } else {
            &mut previous
        };
        match map.get_mut(&id) {
            Some(existing) => *existing = combine(&plan.aggs, existing, &raw),
            None => {
                if !current.contains_key(&id) && !previous.contains_key(&id) {
                    order.push(keys);
                }
                let map = if is_current {
                    &mut current
                } else {
                    &mut previous
                };
                map.insert(id, raw);
            }
        }
    }
    // Empty buckets inside the range.
    if fill_gaps && let Some(range) = &plan.range {
        for (i, dim) in plan.dims.iter().enumerate() {
            let DimKind::Bucket(bucket) = dim.kind else {
                continue;
            };
            let all: Vec<Value> = dates::buckets_between(range.days.from, range.days.to, bucket)
                .into_iter()
                .map(|d| Value::String(dates::bucket_key(d, bucket)))
                .collect();
            // Every combination of the bucket with the other group-by's values seen.
            let others: Vec<Vec<Value>> = {
                let mut seen = HashSet::new();
                let mut list = Vec::new();
                for keys in &order {
                    let mut rest = keys.clone();
                    rest.remove(i);
                    if seen.insert(Value::Array(rest.clone()).to_string()) {
                        list.push(rest);
                    }
                }
                if list.is_empty() && n == 1 {
                    list.push(Vec::new());
                }
                list
            };
            for rest in &others {
                for bucket_key in &all {
                    let mut keys = rest.clone();
                    keys.insert(i, bucket_key.clone());
                    let id = Value::Array(keys.clone()).to_string();
                    if !current.contains_key(&id) && !previous.contains_key(&id) {
                        order.push(keys);
                    }
                }
            }
        }
    }
    let empty: Vec<SqlValue> = plan.aggs.iter().map(zero).collect();
    order
        .into_iter()
        .filter_map(|keys| {
            let id = Value::Array(keys.clone()).to_string();
            let in_range = plan.range.is_none()
                || plan.dims.iter().zip(&keys).all(|(d, k)| match (d.kind, k) {
                    (DimKind::Bucket(b), Value::String(s)) => {
                        // Previous rows moved forward may land beyond the current range.
                        let range = plan.range.as_ref().map(|r| r.days);
                        match (range, dates::parse_bucket_key(s, b)) {
                            (Some(r), Some(start)) => {
                                start <= r.to && dates::next_bucket(start, b) > r.from
                            }
                            _ => true,
                        }
                    }
                    _ => true,
                });
            let raw = current.get(&id).cloned();
            let prev = previous.get(&id).cloned();
            if raw.is_none() && !in_range {
                return None;
            }
            Some(Group {
                keys,
                raw: raw.unwrap_or_else(|| empty.clone()),
                previous: split.then(|| prev.unwrap_or_else(|| empty.clone())),
                other: false,
                cumulative: None,
            })
        })
        .collect()
}

/// A position of a key in its group-by's own order: options in option order, yes after no,
/// buckets in time, the rest by label; empty values last.
fn natural(dim: &Dim, key: &Value, label: &str) -> (i64, String) {
    if key.is_null() {
        return (i64::MAX, String::new());
    }
    match dim.kind {
        DimKind::Select => {
            let index = dim
                .field
                .def
                .as_ref()
                .and_then(|f| {
                    f.options
                        .iter()
                        .position(|o| Some(o.value.as_str()) == key.as_str())
                })
                .map_or(i64::MAX - 1, |i| i as i64);
            (index, String::new())
        }
        DimKind::Boolean => (i64::from(key.as_bool() == Some(true)), String::new()),
        DimKind::Bucket(_) => (0, key.as_str().unwrap_or_default().to_owned()),
        _ => (0, label.to_owned()),
    }
}

/// How groups are ordered.
pub enum SortBy {
    /// A measure, descending or not.
    Measure(usize, bool),
    /// A group-by's own order, descending or not.
    Dim(usize, bool),
}

pub fn sort_by(plan: &Plan, spec: Option<&str>) -> crate::error::Result<SortBy> {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(match plan.dims.first().map(|d| d.kind) {
            Some(DimKind::Bucket(_) | DimKind::Select | DimKind::Boolean) | None => {
                SortBy::Dim(0, false)
            }
            _ => SortBy::Measure(0, true),
        });
    };
    let (desc, name) = match spec.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, spec.strip_prefix('+').unwrap_or(spec)),
    };
    if let Some(i) = plan.measures.iter().position(|m| m.key == name) {
        return Ok(SortBy::Measure(i, desc));
    }
    if let Some(i) = plan.dims.iter().position(|d| d.field.name == name) {
        return Ok(SortBy::Dim(i, desc));
    }
    Err(crate::error::Error::bad_parameter(
        "sort",
        format!("'{name}' is neither a measure key nor a group-by field"),
    ))
}

fn measure_order(m: &Measure, a: &[SqlValue], b: &[SqlValue]) -> Ordering {
    let (x, y) = (measure_value(m, a), measure_value(m, b));
    let num = |v: &Value| match v {
        Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
        Value::String(s) => s.parse::<Decimal>().ok(),
        _ => None,
    };
    match (num(&x), num(&y)) {
        (Some(p), Some(q)) => p.cmp(&q),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        _ => x.to_string().cmp(&y.to_string()),
    }
}

/// Sorts the groups, then keeps the top `limit` values of the first group-by and folds the
/// rest into "other" rows (one per value of the second group-by).
pub fn order(
    plan: &Plan,
    groups: Vec<Group>,
    labels: &[HashMap<String, String>],
    sort: &SortBy,
    limit: Option<usize>,
) -> Vec<Group> {
    let label_of = |i: usize, key: &Value| -> String {
        labels
            .get(i)
            .and_then(|l| l.get(&key_text(key)))
            .cloned()
            .unwrap_or_default()
    };
    let natural_cmp = |a: &Group, b: &Group, from: usize| -> Ordering {
        for (i, dim) in plan.dims.iter().enumerate().skip(from) {
            let o = natural(dim, &a.keys[i], &label_of(i, &a.keys[i])).cmp(&natural(
                dim,
                &b.keys[i],
                &label_of(i, &b.keys[i]),
            ));
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    };
    if plan.dims.is_empty() {
        return groups;
    }
    // Rank the first group-by's values.
    let mut firsts: Vec<(Value, Vec<SqlValue>)> = Vec::new();
    for g in &groups {
        match firsts.iter_mut().find(|(k, _)| *k == g.keys[0]) {
            Some((_, raw)) => *raw = combine(&plan.aggs, raw, &g.raw),
            None => firsts.push((g.keys[0].clone(), g.raw.clone())),
        }
    }
    let first_dim = &plan.dims[0];
    firsts.sort_by(|(ka, ra), (kb, rb)| {
        let by_key = || {
            natural(first_dim, ka, &label_of(0, ka)).cmp(&natural(first_dim, kb, &label_of(0, kb)))
        };
        match sort {
            SortBy::Measure(m, desc) => {
                let o = measure_order(&plan.measures[*m], ra, rb);
                let o = if *desc { o.reverse() } else { o };
                o.then_with(by_key)
            }
            SortBy::Dim(0, desc) => {
                let o = by_key();
                if *desc { o.reverse() } else { o }
            }
            SortBy::Dim(..) => by_key(),
        }
    });
    let rank: HashMap<String, usize> = firsts
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (key_text(k), i))
        .collect();
    let mut groups = groups;
    groups.sort_by(|a, b| {
        let ra = rank
            .get(&key_text(&a.keys[0]))
            .copied()
            .unwrap_or(usize::MAX);
        let rb = rank
            .get(&key_text(&b.keys[0]))
            .copied()
            .unwrap_or(usize::MAX);
        ra.cmp(&rb).then_with(|| match sort {
            SortBy::Measure(m, desc) => {
                let o = measure_order(&plan.measures[*m], &a.raw, &b.raw);
                (if *desc { o.reverse() } else { o }).then_with(|| natural_cmp(a, b, 1))
            }
            SortBy::Dim(1, true) => natural_cmp(a, b, 1).reverse(),
            SortBy::Dim(..) => natural_cmp(a, b, 1),
        })
    });
    let Some(limit) = limit.filter(|l| *l < firsts.len()) else {
        return groups;
    };
    let mut kept = Vec::new();
    let mut others: Vec<Group> = Vec::new();
    for g in groups {
        if rank.get(&key_text(&g.keys[0])).is_some_and(|r| *r < limit) {
            kept.push(g);
            continue;
        }
        let mut keys = g.keys.clone();
        keys[0] = Value::Null;
        match others.iter_mut().find(|o| o.keys == keys) {
            Some(o) => {
                o.raw = combine(&plan.aggs, &o.raw, &g.raw);
                o.previous = match (&o.previous, &g.previous) {
                    (Some(a), Some(b)) => Some(combine(&plan.aggs, a, b)),
                    (a, _) => a.clone(),
                };
            }
            None => others.push(Group {
                keys,
                other: true,
                ..g
            }),
        }
    }
    kept.extend(others);
    kept
}

pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Running totals of counts and sums along the first group-by (per value of the second).
pub fn cumulate(plan: &Plan, groups: &mut [Group]) {
    let mut running: HashMap<String, Vec<SqlValue>> = HashMap::new();
    for g in groups.iter_mut() {
        let rest = Value::Array(g.keys.iter().skip(1).cloned().collect()).to_string();
        let total = match running.get(&rest) {
            Some(before) => combine(&plan.aggs, before, &g.raw),
            None => g.raw.clone(),
        };
        running.insert(rest, total.clone());
        g.cumulative = Some(total);
    }
}

/// The filter expression selecting a group's records: the query's filter, the range and the
/// group's keys (drill-down links use it on the list page).
pub fn drill_filter(
    plan: &Plan,
    base: Option<&str>,
    group: &Group,
    top_keys: &[Value],
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(f) = base.filter(|f| !f.trim().is_empty()) {
        parts.push(format!("({f})"));
    }
    let literal = |v: &SqlValue| -> String {
        match v {
            SqlValue::Date(d) => format!("\"{d}\""),
            SqlValue::Datetime(t) => format!("\"{}\"", crate::store::value::format_datetime(t)),
            other => other.to_json().to_string(),
        }
    };
    let condition = |field: &super::plan::FieldRef, days: dates::DateRange| -> String {
        let (from, to) = super::plan::bounds(field, days, plan.tz);
        format!(
            "{} >= {} && {} < {}",
            field.name,
            literal(&from),
            field.name,
            literal(&to)
        )
    };
    if let Some(r) = &plan.range {
        parts.push(condition(&r.field, r.days));
    }
    for (i, (dim, key)) in plan.dims.iter().zip(&group.keys).enumerate() {
        let name = &dim.field.name;
        if group.other && i == 0 {
            let list: Vec<String> = top_keys
                .iter()
                .filter(|k| !k.is_null())
                .map(|k| k.to_string())
                .collect();
            if !list.is_empty() {
                parts.push(format!("!({name} in [{}])", list.join(", ")));
            }
            continue;
        }
        match (dim.kind, key) {
            (_, Value::Null) => parts.push(format!("{name} = null")),
            (DimKind::Bucket(b), Value::String(s)) => {
                let start = dates::parse_bucket_key(s, b)?;
                let end = dates::next_bucket(start, b) - chrono::Duration::days(1);
                parts.push(condition(
                    &dim.field,
                    dates::DateRange {
                        from: start,
                        to: end,
                    },
                ));
            }
            (_, k) => parts.push(format!("{name} = {k}")),
        }
    }
    Some(parts.join(" && "))
}

/// Words of the report in the caller's language.
pub fn word(lang: Lang, en: &'static str, zh: &'static str) -> String {
    match lang {
        Lang::En => en.to_owned(),
        Lang::ZhCn => zh.to_owned(),
    }
}
